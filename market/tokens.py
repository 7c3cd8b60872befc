"""The chain's tokens: the ones it starts with (domain/tokens.py) and the ones announced while it runs.

A token is announced with its mint's facts (decimals, mint and freeze authorities) and becomes tradable when
its first pool is created: that pool's id and the moment are recorded on it (`launched_at`, `first_pool`).
The registry here is the market's memory of them, pure: the market (`market.py`) writes each change through
to its store before it keeps it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from domain.tokens import MAX_DECIMALS, TOKEN_SYMBOL, TOKENS
from venues.chain import TokenRecord

# What a request may call a token: uppercase ASCII letters and digits, as tickers are written.
SYMBOL = f"^{TOKEN_SYMBOL.pattern}$"
# A Solana address: 32 bytes in base58 (32 to 44 characters of the Bitcoin alphabet).
ADDRESS = r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"

Symbol = Annotated[str, msgspec.Meta(pattern=SYMBOL, examples=["PEPE"])]
Address = Annotated[
    str, msgspec.Meta(pattern=ADDRESS, examples=["7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"])
]
Decimals = Annotated[int, msgspec.Meta(ge=0, le=MAX_DECIMALS)]


class TokenExists(ValueError):
    """A symbol announced twice."""


class UnknownToken(LookupError):
    """A symbol the chain does not know."""


def seeded_record(symbol: str, started_at: int, first_pool: str | None) -> TokenRecord:
    """The record of one of the chain's starting tokens: no authorities, launched when it started."""
    return TokenRecord(
        symbol=symbol,
        decimals=TOKENS[symbol].decimals,
        mint_authority=None,
        freeze_authority=None,
        announced_at=started_at,
        launched_at=started_at if first_pool is not None else None,
        first_pool=first_pool,
    )


class TokenRegistry:
    """Every token record, by symbol. Nothing here writes anywhere: callers keep the store in step."""

    def __init__(self, records: list[TokenRecord] | None = None) -> None:
        self._records = {record.symbol: record for record in records or []}

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._records

    def all(self) -> list[TokenRecord]:
        """Every record, by symbol."""
        return [self._records[symbol] for symbol in sorted(self._records)]

    def get(self, symbol: str) -> TokenRecord:
        """Raises UnknownToken."""
        record = self._records.get(symbol)
        if record is None:
            raise UnknownToken(f"no token {symbol!r}")
        return record

    def announced(
        self,
        symbol: str,
        decimals: int,
        mint_authority: str | None,
        freeze_authority: str | None,
        at: int,
    ) -> TokenRecord:
        """The record of a new token announced at `at` (unix ms), not kept yet (see `keep`).
        Raises TokenExists for a symbol known already."""
        if symbol in self._records:
            raise TokenExists(f"token {symbol} exists already")
        return TokenRecord(
            symbol=symbol,
            decimals=decimals,
            mint_authority=mint_authority,
            freeze_authority=freeze_authority,
            announced_at=at,
        )

    def launched(self, symbol: str, pool_id: str, at: int) -> TokenRecord:
        """The record of `symbol` once pool `pool_id` is created at `at`: launched by it if it is its first
        (a token's later pools leave its record as it was). Raises UnknownToken."""
        record = self.get(symbol)
        if record.first_pool is not None:
            return record
        return msgspec.structs.replace(record, launched_at=at, first_pool=pool_id)

    def keep(self, records: list[TokenRecord]) -> None:
        """Keep `records` (new or replacing those of their symbols), once they are written."""
        self._records.update((record.symbol, record) for record in records)
