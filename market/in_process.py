"""The engine's `venues.chain.Chain` port over the market in this process (`serve`, embedded).

It lives here rather than in venues/ because the layers put the market above the venues (the market uses
the port's types; the port knows no market). Pool reads take MOCK_QUOTE_DELAY_MS (the market's own
delay, the same over HTTP). A transaction the chain refuses outright is dropped (it never lands); a market
whose database is away is a VenueError (its outcome is unknown: ask again).
"""

from __future__ import annotations

from domain.pools import PoolState
from eventstore.base import StoreUnavailable
from market.ledger import InvalidTransaction
from market.market import Market
from venues.base import VenueError
from venues.chain import Dropped, Landed, SwapTransaction, TokenRecord, TransactionStatus


class InProcessChain:
    def __init__(self, market: Market) -> None:
        self.market = market
        self.venues = market.venues

    async def pools(self, venue: str, token_in: str, token_out: str) -> list[PoolState]:
        return await self.market.read_pools(venue, token_in, token_out)

    async def send_transaction(self, tx: SwapTransaction) -> Landed | Dropped:
        try:
            return await self.market.ledger.send(tx)
        except InvalidTransaction as error:  # refused outright: it never lands
            return Dropped(client_tx_id=tx.client_tx_id, reason=f"transaction refused: {error}")
        except StoreUnavailable:
            raise VenueError("the chain is unavailable (its database cannot be reached)") from None

    async def transaction_status(self, client_tx_id: str) -> TransactionStatus | None:
        return self.market.ledger.status(client_tx_id)

    async def tokens(self) -> list[TokenRecord]:
        return self.market.registry.all()
