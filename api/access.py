"""Who may submit, and how often: an optional API key on commands, and a per-client submit rate limit."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.types import Middleware

API_KEY_STATE = "api_key"
SUBMIT_PATH = "/api/orders/execute"


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard for command endpoints; it lets everything through when no API_KEY is configured.

    Async although it awaits nothing: Litestar runs a sync guard in a thread, a hop on every request."""
    expected = connection.app.state.get(API_KEY_STATE)
    if expected is None:
        return
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorizedException("Authorization: a valid `Bearer <API_KEY>` is required")


def _is_submit(request: Request[Any, Any, Any]) -> bool:
    return request.method == "POST" and request.url.path == SUBMIT_PATH


def submit_rate_limit(per_minute: int) -> Middleware:
    """At most `per_minute` submissions per client address (429 with Retry-After beyond it)."""
    return RateLimitConfig(rate_limit=("minute", per_minute), check_throttle_handler=_is_submit).middleware
