"""The market: the one simulated chain every engine process trades on.

Its pools (Raydium CPMM and Meteora DLMM, with the maths of `domain/pools/`), seeded per pair around reference
prices (`seed.py`); its ledger of transactions, idempotent on `client_tx_id` (`ledger.py`); its state in the
engine's database (`tables.py`, `store.py`; `memory.py` for unit tests); the noise traders and arbitrageurs
that keep it moving (`flow.py`); and the in-process adapter of the engine's `venues.chain.Chain` port
(`in_process.py`). The HTTP API over it is `api/market.py`; the HTTP adapter `venues/market_http.py`.

One market object is the only writer of its tables: inside `serve` (embedded) or in `order-engine market`.
It holds its state in memory and writes every change through before answering.
"""
