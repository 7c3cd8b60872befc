"""The market's HTTP API: its pools and its ledger, as an RPC node and an explorer would show them.

Mounted at `/market` in the app `serve` builds (embedded), or at the root of `order-engine market`'s own app
(MARKET_PORT). The wire format (camelCase, amounts in base units as strings of digits, `spotPrice` as an
exact decimal string, an outcome's `status`) is venues/chain_wire.py's, which the HTTP adapter reads.

    GET  /pools?tokenIn=&tokenOut=&venue=   every pool matching the filters (a pair in either direction)
    GET  /pools/{poolId}                     one pool, or 404
    POST /transactions                       send a SwapTransaction; answers its outcome once it has landed
                                             or was dropped (a known clientTxId: its first outcome); 404 for
                                             a pool the chain does not have, 409 for a leg its pool cannot
                                             take (another pair, another venue)
    GET  /transactions/{clientTxId}          its status (pending, landed, dropped), or 404 if never seen
    GET  /transactions?order=<orderId>       the landed swaps of an order, in landing order
    POST /swaps                              an outside trader's swap into one pool, landing at once
                                             ({poolId, tokenIn, amountInRaw}): tests and demos move prices
    GET  /health                             200 when the market's database answers, 503 otherwise
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, Litestar, Request, Response, Router, get, post, route
from litestar.di import NamedDependency, Provide
from litestar.enums import HttpMethod, MediaType, RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from api.errors import EXCEPTION_HANDLERS, ErrorBody, error_response, error_responses
from api.health import Health, probe
from api.orders import INTEGER, PRINTABLE_ASCII
from api.requests import CheckedJsonRequest, strictly_typed
from domain.tokens import TOKENS
from market.ledger import InvalidTransaction, UnknownPool
from market.market import VENUES, Market
from venues.chain import SwapLeg, SwapTransaction
from venues.chain_wire import pool_to_wire, to_wire

if TYPE_CHECKING:
    from api.app import Lifespan

Wire = dict[str, Any]
# Amounts in base units: u64, as on Solana (at most 19 digits keeps below 2^64).
POSITIVE_RAW = r"^[1-9][0-9]{0,18}$"
RAW = r"^(0|[1-9][0-9]{0,18})$"
MAX_LEGS = 16
Token = enum.Enum("Token", {symbol: symbol for symbol in TOKENS}, type=str)  # type: ignore[misc]
Venue = enum.Enum("Venue", {venue: venue for venue in VENUES}, type=str)  # type: ignore[misc]
NO_POOL = {404: "No such pool"}
NOT_FOR_THIS_POOL = {409: "A pool that does not trade this pair, or not on this venue"}


class LegBody(msgspec.Struct, rename="camel"):
    venue: Annotated[str, msgspec.Meta(max_length=16)]
    pool: Annotated[str, msgspec.Meta(max_length=64)]
    amount_in_raw: Annotated[str, msgspec.Meta(pattern=POSITIVE_RAW)]


class TransactionBody(msgspec.Struct, rename="camel"):
    """The body of `POST /transactions`: a SwapTransaction on the wire (amounts as strings of digits;
    other fields are ignored)."""

    client_tx_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    order_id: Annotated[str, msgspec.Meta(max_length=64)]
    token_in: Token  # type: ignore[valid-type]
    token_out: Token  # type: ignore[valid-type]
    legs: Annotated[list[LegBody], msgspec.Meta(min_length=1, max_length=MAX_LEGS)]
    min_amount_out_raw: Annotated[str, msgspec.Meta(pattern=RAW)]
    instructions: Annotated[list[Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=64)]
    # Unix seconds. A float of integral value: JSON (and its schema's `integer`) makes no difference
    # between 5 and 5.0.
    expires_at: Annotated[
        float, msgspec.Meta(ge=0, le=2**53, multiple_of=1, extra_json_schema={"extra": INTEGER})
    ]

    def transaction(self) -> SwapTransaction:
        return SwapTransaction(
            client_tx_id=self.client_tx_id,
            order_id=self.order_id,
            token_in=self.token_in.value,
            token_out=self.token_out.value,
            legs=tuple(
                SwapLeg(venue=leg.venue, pool=leg.pool, amount_in_raw=int(leg.amount_in_raw))
                for leg in self.legs
            ),
            min_amount_out_raw=int(self.min_amount_out_raw),
            instructions=tuple(self.instructions),
            expires_at=int(self.expires_at),
        )


class OutsideSwap(msgspec.Struct, rename="camel"):
    """The body of `POST /swaps`: `amountInRaw` base units of `tokenIn` into `poolId`."""

    pool_id: Annotated[str, msgspec.Meta(max_length=64)]
    token_in: Token  # type: ignore[valid-type]
    amount_in_raw: Annotated[str, msgspec.Meta(pattern=POSITIVE_RAW)]


def _encoded(body: bytes) -> Response[Any]:
    """A 200 of JSON already encoded (Litestar sends bytes as they are): the handler's annotation says what
    shape it has, for the schema."""
    return Response(body, media_type=MediaType.JSON)


@get("/pools", summary="The pools, filtered by pair and venue", responses=error_responses(400))
async def list_pools(
    market: NamedDependency[Market],
    token_in: Annotated[Token | None, QueryParameter(name="tokenIn")] = None,  # type: ignore[valid-type]
    token_out: Annotated[Token | None, QueryParameter(name="tokenOut")] = None,  # type: ignore[valid-type]
    venue: Annotated[Venue | None, QueryParameter()] = None,  # type: ignore[valid-type]
) -> Response[list[Wire]]:
    pools = await market.read_pools_json(
        venue and venue.value, token_in and token_in.value, token_out and token_out.value
    )
    return _encoded(pools)


@get("/pools/{poolId:str}", summary="One pool", responses=error_responses(described=NO_POOL))
async def get_pool(
    market: NamedDependency[Market], pool_id: Annotated[str, PathParameter(name="poolId")]
) -> Response[Wire]:
    pool = market.pool_json(pool_id)
    if pool is None:
        raise NotFoundException(f"no pool {pool_id!r}")
    return _encoded(pool)


class TransactionController(Controller):
    path = "/transactions"

    @route("/", http_method=[HttpMethod.OPTIONS], include_in_schema=False)
    async def allowed(self) -> Response[None]:
        """Litestar's own OPTIONS answer lists only the first handler's methods of a path mounted through
        a router: said here, `Allow` names both."""
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": "GET, OPTIONS, POST"})

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="Send a transaction and wait for its outcome",
        responses=error_responses(400, 415, 503, described=NO_POOL | NOT_FOR_THIS_POOL),
    )
    async def send(
        self,
        market: NamedDependency[Market],
        request: Request[Any, Any, Any],
        data: Annotated[TransactionBody, Body(media_type=RequestEncodingType.JSON)],
    ) -> Wire:
        strictly_typed(await request.body(), TransactionBody)
        return to_wire(await market.ledger.send(data.transaction()))

    @get("/", summary="The landed swaps of an order", responses=error_responses(400))
    async def of_order(
        self,
        market: NamedDependency[Market],
        order: Annotated[str, QueryParameter(max_length=64, pattern=PRINTABLE_ASCII)],
    ) -> list[Wire]:
        return [to_wire(landed) for landed in market.ledger.landed_of_order(order)]

    @get(
        "/{clientTxId:str}",
        summary="A transaction's status",
        responses=error_responses(described={404: "The chain has never seen this transaction"}),
    )
    async def status(
        self,
        market: NamedDependency[Market],
        client_tx_id: Annotated[str, PathParameter(name="clientTxId")],
    ) -> Wire:
        status = market.ledger.status(client_tx_id)
        if status is None:
            raise NotFoundException(f"the chain has never seen transaction {client_tx_id!r}")
        return to_wire(status)


@post(
    "/swaps",
    status_code=HTTP_200_OK,
    summary="Swap into one pool now (an outside trader)",
    responses=error_responses(400, 415, 503, described=NO_POOL | NOT_FOR_THIS_POOL),
)
async def outside_swap(
    market: NamedDependency[Market],
    request: Request[Any, Any, Any],
    data: Annotated[OutsideSwap, Body(media_type=RequestEncodingType.JSON)],
) -> Wire:
    strictly_typed(await request.body(), OutsideSwap)
    outcome = await market.ledger.swap_now(data.pool_id, data.token_in.value, int(data.amount_in_raw))
    return {**to_wire(outcome), "pool": pool_to_wire(market.ledger.pools[data.pool_id])}


@get(
    "/health",
    summary="The market's health",
    responses={503: ResponseSpec(Health, description="The market's database does not answer")},
)
async def market_health(market: NamedDependency[Market]) -> Response[Health]:
    state = await probe(market.ledger.store.ping())
    return Response(
        Health("ok" if state == "up" else "degraded", {"database": state}),
        status_code=200 if state == "up" else 503,
    )


def _invalid_transaction(_: Request[Any, Any, Any], exc: InvalidTransaction) -> Response[ErrorBody]:
    if isinstance(exc, UnknownPool):
        return error_response(404, "not_found", str(exc))
    return error_response(409, "conflict", str(exc))


def market_router(market: Market, path: str = "/market") -> Router:
    return Router(
        path=path,
        route_handlers=[list_pools, get_pool, TransactionController, outside_swap, market_health],
        # One dependency: Litestar resolves two or more in an anyio task group, for every request.
        dependencies={"market": Provide(lambda: market, use_cache=True, sync_to_thread=False)},
        exception_handlers={InvalidTransaction: _invalid_transaction},  # type: ignore[dict-item]
        tags=["market"],
    )


def create_market_app(market: Market, lifespan: Lifespan) -> Litestar:
    """`order-engine market`'s app: the market's API at the root of its own port."""
    return Litestar(
        route_handlers=[market_router(market, "/")],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_class=CheckedJsonRequest,
        logging_config=None,
    )
