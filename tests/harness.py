"""Running the whole engine in the test's event loop behind a real HTTP server, and talking to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import uvicorn
import websockets

from engine.cli import KEEP_ALIVE_S, WS_MAX_FRAME_BYTES, build_app
from engine.services import Services
from engine.settings import Settings, load_settings
from tests.settings import FAST, MARKET_ORDER
from venues.chain import Chain


def engine_settings(backend: dict[str, str | None], **overrides: Any) -> Settings:
    return load_settings({}, **{**FAST, **backend, **overrides})


@dataclass
class Engine:
    services: Services
    http: httpx.AsyncClient
    ws_base: str

    @property
    def market_url(self) -> str:
        """Where the market inside this engine answers: MARKET_URL for worker processes beside it."""
        return f"{str(self.http.base_url).rstrip('/')}/market"

    async def submit(self, headers: dict[str, str] | None = None, **changes: Any) -> str:
        response = await self.http.post(
            "/api/orders/execute", json={**MARKET_ORDER, **changes}, headers=headers
        )
        assert response.status_code == 201, response.text
        return response.json()["orderId"]

    async def stream(
        self, order_id: str, after_version: int | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Every message the order's WebSocket sends until the server closes it, and the close code."""
        return await stream(self.ws_base, order_id, after_version)


async def stream(
    ws_base: str, order_id: str, after_version: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    query = f"?orderId={order_id}" + (f"&afterVersion={after_version}" if after_version is not None else "")
    messages = []
    async with websockets.connect(f"{ws_base}/api/orders/execute{query}") as socket:
        with contextlib.suppress(websockets.ConnectionClosedError):  # raised for close codes other than 1000
            async for raw in socket:
                messages.append(msgspec.json.decode(raw))
    assert socket.close_code is not None
    return messages, socket.close_code


@asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port with uvicorn; yields its base URL (http://127.0.0.1:port)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws_max_size=WS_MAX_FRAME_BYTES,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers a flag, not an event, for "listening"
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def running_engine(
    settings: Settings,
    *,
    worker: bool = True,
    projector: bool = True,
    chain: Callable[[Services], Chain] | None = None,
) -> AsyncIterator[Engine]:
    """The engine as `serve` runs it (the market inside, at `/market`); `chain` makes the chain its workers
    swap on instead (from the services, whose `market` it may wrap)."""
    services = Services(settings)
    if chain is not None:
        services.chain = chain(services)
    app = build_app(services, worker=worker, projector=projector, market=True)
    async with serve_http(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield Engine(services, http, base_url.replace("http://", "ws://"))


async def project_everything(services: Services) -> None:
    """Until every projection has applied all of the log committed so far.

    Followers see the log only below the oldest running transaction of our database (the background
    projector's own included), so a single catch-up may stop short of events already committed;
    `count_after` counts those too."""
    for projection in services.projections:
        while True:  # the horizon moves when another transaction ends: there is no event to await
            await services.projector.catch_up(projection)
            if await services.store.count_after(await projection.position()) == 0:
                break
            await asyncio.sleep(0.01)
