"""The market's HTTP API: its pools and its ledger, as an RPC node and an explorer would show them.

Mounted at `/market` in the app `serve` builds (embedded), or at the root of `order-engine market`'s own app
(MARKET_PORT). The wire format (camelCase, amounts in base units as strings of digits, `spotPrice` as an
exact decimal string, an outcome's `status`) is venues/chain_wire.py's, which the HTTP adapter reads.

    GET  /pools?tokenIn=&tokenOut=&venue=   every pool matching the filters (a pair in either direction)
    GET  /pools/{poolId}                     one pool, or 404
    POST /transactions                       send a SwapTransaction; answers its outcome once it has landed
                                             or was dropped (a known clientTxId: its first outcome); 400 for
                                             a transaction the chain cannot consider (unknown pool, ...)
    GET  /transactions/{clientTxId}          its status (pending, landed, dropped), or 404 if never seen
    GET  /transactions?order=<orderId>       the landed swaps of an order, in landing order
    POST /swaps                              an outside trader's swap into one pool, landing at once
                                             ({poolId, tokenIn, amountInRaw}): tests and demos move prices
    GET  /health                             200 when the market's database answers, 503 otherwise
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from api.errors import EXCEPTION_HANDLERS, ErrorBody, error_response, error_responses
from api.health import Health, probe
from market.ledger import InvalidTransaction
from market.market import Market
from venues.chain import SwapTransaction
from venues.chain_wire import pool_to_wire, to_wire

if TYPE_CHECKING:
    from api.app import Lifespan

Wire = dict[str, Any]
DIGITS = r"^[1-9][0-9]{0,38}$"


class OutsideSwap(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The body of `POST /swaps`: `amountInRaw` base units of `tokenIn` into `poolId`."""

    pool_id: str
    token_in: str
    amount_in_raw: Annotated[str, msgspec.Meta(pattern=DIGITS)]


@get("/pools", summary="The pools, filtered by pair and venue")
async def list_pools(
    market: NamedDependency[Market],
    token_in: Annotated[str | None, QueryParameter(name="tokenIn", max_length=16)] = None,
    token_out: Annotated[str | None, QueryParameter(name="tokenOut", max_length=16)] = None,
    venue: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> list[Wire]:
    return [pool_to_wire(pool) for pool in market.ledger.pools_for(venue, token_in, token_out)]


@get("/pools/{poolId:str}", summary="One pool", responses=error_responses(404))
async def get_pool(
    market: NamedDependency[Market], pool_id: Annotated[str, PathParameter(name="poolId")]
) -> Wire:
    pool = market.ledger.pools.get(pool_id)
    if pool is None:
        raise NotFoundException(f"no pool {pool_id!r}")
    return pool_to_wire(pool)


@post(
    "/transactions",
    status_code=HTTP_200_OK,
    summary="Send a transaction and wait for its outcome",
    responses=error_responses(400, 503),
)
async def send_transaction(
    market: NamedDependency[Market],
    data: Annotated[SwapTransaction, Body(media_type=RequestEncodingType.JSON)],
) -> Wire:
    return to_wire(await market.ledger.send(data))


@get("/transactions/{clientTxId:str}", summary="A transaction's status", responses=error_responses(404))
async def transaction_status(
    market: NamedDependency[Market], client_tx_id: Annotated[str, PathParameter(name="clientTxId")]
) -> Wire:
    status = market.ledger.status(client_tx_id)
    if status is None:
        raise NotFoundException(f"the chain has never seen transaction {client_tx_id!r}")
    return to_wire(status)


@get("/transactions", summary="The landed swaps of an order")
async def order_transactions(
    market: NamedDependency[Market], order: Annotated[str, QueryParameter(max_length=64)]
) -> list[Wire]:
    return [to_wire(landed) for landed in market.ledger.landed_of_order(order)]


@post(
    "/swaps",
    status_code=HTTP_200_OK,
    summary="Swap into one pool now (an outside trader)",
    responses=error_responses(400, 503),
)
async def outside_swap(
    market: NamedDependency[Market], data: Annotated[OutsideSwap, Body(media_type=RequestEncodingType.JSON)]
) -> Wire:
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
    return error_response(400, "invalid_request", str(exc))


def market_router(market: Market, path: str = "/market") -> Router:
    return Router(
        path=path,
        route_handlers=[
            list_pools,
            get_pool,
            send_transaction,
            transaction_status,
            order_transactions,
            outside_swap,
            market_health,
        ],
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
        logging_config=None,
    )
