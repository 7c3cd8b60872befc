"""`order-engine`: run the engine whole (`serve`) or one role per process (`api`, `worker`, `projector`)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
import uvicorn
from litestar import Litestar

from api.app import create_app
from engine.services import Services
from engine.settings import ConfigurationError, Settings, load_settings
from eventstore.database import driver_url, is_sqlite
from migrations.run import upgrade_to_head

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
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    )


def _serve_http(settings: Settings, *, worker: bool, projector: bool) -> None:
    litestar_app = build_app(Services(settings), worker=worker, projector=projector)
    uvicorn.run(
        litestar_app,
        host=settings.host,
        port=settings.port,
        ws_max_size=WS_MAX_FRAME_BYTES,
        log_level=settings.log_level.lower(),
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
