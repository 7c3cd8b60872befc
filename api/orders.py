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
from api.errors import MarketUnavailable, error_responses
from api.messages import event_message
from api.requests import strictly_typed
from commands.cancel_order import cancel_order
from commands.submit_order import SubmitOrder, SubmitOrderHandler
from domain.amounts import MAX_DIGITS, RAW_PATTERN
from domain.order import (
    DEFAULT_SLIPPAGE_BPS,
    MAX_PRICE_TEXT,
    MAX_SLIPPAGE_BPS,
    MAX_SNIPE_DELAY_MS,
    MAX_WAIT,
    MIN_SLIPPAGE_BPS,
    PRICE_TEXT,
    TOKEN_SYMBOL,
)
from domain.order_type import OrderType
from domain.status import OrderStatus
from domain.tokens import SNIPER_FUNDING, TOKENS, Token
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
from venues.base import VENUE_FAILURES

TOKEN_ENUM = {"enum": list(TOKENS)}
# RFC 3339 date-times (the OpenAPI `date-time` format), seconds and zone required, as every timestamp the
# API returns; the pattern narrows the format to what Python's `datetime.fromisoformat` reads.
DATE_TIME = {"format": "date-time"}
RFC_3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# slippageBps is decoded as a float that must be whole (`multiple_of=1`); its schema just says integer.
INTEGER = {"type": "integer", "multiple_of": None}
# A decimal field's schema (api/wire.py gives Decimal a number's): a JSON number, a decimal string, or null
# for "not given", as msgspec reads these optional fields.
DECIMAL_OR_NULL = {
    "one_of": [
        Schema(type=OpenAPIType.NUMBER),
        Schema(type=OpenAPIType.STRING),
        Schema(type=OpenAPIType.NULL),
    ]
}
MAX_PAGE = 200
SYMBOL_QUERY = f"^{TOKEN_SYMBOL.pattern}$"  # a token's symbol, static or launched: no order has another
VENUE_QUERY = r"^[a-z]{1,16}$"  # a venue's name (`raydium`, `meteora`)
# Identifiers from headers are kept in the log: printable ASCII only (no NUL, nothing undecodable), and no
# space at either end, which is not part of a header's value (RFC 9110, 5.5: the door trims it).
PRINTABLE_ASCII = r"^[!-~]([ -~]*[!-~])?$"


