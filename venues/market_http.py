"""The engine's `Chain` port over the market's HTTP API (`order-engine market`, at MARKET_URL).

Every call is bounded: reads by `timeout_s`, a sent transaction (which waits for it to land, up to
MOCK_EXECUTION_DELAY_MS_MAX) by `send_timeout_s`. What it raises is the port's: `TimeoutError` when the
market does not answer in time (the transaction may still land: ask `transaction_status`), `VenueError`
when it cannot be reached, refuses a request or answers something unreadable. The wire format is
venues/chain_wire.py's. It speaks HTTP with aiohttp: each order makes three calls, and httpx cost a worker
about a third of its CPU (profiled under load, `python -m bench profile`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import msgspec

from domain.pools import PoolState
from venues.base import VenueError
from venues.chain import Dropped, Landed, Pending, SwapTransaction, TokenRecord, TransactionStatus
from venues.chain_wire import pool_from_wire, status_from_wire, to_wire, token_from_wire

VENUES = ("raydium", "meteora")


class ChainRefused(VenueError):
    """The chain answered the request with a refusal of it (a 4xx): asking again gets the same answer."""


T = TypeVar("T")


class MarketHttpChain:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        send_timeout_s: float = 30.0,
        venues: tuple[str, ...] = VENUES,
    ) -> None:
        self.venues = venues
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.send_timeout = aiohttp.ClientTimeout(total=send_timeout_s)
        self._session: aiohttp.ClientSession | None = None  # opened on first use, in the running loop

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def pools(self, venue: str, token_in: str, token_out: str) -> list[PoolState]:
        answer = await self._call(
            "GET", "/pools", params={"venue": venue, "tokenIn": token_in, "tokenOut": token_out}
        )
        return _decoded(answer, lambda wire: [pool_from_wire(pool) for pool in wire])

    async def send_transaction(self, tx: SwapTransaction) -> Landed | Dropped:
        try:
            answer = await self._call("POST", "/transactions", json=to_wire(tx), timeout=self.send_timeout)
        except ChainRefused as refusal:  # refused outright (a 4xx): it never lands
            return Dropped(client_tx_id=tx.client_tx_id, reason=f"transaction refused: {refusal.reason}")
        outcome = _decoded(answer, status_from_wire)
        if isinstance(outcome, Pending):
            raise VenueError("the chain answered a sent transaction as still pending")
        return outcome

    async def transaction_status(self, client_tx_id: str) -> TransactionStatus | None:
        answer = await self._call("GET", f"/transactions/{client_tx_id}", missing_ok=True)
        return None if answer is None else _decoded(answer, status_from_wire)

    async def tokens(self) -> list[TokenRecord]:
        answer = await self._call("GET", "/tokens")
        return _decoded(answer, lambda wire: [token_from_wire(record) for record in wire])

    async def landed_of_order(self, order_id: str) -> list[Landed]:
        """Every landed swap of an order (GET /transactions?order=)."""
        answer = await self._call("GET", "/transactions", params={"order": order_id})
        statuses = _decoded(answer, lambda wire: [status_from_wire(outcome) for outcome in wire])
        landed = [status for status in statuses if isinstance(status, Landed)]
        if len(landed) != len(statuses):
            raise VenueError("the chain listed a swap of the order that has not landed")
        return landed

    async def _call(self, method: str, path: str, *, missing_ok: bool = False, **options: Any) -> Any:
        """The decoded JSON answer; None for a 404 when `missing_ok`."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, json_serialize=_json_text)
        try:
            async with self._session.request(method, self.base_url + path, **options) as response:
                status, body = response.status, await response.read()
        except TimeoutError:
            raise TimeoutError(f"the chain did not answer {method} {path} in time") from None
        except aiohttp.ClientError as error:
            raise VenueError(f"the chain cannot be reached ({type(error).__name__})") from None
        if status == 404 and missing_ok:
            return None
        try:
            answer = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise VenueError(f"the chain answered {method} {path} with something that is not JSON") from None
        if status != 200:
            message = answer.get("message") if isinstance(answer, dict) else None
            refused = ChainRefused if 400 <= status < 500 else VenueError
            raise refused(f"the chain refused {method} {path}: {message or f'HTTP {status}'}")
        return answer


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _decoded(answer: Any, decode: Callable[[Any], T]) -> T:
    try:
        return decode(answer)
    except (msgspec.ValidationError, KeyError, TypeError, AttributeError) as error:
        raise VenueError(f"the chain answered something unreadable ({error})") from None
