"""Order commands and queries over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.access import require_api_key
from api.errors import error_response, error_responses
from api.messages import event_message
from commands.submit_order import Enqueue, IdempotencyKeyReused, SubmitOrder, submit_order
from domain.order import DEFAULT_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS, MIN_SLIPPAGE_BPS
from domain.status import OrderStatus
from domain.tokens import TOKENS
from eventstore.base import EventStore
from projections.order_view import OrderView
from projections.queries import InvalidCursor, OrderFilters, OrderPage, OrderQueries, OrderStats

ISO_8601 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$"
TOKEN_DOC = f"one of {', '.join(TOKENS)}"
MAX_PAGE = 200
# Identifiers from headers are kept in the log: printable ASCII only (no NUL, nothing undecodable).
PRINTABLE_ASCII = r"^[ -~]+$"


class ExecuteOrder(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    order_type: Annotated[
        Literal["market", "limit", "sniper"],
        msgspec.Meta(description="Only market orders are executed for now; limit and sniper answer 422."),
    ]
    token_in: Annotated[str, msgspec.Meta(max_length=16, description=TOKEN_DOC, examples=["SOL"])]
    token_out: Annotated[str, msgspec.Meta(max_length=16, description=TOKEN_DOC, examples=["USDC"])]
    amount_in: Annotated[
        float, msgspec.Meta(gt=0, description="Amount of tokenIn to sell; at most the token's maximum.")
    ]
    slippage_bps: Annotated[int, msgspec.Meta(ge=MIN_SLIPPAGE_BPS, le=MAX_SLIPPAGE_BPS)] = (
        DEFAULT_SLIPPAGE_BPS
    )


class OrderAccepted(msgspec.Struct, rename="camel"):
    order_id: str
    ws_url: str


def parse_order_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ValidationException(extra=[{"key": "orderId", "message": "must be a UUID"}]) from None


def strictly_typed(body: bytes) -> None:
    """Refuse what Litestar's lenient conversion lets through, such as `"amountIn": "0.5"`."""
    try:
        msgspec.json.decode(body, type=ExecuteOrder)
    except msgspec.ValidationError as error:
        # No key: the error handler names the field msgspec's message points at ("- at `$.amountIn`").
        raise ValidationException(extra=[{"message": str(error)}]) from None


class OrderController(Controller):
    path = "/api/orders"
    tags = ["orders"]

    @post(
        "/execute",
        status_code=HTTP_201_CREATED,
        summary="Submit an order",
        guards=[require_api_key],  # and the app's refuse_cross_site
        responses={
            HTTP_200_OK: ResponseSpec(OrderAccepted, description="An idempotent repeat: the same order"),
            **error_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
        },
    )
    async def execute(
        self,
        data: JSONBody[ExecuteOrder],
        request: Request[Any, Any, Any],
        store: NamedDependency[EventStore],
        enqueue: NamedDependency[Enqueue],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key", min_length=1, max_length=128, pattern=PRINTABLE_ASCII, required=False
            ),
        ] = None,
        request_id: Annotated[
            str | None,
            HeaderParameter(
                name="X-Request-ID",
                min_length=1,
                max_length=128,
                pattern=PRINTABLE_ASCII,
                required=False,
                description="Stored as the correlation id of the order's events (default: the order id)",
            ),
        ] = None,
    ) -> Response[OrderAccepted]:
        """Accepts the order and queues it; follow it on the WebSocket at `wsUrl` (same path, GET upgrade)."""
        strictly_typed(await request.body())
        try:
            submitted = await submit_order(
                SubmitOrder(
                    order_type=data.order_type,
                    token_in=data.token_in,
                    token_out=data.token_out,
                    amount_in=data.amount_in,
                    slippage_bps=data.slippage_bps,
                    idempotency_key=idempotency_key,
                    correlation_id=request_id,
                ),
                store,
                enqueue,
            )
        except IdempotencyKeyReused:
            return error_response(  # type: ignore[return-value]
                409,
                "idempotency_key_reused",
                "Idempotency-Key: already used for a different order",
                "Idempotency-Key",
            )
        body = OrderAccepted(submitted.order_id, f"/api/orders/execute?orderId={submitted.order_id}")
        return Response(body, status_code=HTTP_201_CREATED if submitted.created else HTTP_200_OK)

    @get("/{order_id:str}", summary="One order's read model", responses=error_responses(400, 404, 503))
    async def get_order(self, order_id: FromPath[str], queries: NamedDependency[OrderQueries]) -> OrderView:
        view = await queries.get(parse_order_id(order_id))
        if view is None:
            raise NotFoundException(f"no order {order_id}")
        return view

    @get(
        "/{order_id:str}/events",
        summary="One order's events, as the WebSocket sends them",
        responses=error_responses(400, 404, 503),
    )
    async def get_events(
        self, order_id: FromPath[str], queries: NamedDependency[OrderQueries]
    ) -> list[dict[str, Any]]:
        events = await queries.events(parse_order_id(order_id))
        if not events:
            raise NotFoundException(f"no order {order_id}")
        return [event_message(recorded) for recorded in events]

    @get("/", summary="A page of orders, newest first, filtered", responses=error_responses(400, 503))
    async def list_orders(
        self,
        queries: NamedDependency[OrderQueries],
        status: FromQuery[OrderStatus | None] = None,
        token_in: Annotated[str | None, QueryParameter(name="tokenIn", max_length=16)] = None,
        token_out: Annotated[str | None, QueryParameter(name="tokenOut", max_length=16)] = None,
        venue: Annotated[str | None, QueryParameter(max_length=16)] = None,
        created_after: Annotated[str | None, QueryParameter(name="createdAfter", pattern=ISO_8601)] = None,
        created_before: Annotated[str | None, QueryParameter(name="createdBefore", pattern=ISO_8601)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> OrderPage:
        filters = OrderFilters(
            status=str(status) if status else None,
            token_in=token_in,
            token_out=token_out,
            venue=venue,
            created_after=_moment("createdAfter", created_after),
            created_before=_moment("createdBefore", created_before),
        )
        try:
            return await queries.page(filters, limit, cursor)
        except InvalidCursor as error:
            raise ValidationException(extra=[{"key": "cursor", "message": str(error)}]) from None


@get("/api/stats", tags=["orders"], summary="Counts, venues, prices and retries over all orders")
async def order_stats(queries: NamedDependency[OrderQueries]) -> OrderStats:
    return await queries.stats()


def _moment(name: str, raw: str | None) -> datetime | None:
    """An ISO 8601 query timestamp; one without a zone is UTC, like every timestamp the API returns.

    Parsed here rather than by Litestar, whose lenient conversion would read `0.5` as a moment in 1970."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationException(extra=[{"key": name, "message": "must be an ISO 8601 date-time"}]) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
