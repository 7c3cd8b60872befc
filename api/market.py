"""The market's HTTP API: its pools, its ledger and its tokens, as an RPC node and an explorer shows them.

Mounted at `/market` in the app `serve` builds (embedded), or at the root of `order-engine market`'s own app
(MARKET_PORT). The wire format (camelCase, amounts in base units as strings of digits, `spotPrice` as an
exact decimal string, an outcome's `status`, a token's record) is venues/chain_wire.py's, which the HTTP
adapter reads. Tokens are named by symbol (2 to 10 uppercase ASCII letters or digits): the five the market
starts with and any launched since; a symbol the market does not know trades in no pool.

    GET  /pools?tokenIn=&tokenOut=&venue=   every pool matching the filters (a pair in either direction)
    GET  /pools/{poolId}                     one pool, or 404
    POST /transactions                       send a SwapTransaction; answers its outcome once it has landed
                                             or was dropped (a known clientTxId: its first outcome); 404 for
                                             a pool the chain does not have, 409 for a leg its pool cannot
                                             take (another pair, another venue)
    GET  /transactions/{clientTxId}          its status (pending, landed, dropped), or 404 if never seen
    GET  /transactions?order=<orderId>       the landed swaps of an order, in landing order
    GET  /tokens                             every token's record ({symbol, decimals, mintAuthority,
                                             freezeAuthority, announcedAt, launchedAt, firstPool}; times in
                                             unix ms, launchedAt and firstPool null until its first pool)
    GET  /tokens/{symbol}                    one token's record, or 404
    GET  /health                             200 when the market's database answers, 503 otherwise

Scripting, for tests, demos and scripts; off unless MARKET_SCRIPTING=true (403 naming the setting):

    POST /tokens                             announce a token ({symbol, decimals, mintAuthority?,
                                             freezeAuthority?}: addresses in base58, null or absent for
                                             renounced / none): 201 with its record; 409 if the symbol exists
    POST /tokens/{symbol}/pools              create a pool of it ({venue: raydium|meteora, quoteToken,
                                             amountRaw, quoteAmountRaw}: the two deposits, base units as
                                             digits; initial price quoteAmount/amount) as the venue's program
                                             initialises one (market/launch.py): 201 with the pool as
                                             GET /pools/{poolId} shows it; the token's first pool launches
                                             it. 404 for an unknown token; 409 for a quoteToken that is not
                                             tradable, the token itself, or deposits the program refuses
    POST /swaps                              an outside trader's swap into one pool, landing at once
                                             ({poolId, tokenIn, amountInRaw}): tests and demos move prices
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, Litestar, Request, Response, Router, get, post, route
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.enums import HttpMethod, MediaType, RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.errors import EXCEPTION_HANDLERS, ErrorBody, error_response, error_responses
from api.health import Health, probe
from api.orders import INTEGER, PRINTABLE_ASCII
from api.requests import CheckedJsonRequest, strictly_typed
from domain.tokens import MAX_DECIMALS
from market.launch import RefusedPool
from market.ledger import InvalidTransaction, UnknownPool
from market.market import VENUES, Market
from market.tokens import SYMBOL, Address, Symbol, TokenExists, UnknownToken
from venues.chain import SwapLeg, SwapTransaction, TokenRecord
from venues.chain_wire import POSITIVE_RAW, RAW, pool_to_wire, to_wire

if TYPE_CHECKING:
    from api.app import Lifespan

Wire = dict[str, Any]
MAX_LEGS = 16
Venue = enum.Enum("Venue", {venue: venue for venue in VENUES}, type=str)  # type: ignore[misc]
PositiveRaw = Annotated[str, msgspec.Meta(pattern=POSITIVE_RAW)]
NO_POOL = {404: "No such pool"}
NOT_FOR_THIS_POOL = {409: "A pool that does not trade this pair, or not on this venue"}
NO_TOKEN = {404: "No such token"}
SCRIPTING = "market_scripting"  # the router's option saying whether MARKET_SCRIPTING is on
SCRIPTING_OFF = {
    403: "MARKET_SCRIPTING is off: the market takes no launches or outside swaps (set MARKET_SCRIPTING=true)"
}


class LegBody(msgspec.Struct, rename="camel"):
    venue: Annotated[str, msgspec.Meta(max_length=16)]
    pool: Annotated[str, msgspec.Meta(max_length=64)]
    amount_in_raw: PositiveRaw


class TransactionBody(msgspec.Struct, rename="camel"):
    """The body of `POST /transactions`: a SwapTransaction on the wire (amounts as strings of digits;
    other fields are ignored)."""

    client_tx_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    order_id: Annotated[str, msgspec.Meta(max_length=64)]
    token_in: Symbol
    token_out: Symbol
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
            token_in=self.token_in,
            token_out=self.token_out,
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
    token_in: Symbol
    amount_in_raw: PositiveRaw


class TokenAnnouncement(msgspec.Struct, rename="camel"):
    """The body of `POST /tokens`: a new token's mint. An authority left out or null: renounced (mint) or
    none (freeze)."""

    symbol: Symbol
    # A float of integral value: JSON (and its schema's `integer`) makes no difference between 6 and 6.0.
    decimals: Annotated[
        float, msgspec.Meta(ge=0, le=MAX_DECIMALS, multiple_of=1, extra_json_schema={"extra": INTEGER})
    ]
    mint_authority: Address | None = None
    freeze_authority: Address | None = None


class PoolCreation(msgspec.Struct, rename="camel"):
    """The body of `POST /tokens/{symbol}/pools`: the venue and the creator's two deposits, in base units
    (`amountRaw` of the token, `quoteAmountRaw` of `quoteToken`, a tradable token such as SOL or USDC)."""

    venue: Venue  # type: ignore[valid-type]
    quote_token: Symbol
    amount_raw: PositiveRaw
    quote_amount_raw: PositiveRaw


def _encoded(body: bytes) -> Response[Any]:
    """A 200 of JSON already encoded (Litestar sends bytes as they are): the handler's annotation says what
    shape it has, for the schema."""
    return Response(body, media_type=MediaType.JSON)


@get("/pools", summary="The pools, filtered by pair and venue", responses=error_responses(400))
async def list_pools(
    market: NamedDependency[Market],
    token_in: Annotated[str | None, QueryParameter(name="tokenIn", pattern=SYMBOL)] = None,
    token_out: Annotated[str | None, QueryParameter(name="tokenOut", pattern=SYMBOL)] = None,
    venue: Annotated[Venue | None, QueryParameter()] = None,  # type: ignore[valid-type]
) -> Response[list[Wire]]:
    pools = await market.read_pools_json(venue and venue.value, token_in, token_out)
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


def scripting_on(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The guard of the scripting endpoints: refused (403, before the body is read) unless MARKET_SCRIPTING
    is on."""
    if not handler.opt.get(SCRIPTING):
        raise PermissionDeniedException(
            f"{connection.method} {connection.url.path} is off: the market takes launches and outside swaps "
            "only for tests and demos; set MARKET_SCRIPTING=true to turn them on"
        )


