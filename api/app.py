"""The Litestar application: routes, dependency injection and the lifespan of the roles it hosts."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from litestar import Litestar, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.static_files import create_static_files_router
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

from api.access import ALLOWED_ORIGINS_STATE, API_KEY_STATE, refuse_cross_site, submit_rate_limit
from api.chain_view import prices, tokens
from api.docs import docs_routes, openapi_config
from api.draining import Draining
from api.errors import EXCEPTION_HANDLERS
from api.head import head_as_get
from api.health import health
from api.ingress import at_the_door
from api.market import market_router
from api.orders import OrderController, order_stats
from api.requests import CheckedJsonRequest
from api.stream import log_stream, order_stream
from api.wire import DecimalsAsNumbers, ExactJsonResponse
from commands.submit_order import LaunchOf, submit_order
from eventstore.base import EventStore
from eventstore.replica import Replica
from market.market import Market
from projections.feed import LiveFeed
from projections.queries import OrderQueries
from venues.chain import Chain

PROMETHEUS_TEXT = "text/plain; version=0.0.4"  # Litestar adds the charset
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def create_app(
    *,
    store: EventStore,
    launch_of: LaunchOf,
    chain: Callable[[], Chain],
    queries: OrderQueries,
    feed: LiveFeed,
    redis: Redis | None,
    lifespan: Lifespan,
    max_body_bytes: int,
    metrics: Callable[[], Awaitable[bytes]],
    api_key: str | None = None,
    submit_rate_limit_per_minute: int = 0,
    cors_origins: list[str] | None = None,
    read_horizon_warn_s: float = 30.0,
    market: Market | None = None,
    draining: Draining | None = None,
    replica: Replica | None = None,
) -> Litestar:
    """The HTTP and WebSocket API; `lifespan` starts and stops whatever the process hosts with it. `chain`
    gives the engine's way to the market (prices and tokens are relayed from it). With `market` (the
    embedded one), the market's API is mounted at `/market`. `draining`: the process's shutdown state (the
    server begins it on SIGTERM; see `api/draining.py`). `replica`: the read replica, if any (/health warns
    when it does not answer)."""

    def provide(value: object) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    @get("/metrics", tags=["health"], summary="Prometheus metrics", media_type=PROMETHEUS_TEXT)
    async def prometheus_metrics() -> bytes:
        return await metrics()

    app = Litestar(
        route_handlers=[
            OrderController,
            order_stats,
            prices,
            tokens,
            order_stream,
            log_stream,
            health,
            prometheus_metrics,
            *([market_router(market)] if market is not None else []),
            *docs_routes(),
            create_static_files_router(
                path="/", directories=[WEB_DIR], html_mode=True, include_in_schema=False
            ),
        ],
        dependencies={
            "store": provide(store),
            # One dependency for the submit handler: Litestar resolves several at once in a task group of
            # their own, which cost as much per POST as the append.
            "submit_order": provide(functools.partial(submit_order, store=store, launch_of=launch_of)),
            # Built when first asked for: an API process that never reads the chain never opens it.
            "chain": Provide(chain, use_cache=True, sync_to_thread=False),
            "queries": provide(queries),
            "feed": provide(feed),
            "redis": provide(redis),
            "read_horizon_warn_s": provide(read_horizon_warn_s),
            "draining": provide(draining or Draining()),
            "replica": provide(replica),
        },
        lifespan=[lifespan],
        guards=[refuse_cross_site],
        state=State({API_KEY_STATE: api_key, ALLOWED_ORIGINS_STATE: frozenset(cors_origins or ())}),
        middleware=[submit_rate_limit(submit_rate_limit_per_minute)] if submit_rate_limit_per_minute else [],
        stores={"rate_limit": RedisStore(redis, namespace="order-engine:api-rate-limit")} if redis else None,
        cors_config=CORSConfig(allow_origins=cors_origins, allow_headers=["*"]) if cors_origins else None,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_class=CheckedJsonRequest,
        response_class=ExactJsonResponse,
        request_max_body_size=max_body_bytes,
        logging_config=None,  # the process configures logging once (engine/logs.py)
        openapi_config=openapi_config(),
        plugins=[DecimalsAsNumbers()],
    )
    # Outside the router, so that HEAD finds the GET route, and before CORS reads the Origin header.
    app.asgi_handler = head_as_get(at_the_door(app.asgi_handler))
    return app
