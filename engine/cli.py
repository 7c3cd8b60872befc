"""`order-engine`: run the engine whole (`serve`) or one role per process (`api`, `worker`, `projector`)."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Annotated

import httpx
import typer
import uvicorn
from litestar import Litestar
from rich.console import Console

from api.app import create_app
from engine.demo import run_demo
from engine.logs import configure_logging
from engine.metrics import render_metrics
from engine.progress import progress
from engine.services import Services
from engine.settings import ConfigurationError, Settings, load_settings
from eventstore.base import LOG_START
from eventstore.database import driver_url, is_sqlite
from migrations.run import upgrade_to_head
from projections.active_orders import InMemoryActiveOrders, RedisActiveOrders
from projections.rebuild import OrdersRebuild

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
# WebSocket frames from clients carry nothing we need; a small cap keeps a hostile client cheap.
WS_MAX_FRAME_BYTES = 64 * 1024


def _settings() -> Settings:
    try:
        settings = load_settings()
        driver_url(settings.database_url)
    except (ConfigurationError, ValueError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)
    return settings


def _require_shared_backends(settings: Settings, role: str) -> None:
    """Separate role processes meet only through PostgreSQL and Redis."""
    if settings.redis_url is None or is_sqlite(settings.database_url):
        typer.echo(
            f"`order-engine {role}` runs beside other processes: set DATABASE_URL=postgresql://... and "
            "REDIS_URL=redis://... (or use `order-engine serve` for everything in one process)",
            err=True,
        )
        raise typer.Exit(2)


def build_app(services: Services, *, worker: bool, projector: bool) -> Litestar:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await services.start(api=True, worker=worker, projector=projector)
        try:
            yield
        finally:
            await services.stop()

    return create_app(
        store=services.store,
        enqueue=services.enqueue,
        queries=services.queries,
        feed=services.feed,
        db=services.db,
        redis=services.redis,
        lifespan=lifespan,
        max_body_bytes=services.settings.request_max_body_bytes,
        metrics=lambda: render_metrics(services),
        api_key=services.settings.api_key,
        submit_rate_limit_per_minute=services.settings.submit_rate_limit_per_minute,
        cors_origins=[o.strip() for o in services.settings.cors_origins.split(",") if o.strip()],
        read_horizon_warn_s=services.settings.read_horizon_warn_s,
    )


def _freeze_what_lives_forever() -> None:
    """What exists once a process is set up (modules, the app, its routes) lives as long as the process:
    out of the cycle collector's sight, so that its full collections walk only what came later. With 1,000
    WebSocket clients those collections took 100-200 ms, the stream's worst delays."""
    gc.freeze()


def _serve_http(settings: Settings, *, worker: bool, projector: bool) -> None:
    litestar_app = build_app(Services(settings), worker=worker, projector=projector)
    _freeze_what_lives_forever()
    uvicorn.run(
        litestar_app,
        host=settings.host,
        port=settings.port,
        ws_max_size=WS_MAX_FRAME_BYTES,
        # Messages are a few hundred bytes of JSON: compressing them cost about a third of the CPU of
        # fanning out to 1,000 sockets, and 40 KiB of memory per socket.
        ws_per_message_deflate=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the process's structured logging (engine/logs.py)
    )


@app.command()
def serve() -> None:
    """Everything in one process: API and WebSocket, worker and projector (migrates the database first)."""
    settings = _settings()
    upgrade_to_head(settings.database_url)
    _serve_http(settings, worker=True, projector=True)


@app.command()
def api() -> None:
    """The HTTP and WebSocket API alone."""
    settings = _settings()
    _require_shared_backends(settings, "api")
    _serve_http(settings, worker=False, projector=False)


async def _run_roles(settings: Settings, *, worker: bool = False, projector: bool = False) -> None:
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    services = Services(settings)
    await services.start(worker=worker, projector=projector)
    _freeze_what_lives_forever()
    try:
        await stopping.wait()
    finally:
        await services.stop()


