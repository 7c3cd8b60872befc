"""Every error leaves as JSON naming what was wrong; nothing internal ever reaches the client."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from commands.cancel_order import OrderNotFound
from commands.submit_order import IdempotencyKeyReused
from domain.order import NotWaiting, OrderRejected, OrderUnprocessable
from eventstore.base import StoreUnavailable

log = logging.getLogger(__name__)

CLIENT_LEFT = "order_engine.client_left"  # scope key set at the door (api/ingress.py) on `http.disconnect`


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str  # a stable code: invalid_request, not_found, not_waiting, ...
    message: str  # for people: names the field and the rule
    field: str | None = None
    status: str | None = None  # the order's status, when that is why (a cancel of an order not waiting)


def error_responses(*codes: int, described: dict[int, str] | None = None) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can answer, all with the ErrorBody shape: `codes` with the
    order API's descriptions, and the codes of `described` with their own."""
    descriptions = {code: ERROR_DESCRIPTIONS[code] for code in codes} | (described or {})
    return {
        code: ResponseSpec(data_container=ErrorBody, description=text, generate_examples=False)
        for code, text in descriptions.items()
    }


ERROR_DESCRIPTIONS = {
    400: "Bad input: `message` names the field and the rule",
    401: "API_KEY is set and the request lacks `Authorization: Bearer <API_KEY>`",
    403: "The request's Origin is neither the API's own nor one of CORS_ORIGINS",
    404: "No such order",
    409: "A conflict: the Idempotency-Key was first used for a different order, or the order is not waiting "
    "and cannot be cancelled (`status` is the order's status)",
    413: "The body is larger than REQUEST_MAX_BODY_BYTES",
    415: "The body is not `Content-Type: application/json`",
    422: "A well-formed order that the moment or the market refuses: an expiresAt past, a limit no pool "
    "could pay, a sniper order's token unknown to the market or trading already",
    429: "Too many submissions from this client; see Retry-After",
    503: "The database, Redis or the market is unavailable; nothing was done",
}


def error_response(
    status_code: int, error: str, message: str, field: str | None = None, status: str | None = None
) -> Response[ErrorBody]:
    body = ErrorBody(error, message, field, status)
    return Response(body, status_code=status_code, media_type=MediaType.JSON)


# Parameters whose name on the wire is not the camelCase of the Python name.
WIRE_NAMES = {"idempotency_key": "Idempotency-Key", "request_id": "X-Request-ID"}


def _camel(name: str) -> str:
    return re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)


MSGSPEC_FIELD = re.compile(r"(?:at `\$\.|field `)(\w+)")
# msgspec names the Python types it expected and got; clients send JSON, whose types these are.
JSON_TYPES = {"float": "number", "int": "integer", "str": "string", "bool": "boolean"}
PYTHON_TYPE = re.compile(r"\b(float|int|str|bool)\b")
QUOTED = re.compile(r"`[^`]*`")


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    if not problems:
        return error_response(400, "invalid_request", _about_the_body(_readable(str(exc.detail))))
    first = problems[0]
    message = QUOTED.sub(_in_json_terms, first.get("message", exc.detail))
    field = first.get("key") or None
    if field in (None, "data"):  # the body as a whole: name the field msgspec's message points at
        named = MSGSPEC_FIELD.search(message)
        field = named.group(1) if named else None
        if field is None and message == "'data'":
            message = "body: a JSON object is required"
    else:
        field = WIRE_NAMES.get(field, _camel(field))
    if field:
        message = f"{field}: {message}"
    return error_response(400, "invalid_request", _about_the_body(message), field)


def _in_json_terms(quoted: re.Match[str]) -> str:
    return PYTHON_TYPE.sub(lambda name: JSON_TYPES[name.group(1)], quoted.group(0))


def _about_the_body(message: str) -> str:
    """A message that names no field is about the request as a whole: say so, as every message names what."""
    return message if re.match(r"^[\w.-]+: ", message) else f"body: {message}"


def _readable(detail: str) -> str:
    if detail.startswith("Number out of range"):  # msgspec cannot tell which field held it
        return "body: a number is out of range; amounts must be finite numbers"
    return detail