class OrderSubmission(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The body of `POST /api/orders/execute`: an order submitted (executing it is the workers' part)."""

    # What msgspec decodes is looser than what is accepted: the domain then decides (400). The OpenAPI
    # schema states what is accepted (`ORDER_SUBMISSION_SCHEMA`).
    order_type: Annotated[
        OrderType,
        msgspec.Meta(
            extra_json_schema={
                "description": "market: executed at once; limit: waits until a quote for its whole amountIn "
                "reaches its limit (`waiting`), then runs as a market order that never takes less; sniper: "
                "waits for the first pool of tokenOut, a token announced but not tradable yet, and buys it "
                "if the token passes the checks (mint authority renounced, no freeze authority)."
            }
        ),
    ]
    token_in: Annotated[
        str, msgspec.Meta(max_length=16, extra_json_schema={"extra": TOKEN_ENUM, "examples": ["SOL"]})
    ]
    token_out: Annotated[
        str,
        msgspec.Meta(
            max_length=16,
            extra_json_schema={
                "description": "One of the engine's tokens; for a sniper order, a token the market has "
                "announced and not launched yet.",
                "examples": ["USDC"],
            },
        ),
    ]
    amount_in: Annotated[
        Decimal | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Amount of tokenIn to sell in whole tokens, exactly: a JSON number or a "
                "decimal string with at most the token's decimals (SOL 9, USDC/USDT 6, BONK 5, JUP 6), at "
                "most the token's maximum (per token below). Give this or amountInRaw.",
                "examples": [0.5, "0.5"],
                "extra": DECIMAL_OR_NULL,
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
    limit_price: Annotated[
        Decimal | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Limit orders: the least tokenOut per tokenIn (whole tokens) the order may "
                "take, fees and price impact in, as a JSON number or a decimal string (at most 38 "
                "digits). Give this, takingAmount or takingAmountRaw.",
                "examples": [160, "160.5"],
                "extra": DECIMAL_OR_NULL,
            },
        ),
    ] = None
    taking_amount: Annotated[
        Decimal | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Limit orders: the least tokenOut (whole tokens) for the whole amountIn, as "
                "Jupiter's trigger orders give it; at most tokenOut's decimals.",
                "examples": [80, "80.25"],
                "extra": DECIMAL_OR_NULL,
            },
        ),
    ] = None
    taking_amount_raw: Annotated[
        str | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Limit orders: takingAmount in tokenOut's base units, as a string of digits.",
                "extra": {"pattern": RAW_PATTERN},
                "examples": ["80250000"],
            },
        ),
    ] = None
    expires_at: Annotated[
        Annotated[str, msgspec.Meta(pattern=RFC_3339)] | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Limit orders: when a waiting order expires (RFC 3339, in the future, at most "
                f"{MAX_WAIT.days} days ahead). None: it waits until it fires or is cancelled.",
                "extra": DATE_TIME,
            },
        ),
    ] = None
    min_liquidity: Annotated[
        Decimal | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Sniper orders: buy only from pools holding at least this much tokenIn (whole "
                "tokens, at most its decimals); default 0.",
                "examples": [100, "100.5"],
                "extra": DECIMAL_OR_NULL,
            },
        ),
    ] = None
    # A float of integral value, as slippageBps (below); the bounds inside the union, where msgspec (and
    # Litestar's reading of the handler's signature) takes them, and stated again for the schema.
    max_delay_ms: Annotated[
        Annotated[float, msgspec.Meta(ge=1, le=MAX_SNIPE_DELAY_MS, multiple_of=1)] | None,
        msgspec.Meta(
            extra_json_schema={
                "description": "Sniper orders: buy within this many ms of the token's first pool, or expire. "
                "Default: no limit.",
                "extra": {
                    "one_of": [
                        Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_SNIPE_DELAY_MS),
                        Schema(type=OpenAPIType.NULL),
                    ]
                },
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


def positive_decimal(decimals: int) -> str:
    """A regular expression (unanchored) of decimal strings above 0 with at most `decimals` after the
    point, and fewer than 10**(MAX_DIGITS - decimals) (`takingAmount`, `minLiquidity` of a token with
    `decimals`; a larger one is refused as far too large, 400, where one within is at worst `422`)."""
    below_one = "|".join(f"0{{{zeros}}}[1-9][0-9]{{0,{decimals - zeros - 1}}}" for zeros in range(decimals))
    whole = rf"[1-9][0-9]{{0,{MAX_DIGITS - decimals - 1}}}"
    return rf"0\.({below_one})|{whole}(\.[0-9]{{1,{decimals}}})?"


def below_too_large(token: Token) -> float:
    """The bound (exclusive) of a decimal field as a JSON number, in whole `token`: `positive_decimal`'s."""
    return float(10 ** (MAX_DIGITS - token.decimals))


NULL = Schema(type=OpenAPIType.NULL)
LIMIT_FIELDS = ("limitPrice", "takingAmount", "takingAmountRaw")
SNIPER_FIELDS = ("minLiquidity", "maxDelayMs")


def or_null(*schemas: Schema) -> Schema:
    return Schema(one_of=[*schemas, NULL])


def amounts_in(token: Token) -> dict[str, Schema]:
    """`amountIn` and `amountInRaw` of `token`: its range, in whole tokens (a number or a decimal string)
    or in base units."""
    return {
        "amountIn": or_null(
            Schema(
                type=OpenAPIType.NUMBER,
                minimum=float(token.value(1)),
                maximum=float(token.value(token.max_amount_in_raw)),
            ),
            Schema(type=OpenAPIType.STRING, pattern=decimal_pattern(token)),
        ),
        "amountInRaw": or_null(Schema(type=OpenAPIType.STRING, pattern=raw_pattern(token))),
    }


def limit_of(token_out: Token) -> dict[str, Schema]:
    """The three ways to give a limit, selling for `token_out`."""
    return {
        "limitPrice": or_null(
            Schema(type=OpenAPIType.NUMBER, exclusive_minimum=0),
            Schema(type=OpenAPIType.STRING, pattern=f"^({PRICE_TEXT.pattern})$", max_length=MAX_PRICE_TEXT),
        ),
        "takingAmount": or_null(
            Schema(
                type=OpenAPIType.NUMBER,
                minimum=float(token_out.value(1)),
                exclusive_maximum=below_too_large(token_out),
            ),
            Schema(type=OpenAPIType.STRING, pattern=f"^({positive_decimal(token_out.decimals)})$"),
        ),
        "takingAmountRaw": or_null(Schema(type=OpenAPIType.STRING, pattern=RAW_PATTERN)),
    }


ONE_AMOUNT = Schema(one_of=[given("amountIn"), given("amountInRaw")])


def market_branch(symbol: str, token: Token) -> Schema:
    return Schema(
        title=f"Market: sell {symbol}",
        properties={
            "orderType": Schema(const="market"),
            "tokenIn": Schema(const=symbol),
            "tokenOut": Schema(enum=[other for other in TOKENS if other != symbol]),
            **amounts_in(token),
            **{field: NULL for field in (*LIMIT_FIELDS, *SNIPER_FIELDS, "expiresAt")},
        },
        all_of=[ONE_AMOUNT],
    )


def limit_branch(symbol: str, token: Token, out: str) -> Schema:
    return Schema(
        title=f"Limit: sell {symbol} for {out}",
        properties={
            "orderType": Schema(const="limit"),
            "tokenIn": Schema(const=symbol),
            "tokenOut": Schema(const=out),
            **amounts_in(token),
            **limit_of(TOKENS[out]),
            **{field: NULL for field in SNIPER_FIELDS},
        },
        all_of=[ONE_AMOUNT, Schema(one_of=[given(field) for field in LIMIT_FIELDS])],
    )


def sniper_branch(symbol: str, token: Token) -> Schema:
    return Schema(
        title=f"Sniper: buy a new token with {symbol}",
        properties={
            "orderType": Schema(const="sniper"),
            "tokenIn": Schema(const=symbol),
            "tokenOut": Schema(
                type=OpenAPIType.STRING,
                pattern=f"^{TOKEN_SYMBOL.pattern}$",
                schema_not=Schema(enum=list(TOKENS)),
            ),
            **amounts_in(token),
            "minLiquidity": or_null(
                Schema(type=OpenAPIType.NUMBER, minimum=0, exclusive_maximum=below_too_large(token)),
                Schema(
                    type=OpenAPIType.STRING,
                    pattern=rf"^(0(\.0{{1,{token.decimals}}})?|{positive_decimal(token.decimals)})$",
                ),
            ),
            **{field: NULL for field in LIMIT_FIELDS},
        },
        all_of=[ONE_AMOUNT],
    )


# What is accepted, from the token table the domain checks against: one branch per order type and tokenIn
# (and tokenOut, for a limit's amount out), each with its amount range and the fields its type takes;
# exactly one of amountIn and amountInRaw, and for a limit exactly one way to give it. Unknown fields are
# refused. What depends on the moment or the market (an expiry in the future, a sniper's token announced and
# not launched) is `422`.
ORDER_SUBMISSION_SCHEMA = {
    "additional_properties": False,
    "one_of": [
        *(market_branch(symbol, token) for symbol, token in TOKENS.items()),
        *(
            limit_branch(symbol, token, out)
            for symbol, token in TOKENS.items()
            for out in TOKENS
            if out != symbol
        ),
        *(sniper_branch(symbol, TOKENS[symbol]) for symbol in SNIPER_FUNDING),
    ],
}


def as_written(written: dict[str, Any], key: str, value: Decimal | None) -> Decimal | str | None:
    """A decimal field (`amountIn`, `limitPrice`, `takingAmount`) as the client wrote it: a decimal string
    goes to the domain as that string, whose rules for it are stricter than Python's (no spaces,
    underscores, signs or non-ASCII digits); a JSON number is the exact Decimal msgspec read."""
    return written[key] if isinstance(written.get(key), str) else value


OrderIdPath = Annotated[uuid.UUID, PathParameter(name="orderId")]


class OrderAccepted(msgspec.Struct, rename="camel"):
    order_id: str
    ws_url: str


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST /api/orders/{orderId}/cancel`: `{}`, or none. It is sent as JSON all the same:
    every command is (`api/access.py`, `refuse_cross_site`)."""


class OrderCancellation(msgspec.Struct, rename="camel"):
    order_id: str
    status: str


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
        submit_order: NamedDependency[SubmitOrderHandler],
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
        written = msgspec.json.decode(body)
        try:
            submitted = await submit_order(
                SubmitOrder(
                    order_type=data.order_type,
                    token_in=data.token_in,
                    token_out=data.token_out,
                    amount_in=as_written(written, "amountIn", data.amount_in),
                    amount_in_raw=data.amount_in_raw,
                    limit_price=as_written(written, "limitPrice", data.limit_price),
                    taking_amount=as_written(written, "takingAmount", data.taking_amount),
                    taking_amount_raw=data.taking_amount_raw,
                    expires_at=_moment("expiresAt", data.expires_at),
                    min_liquidity=as_written(written, "minLiquidity", data.min_liquidity),
                    max_delay_ms=None if data.max_delay_ms is None else int(data.max_delay_ms),
                    slippage_bps=int(data.slippage_bps),
                    idempotency_key=idempotency_key,
                    correlation_id=request_id,
                ),
            )
        except VENUE_FAILURES as failure:  # looking a sniper order's token up
            message = "tokenOut: the market did not answer; nothing was recorded"
            raise MarketUnavailable(message, "tokenOut") from failure
        accepted = OrderAccepted(submitted.order_id, f"/api/orders/execute?orderId={submitted.order_id}")
        return Response(accepted, status_code=HTTP_201_CREATED if submitted.created else HTTP_200_OK)

    @post(
        "/{orderId:str}/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel a waiting (limit or sniper) order",
        guards=[require_api_key],
        responses=error_responses(400, 401, 403, 404, 409, 415, 503),
    )
    async def cancel(
        self,
        order_id: OrderIdPath,
        store: NamedDependency[EventStore],
        data: Annotated[
            CancelRequest | None,
            Body(media_type=RequestEncodingType.JSON, schema_extra={"additional_properties": False}),
        ] = None,
    ) -> OrderCancellation:
        """Ends a `waiting` order as `cancelled`. An order that has fired or ended, or a market order, answers
        409 with its `status`: of a cancel and a trigger racing, exactly one wins."""
        await cancel_order(str(order_id), store)
        return OrderCancellation(str(order_id), str(OrderStatus.CANCELLED))

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
        token_in: Annotated[str | None, QueryParameter(name="tokenIn", pattern=SYMBOL_QUERY)] = None,
        token_out: Annotated[
            str | None,
            QueryParameter(
                name="tokenOut",
                pattern=SYMBOL_QUERY,
                description="One of the engine's tokens, or one launched since (a sniper order's)",
            ),
        ] = None,
        venue: Annotated[str | None, QueryParameter(pattern=VENUE_QUERY)] = None,
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