@app.command()
def worker() -> None:
    """Executes queued orders (WORKER_CONCURRENCY at once) and re-enqueues orders nobody holds."""
    settings = _settings()
    _require_shared_backends(settings, "worker")
    asyncio.run(_run_roles(settings, worker=True))


@app.command()
def projector() -> None:
    """Follows the event log and keeps the orders table and the active-order cache up to date."""
    settings = _settings()
    _require_shared_backends(settings, "projector")
    asyncio.run(_run_roles(settings, projector=True))


@app.command()
def migrate() -> None:
    """Creates or upgrades the database schema (Alembic)."""
    settings = _settings()
    upgrade_to_head(settings.database_url)
    typer.echo("database is at the latest schema")


projections_app = typer.Typer(help="The read side: rebuild it from the log, or see how far behind it is.")
app.add_typer(projections_app, name="projections")


class ReadSide(StrEnum):
    orders = "orders"
    cache = "cache"
    all = "all"


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[ReadSide, typer.Argument()] = ReadSide.all,
    from_scratch: Annotated[
        bool, typer.Option("--from-scratch", help="Create or upgrade the schema first (e.g. a new database).")
    ] = False,
) -> None:
    """Replays the log from its start into the read side, without taking the live one away meanwhile."""
    settings = _settings()
    if from_scratch:
        upgrade_to_head(settings.database_url)
    asyncio.run(_rebuild(settings, name))


async def _rebuild(settings: Settings, name: ReadSide) -> None:
    services = Services(settings)
    try:
        total = await services.store.count_after(LOG_START)
        if name in (ReadSide.orders, ReadSide.all):
            started = time.monotonic()
            with progress("orders", total) as advance:
                applied = await OrdersRebuild(services.db, services.store, on_progress=advance).run()
            elapsed = max(time.monotonic() - started, 1e-9)
            rate = applied / elapsed
            typer.echo(f"orders: rebuilt from {applied} events in {elapsed:.1f} s ({rate:,.0f}/s)")
        if name in (ReadSide.cache, ReadSide.all):
            if not isinstance(services.active_orders, RedisActiveOrders):
                typer.echo("cache: lives inside the `serve` process without REDIS_URL, rebuilt at each start")
            else:
                await services.active_orders.reset()
                applied = await services.projector.catch_up(services.active_orders)
                typer.echo(f"cache: rebuilt from {applied} events")
    finally:
        await services.stop()


@projections_app.command("status")
def projections_status() -> None:
    """Each projection's checkpoint, the head of the log and how many events it has still to apply."""
    settings = _settings()
    asyncio.run(_status(settings))


async def _status(settings: Settings) -> None:
    services = Services(settings)
    try:
        head = await services.store.count_after(LOG_START)
        typer.echo(f"log: {head} events ({(await services.store.read_horizon()).describe()})")
        for projection in services.projector.projections:
            if isinstance(projection, InMemoryActiveOrders):
                typer.echo(f"{projection.name}: in the serve process's memory (no REDIS_URL)")
                continue
            at = await projection.position()
            lag = await services.store.count_after(at)
            typer.echo(f"{projection.name}: checkpoint {at.commit_id}:{at.position}, {lag} events behind")
    finally:
        await services.stop()


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=100, help="How many orders to fire at once.")] = 5,
    url: Annotated[str | None, typer.Option(help="The engine's base URL (default http://HOST:PORT).")] = None,
) -> None:
    """Submits orders concurrently to a running engine and shows them live, then a summary."""
    settings = _settings()
    base_url = url or f"http://{settings.host}:{settings.port}"
    try:
        asyncio.run(run_demo(base_url.rstrip("/"), orders, Console()))
    except httpx.HTTPError as error:
        typer.echo(f"could not reach the engine at {base_url}: {error}", err=True)
        raise typer.Exit(1) from None
