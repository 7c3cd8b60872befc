"""Order commands and queries over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Body, FromQuery, HeaderParameter, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.access import require_api_key
from api.errors import error_response, error_responses
from api.messages import event_message
from api.requests import strictly_typed
from commands.submit_order import Enqueue, IdempotencyKeyReused, SubmitOrder, submit_order
from domain.amounts import RAW_PATTERN
from domain.order import DEFAULT_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS, MIN_SLIPPAGE_BPS
from domain.order_type import PLANNED_ORDER_TYPES, SUPPORTED_ORDER_TYPES, OrderType
from domain.status import OrderStatus
from domain.tokens import TOKENS, Token
from eventstore.base import EventStore
from projections.order_view import OrderView
from projections.queries import (
    CURSOR_PATTERN,
    InvalidCursor,
    OrderFilters,
    OrderPage,
    OrderQueries,
    OrderStats,
)

TOKEN_ENUM = {"enum": list(TOKENS)}
# RFC 3339 date-times (the OpenAPI `date-time` format), seconds and zone required, as every timestamp the
# API returns; the pattern narrows the format to what Python's `datetime.fromisoformat` reads.
DATE_TIME = {"format": "date-time"}
RFC_3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# slippageBps is decoded as a float that must be whole (`multiple_of=1`); its schema just says integer.
INTEGER = {"type": "integer", "multiple_of": None}
MAX_PAGE = 200
# Identifiers from headers are kept in the log: printable ASCII only (no NUL, nothing undecodable), and no
# space at either end, which is not part of a header's value (RFC 9110, 5.5: the door trims it).
PRINTABLE_ASCII = r"^[!-~]([ -~]*[!-~])?$"


class OrderSubmission(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The body of `POST /api/orders/execute`: an order submitted (executing it is the workers' part)."""

    # What msgspec decodes is looser than what is accepted: the domain then decides (400, or 422 for the
    # order types still to come). The OpenAPI schema states what is accepted (`ORDER_SUBMISSION_SCHEMA`).
    order_type: Annotated[
        OrderType,
        msgspec.Meta(
            extra_json_schema={
                "description": f"{' and '.join(PLANNED_ORDER_TYPES)} orders are planned: 422 for now.",
                "extra": {"enum": list(SUPPORTED_ORDER_TYPES)},
            }
        ),
    ]
    token_in: Annotated[
        str, msgspec.Meta(max_length=16, extra_json_schema={"extra": TOKEN_ENUM, "examples": ["SOL"]})
    ]
    token_out: Annotated[
        str, msgspec.Meta(max_length=16, extra_json_schema={"extra": TOKEN_ENUM, "examples": ["USDC"]})
    ]
    amount_in: Annotated[
        Decimal | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Amount of tokenIn to sell in whole tokens, exactly: a JSON number or a "
                "decimal string with at most the token's decimals (SOL 9, USDC/USDT 6, BONK 5, JUP 6), at "
                "most the token's maximum (per token below). Give this or amountInRaw.",
                "examples": [0.5, "0.5"],
                # Decimal's default schema is a number (api/wire.py); a decimal string is as good.
                "extra": {"one_of": [Schema(type=OpenAPIType.NUMBER), Schema(type=OpenAPIType.STRING)]},
            },
        ),
    ] = None
    amount_in_raw: Annotated[
        str | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "The same amount in base units (1 SOL = 1000000000), as a string of digits. "
                "Give this or amountIn.",
                "extra": {"pattern": RAW_PATTERN},
                "examples": ["500000000"],
            },
        ),
    ] = None
    # A float of integral value: JSON (and its schema's `integer`) makes no difference between 50 and 50.0.
    slippage_bps: Annotated[
        float,
        msgspec.Meta(
            ge=MIN_SLIPPAGE_BPS, le=MAX_SLIPPAGE_BPS, multiple_of=1, extra_json_schema={"extra": INTEGER}
        ),
    ] = DEFAULT_SLIPPAGE_BPS


def up_to(limit: int) -> str:
    """A regular expression (unanchored) of the whole numbers 1..`limit`, written without leading zeros:
    fewer digits than `limit`, or as many and smaller at the first digit that differs, or `limit` itself."""
    digits = str(limit)
    size = len(digits)
    shorter = [f"[1-9][0-9]{{0,{size - 2}}}"] if size > 1 else []
    smaller = [
        digits[:i] + f"[{low}-{int(digit) - 1}]" + (f"[0-9]{{{size - i - 1}}}" if i < size - 1 else "")
        for i, digit in enumerate(digits)
        if int(digit) > (low := 1 if i == 0 else 0)
    ]
    return f"({'|'.join([*shorter, *smaller, digits])})"


def raw_pattern(token: Token) -> str:
    """`amountInRaw` of `token`: base units 1..the token's maximum, as digits."""
    return f"^{up_to(token.max_amount_in_raw)}$"