def _order_rejected(_: Request[Any, Any, Any], exc: OrderRejected) -> Response[ErrorBody]:
    if isinstance(exc, OrderUnprocessable):
        return error_response(422, "unprocessable", str(exc), exc.field)
    return error_response(400, "invalid_request", str(exc), exc.field)


def _key_reused(_: Request[Any, Any, Any], exc: IdempotencyKeyReused) -> Response[ErrorBody]:
    message = "Idempotency-Key: already used for a different order"
    return error_response(409, "idempotency_key_reused", message, "Idempotency-Key")


def _not_waiting(_: Request[Any, Any, Any], exc: NotWaiting) -> Response[ErrorBody]:
    status = str(exc.status)
    message = f"orderId: the order is {status}; only a waiting order can be cancelled"
    return error_response(409, "not_waiting", message, "orderId", status)


def _no_order(_: Request[Any, Any, Any], exc: OrderNotFound) -> Response[ErrorBody]:
    return error_response(404, "not_found", f"no order {exc}")


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if client_left(request.scope):
        return _client_left(request, exc)
    if exc.status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "unavailable")
    headers = dict(exc.headers or {})
    if exc.status_code == HTTP_429_TOO_MANY_REQUESTS and "RateLimit-Reset" in headers:
        headers["Retry-After"] = headers["RateLimit-Reset"]  # seconds until the window frees a request
    message = _readable(str(exc.detail))
    if exc.status_code == HTTP_400_BAD_REQUEST:  # the body could not be decoded (as JSON at all)
        message = _about_the_body(message)
    if exc.status_code == HTTP_405_METHOD_NOT_ALLOWED and "allow" in headers:
        if "websocket" in str(headers["allow"]).split(", ") and request.method == "GET":
            message = f"{request.url.path} is a WebSocket: open it with a GET carrying `Upgrade: websocket`"
        headers["allow"] = _allow(headers["allow"])
    return Response(
        ErrorBody(code, message),
        status_code=exc.status_code,
        headers=headers,
        media_type=MediaType.JSON,
    )


def _allow(allow: str) -> str:
    """The HTTP methods a plain request may use. Litestar lists a WebSocket route as a method `websocket`,
    not an HTTP method (its GET works only with `Upgrade: websocket`), and GET without HEAD (HEAD is
    answered at the door, api/head.py). A WebSocket-only path allows none: an empty `Allow` (RFC 9110)."""
    methods = {method.strip() for method in allow.split(",")} - {"", "websocket"}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def client_left(scope: Any) -> bool:
    return bool(scope.get(CLIENT_LEFT))


def _client_left(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """The client went away mid-request: nothing of ours failed, and nobody reads this answer."""
    log.debug("client left during %s %s (%s)", request.method, request.url.path, exc)
    return error_response(400, "client_left", "the client disconnected before the request was complete")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    if client_left(request.scope):
        return _client_left(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "the server could not complete the request"
    )


class MarketUnavailable(Exception):
    """The market (a venue) did not answer a request that needed it; answered 503 `market_unavailable`.
    Raised by handlers from the venue port's failures (`venues.base.VENUE_FAILURES`), which are not mapped
    here themselves: `TimeoutError` is too general to mean the market everywhere."""

    def __init__(self, message: str = "the market did not answer; try again", field: str | None = None):
        super().__init__(message)
        self.field = field


def _market_down(_: Request[Any, Any, Any], exc: MarketUnavailable) -> Response[ErrorBody]:
    return error_response(HTTP_503_SERVICE_UNAVAILABLE, "market_unavailable", str(exc), exc.field)


def _dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(
        HTTP_503_SERVICE_UNAVAILABLE,
        "unavailable",
        "a dependency is unavailable; nothing was done, try again",
    )


EXCEPTION_HANDLERS = {
    # The database or Redis cannot be reached: the request did nothing half-way, so it can be retried.
    StoreUnavailable: _dependency_down,
    RedisConnectionError: _dependency_down,
    MarketUnavailable: _market_down,
    ValidationException: _validation_error,
    OrderRejected: _order_rejected,
    IdempotencyKeyReused: _key_reused,
    NotWaiting: _not_waiting,
    OrderNotFound: _no_order,
    HTTPException: _http_error,
    Exception: _unexpected,
}
