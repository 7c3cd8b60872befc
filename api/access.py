"""Who may submit, and how often: commands only from allowed pages and as JSON, an optional API key on
commands, and a per-client submit rate limit."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import Middleware

API_KEY_STATE = "api_key"
ALLOWED_ORIGINS_STATE = "allowed_origins"
SUBMIT_PATH = "/api/orders/execute"
JSON = "application/json"
READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard for command endpoints; it lets everything through when no API_KEY is configured.

    Async although it awaits nothing: Litestar runs a sync guard in a thread, a hop on every request."""
    expected = connection.app.state.get(API_KEY_STATE)
    if expected is None:
        return
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorizedException("Authorization: a valid `Bearer <API_KEY>` is required")


async def refuse_cross_site(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The app's guard against cross-site request forgery, for every command (any method that changes
    something): a browser sends a `text/plain` or form POST from any page without asking first (no CORS
    preflight), so a command must come from the API's own origin or one of CORS_ORIGINS (no Origin at all:
    not a browser, allowed), and be JSON, which a foreign page cannot send without a preflight that CORS
    refuses. Runs before the body is read."""
    if connection.scope["type"] != "http" or connection.scope["method"] in READS:
        return
    origin = connection.headers.get("origin")
    if origin is not None and not _allowed(connection, origin):
        raise PermissionDeniedException(f"Origin: {origin[:100]} may not send commands to this API")
    media_type = connection.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != JSON:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=f"Content-Type: must be {JSON}"
        )


def _allowed(connection: ASGIConnection[Any, Any, Any, Any], origin: str) -> bool:
    own = f"{connection.scope['scheme']}://{connection.headers.get('host', '')}"
    return origin.lower() == own.lower() or origin in connection.app.state.get(ALLOWED_ORIGINS_STATE, ())


def _is_submit(request: Request[Any, Any, Any]) -> bool:
    return request.method == "POST" and request.url.path == SUBMIT_PATH


def submit_rate_limit(per_minute: int) -> Middleware:
    """At most `per_minute` submissions per client address (429 with Retry-After beyond it)."""
    return RateLimitConfig(rate_limit=("minute", per_minute), check_throttle_handler=_is_submit).middleware