def decimal_pattern(token: Token) -> str:
    """`amountIn` of `token` as a decimal string: above 0, at most the token's maximum, at most its decimals
    after the point (`0.5`, `10000`, `10000.000`; not `0`, `0.0000000001`, `10000.5` for SOL)."""
    decimals = token.decimals
    most = token.max_amount_in_raw // 10**decimals  # the maximum is a whole number of tokens
    below_one = "|".join(f"0{{{zeros}}}[1-9][0-9]{{0,{decimals - zeros - 1}}}" for zeros in range(decimals))
    return rf"^(0\.({below_one})|{up_to(most - 1)}(\.[0-9]{{1,{decimals}}})?|{most}(\.0{{1,{decimals}}})?)$"


def given(field: str) -> Schema:
    """`field` is there and not null."""
    return Schema(required=[field], properties={field: Schema(schema_not=Schema(type=OpenAPIType.NULL))})


# The rules that tie fields together, from the token table the domain checks against: one branch per
# tokenIn, with its amount range and the tokens it can be swapped for, and exactly one of amountIn and
# amountInRaw. Unknown fields are refused.
ORDER_SUBMISSION_SCHEMA = {
    "additional_properties": False,
    "one_of": [
        Schema(
            title=f"Sell {symbol}",
            properties={
                "tokenIn": Schema(const=symbol),
                "tokenOut": Schema(enum=[other for other in TOKENS if other != symbol]),
                "amountIn": Schema(
                    one_of=[
                        Schema(
                            type=OpenAPIType.NUMBER,
                            minimum=float(token.value(1)),
                            maximum=float(token.value(token.max_amount_in_raw)),
                        ),
                        Schema(type=OpenAPIType.STRING, pattern=decimal_pattern(token)),
                        Schema(type=OpenAPIType.NULL),
                    ]
                ),
                "amountInRaw": Schema(
                    one_of=[
                        Schema(type=OpenAPIType.STRING, pattern=raw_pattern(token)),
                        Schema(type=OpenAPIType.NULL),
                    ]
                ),
            },
            one_of=[given("amountIn"), given("amountInRaw")],
        )
        for symbol, token in TOKENS.items()
    ],
}


def amount_as_written(body: bytes, amount_in: Decimal | None) -> Decimal | str | None:
    """`amountIn` as the client wrote it: a decimal string goes to the domain as that string, whose rules
    for it are stricter than Python's (no spaces, underscores, signs or non-ASCII digits); a JSON number is
    the exact Decimal msgspec read."""
    written = msgspec.json.decode(body)
    return written["amountIn"] if isinstance(written.get("amountIn"), str) else amount_in


OrderIdPath = Annotated[uuid.UUID, PathParameter(name="orderId")]


class OrderAccepted(msgspec.Struct, rename="camel"):
    order_id: str
    ws_url: str


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
    async def submit(
        self,
        data: Annotated[
            OrderSubmission, Body(media_type=RequestEncodingType.JSON, schema_extra=ORDER_SUBMISSION_SCHEMA)
        ],
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
        body = await request.body()
        data = strictly_typed(body, OrderSubmission)
        try:
            submitted = await submit_order(
                SubmitOrder(
                    order_type=data.order_type,
                    token_in=data.token_in,
                    token_out=data.token_out,
                    amount_in=amount_as_written(body, data.amount_in),
                    amount_in_raw=data.amount_in_raw,
                    slippage_bps=int(data.slippage_bps),
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
        accepted = OrderAccepted(submitted.order_id, f"/api/orders/execute?orderId={submitted.order_id}")
        return Response(accepted, status_code=HTTP_201_CREATED if submitted.created else HTTP_200_OK)

    # Read as a string, then converted to the argument's type: a malformed id answers 400, not 404.
    @get("/{orderId:str}", summary="One order's read model", responses=error_responses(400, 404, 503))
    async def get_order(self, order_id: OrderIdPath, queries: NamedDependency[OrderQueries]) -> OrderView:
        view = await queries.get(str(order_id))
        if view is None:
            raise NotFoundException(f"no order {order_id}")
        return view

    @get(
        "/{orderId:str}/events",
        summary="One order's events, as the WebSocket sends them",
        responses=error_responses(400, 404, 503),
    )
    async def get_events(
        self, order_id: OrderIdPath, queries: NamedDependency[OrderQueries]
    ) -> list[dict[str, Any]]:
        events = await queries.events(str(order_id))
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
        created_after: Annotated[
            str | None, QueryParameter(name="createdAfter", pattern=RFC_3339, schema_extra=DATE_TIME)
        ] = None,
        created_before: Annotated[
            str | None, QueryParameter(name="createdBefore", pattern=RFC_3339, schema_extra=DATE_TIME)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                pattern=CURSOR_PATTERN,
                description="`nextCursor` of the previous page: the last order's creation time (microseconds "
                "since 1970, UTC) and id (hex), dash-separated; the page lists the orders older than that.",
            ),
        ] = None,
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
    """An RFC 3339 query timestamp, in UTC (SQLite compares timestamps as text, so all must share a zone).

    Parsed here rather than by Litestar, whose lenient conversion would read `0.5` as a moment in 1970."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:  # the pattern let it through, yet it is no date: `2026-02-30T00:00:00Z`
        raise ValidationException(extra=[{"key": name, "message": "must be an RFC 3339 date-time"}]) from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # a moment near year 1 or 9999 whose offset takes it beyond: it lies before
        return datetime.min.replace(tzinfo=UTC) if moment.year == 1 else datetime.max.replace(tzinfo=UTC)