class TokenController(Controller):
    path = "/tokens"

    @route("/", http_method=[HttpMethod.OPTIONS], include_in_schema=False)
    async def allowed(self) -> Response[None]:
        """(As TransactionController's: `Allow` names every method of the path. Litestar registers a
        controller's handlers by name: this one must come first.)"""
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": "GET, OPTIONS, POST"})

    @get("/", summary="Every token's record, launched or only announced")
    async def list_tokens(self, market: NamedDependency[Market]) -> list[TokenRecord]:
        return market.registry.all()

    @get("/{symbol:str}", summary="One token's record", responses=error_responses(described=NO_TOKEN))
    async def token(
        self, market: NamedDependency[Market], symbol: Annotated[str, PathParameter()]
    ) -> TokenRecord:
        return market.registry.get(symbol)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Announce a token (scripting)",
        guards=[scripting_on],
        responses=error_responses(
            400, 415, 503, described=SCRIPTING_OFF | {409: "A token of this symbol exists"}
        ),
    )
    async def announce(
        self,
        market: NamedDependency[Market],
        request: Request[Any, Any, Any],
        data: Annotated[TokenAnnouncement, Body(media_type=RequestEncodingType.JSON)],
    ) -> TokenRecord:
        strictly_typed(await request.body(), TokenAnnouncement)
        decimals = int(data.decimals)
        return await market.announce(data.symbol, decimals, data.mint_authority, data.freeze_authority)

    @post(
        "/{symbol:str}/pools",
        status_code=HTTP_201_CREATED,
        summary="Create a pool of a token (scripting); its first launches it",
        guards=[scripting_on],
        responses=error_responses(
            400,
            415,
            503,
            described=SCRIPTING_OFF
            | NO_TOKEN
            | {409: "A quoteToken that is not tradable or is the token, or deposits the venue refuses"},
        ),
    )
    async def create_pool(
        self,
        market: NamedDependency[Market],
        request: Request[Any, Any, Any],
        symbol: Annotated[str, PathParameter()],
        data: Annotated[PoolCreation, Body(media_type=RequestEncodingType.JSON)],
    ) -> Wire:
        strictly_typed(await request.body(), PoolCreation)
        pool = await market.create_pool(
            symbol, data.venue.value, data.quote_token, int(data.amount_raw), int(data.quote_amount_raw)
        )
        return pool_to_wire(pool)


@post(
    "/swaps",
    status_code=HTTP_200_OK,
    summary="Swap into one pool now (an outside trader; scripting)",
    guards=[scripting_on],
    responses=error_responses(400, 415, 503, described=NO_POOL | NOT_FOR_THIS_POOL | SCRIPTING_OFF),
)
async def outside_swap(
    market: NamedDependency[Market],
    request: Request[Any, Any, Any],
    data: Annotated[OutsideSwap, Body(media_type=RequestEncodingType.JSON)],
) -> Wire:
    strictly_typed(await request.body(), OutsideSwap)
    outcome = await market.ledger.swap_now(data.pool_id, data.token_in, int(data.amount_in_raw))
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


def _refused(status_code: int, error: str) -> Any:
    def handler(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
        return error_response(status_code, error, str(exc))

    return handler


def _refused_pool(_: Request[Any, Any, Any], exc: RefusedPool) -> Response[ErrorBody]:
    return error_response(409, "conflict", str(exc), exc.field)


def market_router(market: Market, path: str = "/market") -> Router:
    return Router(
        path=path,
        route_handlers=[
            list_pools,
            get_pool,
            TransactionController,
            TokenController,
            outside_swap,
            market_health,
        ],
        # One dependency: Litestar resolves two or more in an anyio task group, for every request.
        dependencies={"market": Provide(lambda: market, use_cache=True, sync_to_thread=False)},
        exception_handlers={
            InvalidTransaction: _invalid_transaction,
            UnknownToken: _refused(404, "not_found"),
            TokenExists: _refused(409, "conflict"),
            RefusedPool: _refused_pool,
        },  # type: ignore[dict-item]
        opt={SCRIPTING: market.config.scripting},
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
