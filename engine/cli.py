"""`order-engine`: run the engine whole (`serve`) or one role per process (`api`, `worker`, `projector`).

Each setting is an environment variable (`.env.example`); the main ones are flags too, which win over the
environment."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import msgspec
import typer

from engine.settings import ConfigurationError, Settings, launch_schedule, load_settings

# Only what `--help` needs is imported above: the engine's libraries (Litestar, SQLAlchemy, taskiq, ...)
# take seconds to import, so each command imports what it uses when it runs.
if TYPE_CHECKING:
    from litestar import Litestar

    from api.draining import Draining
    from engine.services import Services


def _environment_help() -> str:
    names = " ".join(f.encode_name for f in msgspec.structs.fields(Settings))
    return f"Environment variables (all optional; see .env.example): {names}."


app = typer.Typer(
    help=__doc__,
    epilog=_environment_help(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # an unforeseen error prints Python's traceback, without loading rich's
)
# WebSocket frames from clients carry nothing we need; a small cap keeps a hostile client cheap.
WS_MAX_FRAME_BYTES = 64 * 1024
# How long an idle keep-alive connection stays open. Longer than the clients' and proxies' own idle timeouts
# (httpx 5 s, aiohttp 15 s, nginx and cloud load balancers 60 s): the side that closes an idle connection
# must be the client, or a request sent as the server closes it fails (uvicorn's default is 5 s, httpx's too,
# and a burst over 200 connections met that race).
KEEP_ALIVE_S = 75

_DEFAULTS = {f.name: f.default for f in msgspec.structs.fields(Settings)}


def _flag(name: str, text: str) -> Any:
    """A command-line flag for a setting, falling back to its environment variable."""
    default = _DEFAULTS[name]
    return typer.Option(
        f"--{name.replace('_', '-')}",
        envvar=name.upper(),
        show_envvar=True,
        show_default=False,
        metavar="TEXT" if name.endswith("url") else "VALUE",
        help=f"{text} [default: {'unset' if default is None else default}]",
    )


# Typed as text: the value is checked with every other setting, so a bad flag or variable gets the same
# one-line message.
DatabaseUrl = Annotated[
    str | None, _flag("database_url", "The event log: sqlite:///FILE or postgresql://...")
]
RedisUrl = Annotated[str | None, _flag("redis_url", "Redis for the queue, cache and wake-ups.")]
Host = Annotated[str | None, _flag("host", "Where the API listens.")]
Port = Annotated[str | None, _flag("port", "The API's port.")]
WorkerConcurrency = Annotated[str | None, _flag("worker_concurrency", "Orders executing at once.")]
LogLevel = Annotated[str | None, _flag("log_level", "DEBUG, INFO, WARNING or ERROR.")]
MarketPort = Annotated[str | None, _flag("market_port", "The market's port.")]
MarketUrl = Annotated[str | None, _flag("market_url", "Where the market (`order-engine market`) answers.")]


def _settings(**flags: str | None) -> Settings:
    from engine.problems import check_urls

    try:
        settings = load_settings(**{name: value for name, value in flags.items() if value is not None})
        check_urls(settings)
        launch_schedule(settings)  # a schedule that cannot be played is told before anything starts
    except ConfigurationError as error:
        _fail(str(error), code=2)
    from engine.logs import configure_logging

    configure_logging(settings.log_level)
    return settings


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"order-engine: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _explained(settings: Settings) -> Iterator[None]:
    """A mistake in how the engine was started (a server down, a database not there or not migrated, a
    port taken) ends the command with one line saying what is wrong and what to do, not a traceback."""
    from engine.problems import Unusable, explain

    try:
        yield
    except Unusable as problem:
        _fail(str(problem))
    except Exception as error:
        explanation = explain(error, settings)
        if explanation is None:
            raise
        _fail(explanation)


def _require_shared_backends(settings: Settings, role: str) -> None:
    """Separate role processes meet only through PostgreSQL and Redis."""
    from eventstore.backend import backend_for

    if settings.redis_url is None or not backend_for(settings.database_url).shared:
        _fail(
            f"`order-engine {role}` runs beside other processes: set DATABASE_URL=postgresql://... and "
            "REDIS_URL=redis://... (or use `order-engine serve` for everything in one process)",
            code=2,
        )


def _require_market_url(settings: Settings) -> None:
    """A separate worker swaps on the one market every process shares, not a market of its own."""
    if settings.market_url is None:
        _fail(
            "`order-engine worker` swaps on the shared market: start `order-engine market` and set "
            "MARKET_URL to its address (http://127.0.0.1:3001 by default)",
            code=2,
        )


def build_app(
    services: Services,
    *,
    worker: bool,
    projector: bool,
    market: bool = False,
    draining: Draining | None = None,
) -> Litestar:
    """The engine's app; with `market` and MARKET_URL unset it also runs the market, at `/market`.
    `draining`: begun by the server on SIGTERM (`_run_server`)."""
    from api.app import create_app
    from engine.metrics import render_metrics

    embedded_market = market and services.settings.market_url is None

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await services.start(api=True, worker=worker, projector=projector, market=embedded_market)
        try:
            yield
        finally:
            await services.stop()

    return create_app(
        store=services.store,
        launch_of=services.launch_of,
        chain=lambda: services.chain,
        queries=services.queries,
        feed=services.feed,
        redis=services.redis,
        lifespan=lifespan,
        max_body_bytes=services.settings.request_max_body_bytes,
        metrics=lambda: render_metrics(services),
        api_key=services.settings.api_key,
        submit_rate_limit_per_minute=services.settings.submit_rate_limit_per_minute,
        cors_origins=[o.strip() for o in services.settings.cors_origins.split(",") if o.strip()],
        read_horizon_warn_s=services.settings.read_horizon_warn_s,
        market=services.market if embedded_market else None,
        draining=draining,
        replica=services.replica,
    )


def _freeze_what_lives_forever() -> None:
    """What exists once a process is set up (modules, the app, its routes) lives as long as the process:
    out of the cycle collector's sight, so that its full collections walk only what came later. With 1,000
    WebSocket clients those collections took 100-200 ms, the stream's worst delays."""
    import gc

    gc.freeze()


# Net allocations between two collections of the youngest objects (CPython's default: 700). One event sent
# to 1,000 WebSocket clients of an order holds a few thousand objects at once (a future and a task step per
# client): collected in the middle, they were all promoted towards the oldest generation, whose collections
# walk every client's objects (about 180 each) and stalled every stream for 100-280 ms. Above the burst,
# they are gone by the time the collector looks (API CPU per message sent: 57 -> 36 us). Every role
# allocates in such bursts (an order's run, a projector's batch): fewer collections cost less CPU.
YOUNG_COLLECTION_THRESHOLD = 10_000


def _collect_young_objects_less_often() -> None:
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def _serve_http(
    settings: Settings, listener: socket.socket, *, worker: bool, projector: bool, market: bool = False
) -> None:
    from api.draining import Draining
    from engine.services import Services

    draining = Draining()
    litestar_app = build_app(
        Services(settings), worker=worker, projector=projector, market=market, draining=draining
    )
    _run_server(settings, listener, litestar_app, draining)


def _run_server(
    settings: Settings, listener: socket.socket, litestar_app: Litestar, draining: Draining | None = None
) -> None:
    """Serve `litestar_app` on `listener` until SIGTERM or SIGINT, then shut down within SHUTDOWN_GRACE_S:
    stop accepting, begin `draining` (WebSockets close 1001, /health answers 503) and wait for the
    WebSockets to close, let requests in progress finish, then stop the roles (the lifespan)."""
    from engine.draining_server import DrainingServer
    from engine.websocket_log import WebSocketLog

    _freeze_what_lives_forever()
    _collect_young_objects_less_often()
    server = DrainingServer(
        draining,
        uvicorn_config(
            settings,
            WebSocketLog(litestar_app),
        ),
    )
    # uvicorn raises Ctrl-C again once it has shut down; the stop was clean (as `uvicorn.run` treats it).
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listener])


def uvicorn_config(settings: Settings, app: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        ws_max_size=WS_MAX_FRAME_BYTES,
        timeout_keep_alive=KEEP_ALIVE_S,
        # Messages are a few hundred bytes of JSON: compressing them cost about a third of the CPU of
        # fanning out to 1,000 sockets, and 40 KiB of memory per socket.
        ws_per_message_deflate=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the process's structured logging (engine/logs.py)
        # uvicorn believes forwarded headers from 127.0.0.1 by default; only from TRUSTED_PROXIES here.
        proxy_headers=bool(settings.trusted_proxies.strip()),
        forwarded_allow_ips=settings.trusted_proxies.strip() or "",
        # Requests still running this long after SIGTERM are cancelled. Not 0: uvicorn's wait of 0 times out
        # before it looks, and logs an error for the 0 requests it then cancels.
        timeout_graceful_shutdown=max(settings.shutdown_grace_s, 0.1),
    )


def _check_backends(settings: Settings, *, schema: bool = True) -> None:
    from engine.problems import check_backends

    asyncio.run(check_backends(settings, schema=schema))


def _listen(settings: Settings) -> socket.socket:
    """The API's socket, bound before anything else starts: a port in use is the first thing told."""
    from engine.problems import listening_socket

    return listening_socket(settings.host, settings.port)


@app.command()
def serve(
    host: Host = None,
    port: Port = None,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    worker_concurrency: WorkerConcurrency = None,
    log_level: LogLevel = None,
) -> None:
    """Everything in one process: API and WebSocket, worker and projector (migrates the database first)."""
    settings = _settings(**locals())
    with _explained(settings):
        from migrations.run import upgrade_to_head

        listener = _listen(settings)
        _check_backends(settings, schema=False)  # migrated below
        upgrade_to_head(settings.database_url)
        _serve_http(settings, listener, worker=True, projector=True, market=True)


@app.command()
def api(
    host: Host = None,
    port: Port = None,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    log_level: LogLevel = None,
) -> None:
    """The HTTP and WebSocket API alone."""
    settings = _settings(**locals())
    _require_shared_backends(settings, "api")
    with _explained(settings):
        listener = _listen(settings)
        _check_backends(settings)
        _serve_http(settings, listener, worker=False, projector=False)


market_app = typer.Typer(invoke_without_command=True)
app.add_typer(market_app, name="market")


@market_app.callback()
def market(
    context: typer.Context,
    host: Host = None,
    market_port: MarketPort = None,
    database_url: DatabaseUrl = None,
    log_level: LogLevel = None,
) -> None:
    """The market alone (the one simulated chain: pools, ledger, flow), on MARKET_PORT; the engine's processes
    reach it at MARKET_URL. Run one: it is the only writer of its tables. `order-engine market launch`
    launches a token on a running market."""
    if context.invoked_subcommand is not None:
        return
    settings = _settings(host=host, market_port=market_port, database_url=database_url, log_level=log_level)
    with _explained(settings):
        from engine.problems import listening_socket

        listener = listening_socket(settings.host, settings.market_port, "--market-port or MARKET_PORT")
        _check_backends(settings)
        _run_server(settings, listener, _market_app(settings))


class LaunchVenue(StrEnum):
    raydium = "raydium"
    meteora = "meteora"


@market_app.command("launch")
def market_launch(
    symbol: Annotated[str, typer.Argument(help="The token's symbol: 2 to 10 uppercase letters or digits.")],
    decimals: Annotated[int, typer.Option(min=0, max=9, help="Its mint's decimals.")],
    amount_raw: Annotated[str, typer.Option(help="The pool's deposit of the token, in its base units.")],
    quote_amount_raw: Annotated[
        str, typer.Option(help="The pool's deposit of the quote token, in its base units.")
    ],
    venue: Annotated[LaunchVenue, typer.Option(help="Where the pool is created.")] = LaunchVenue.raydium,
    quote: Annotated[str, typer.Option(help="The token it is paired with (tradable: SOL, USDC...).")] = "SOL",
    mint_authority: Annotated[
        str | None, typer.Option(help="Who may still mint it (base58); left out: renounced.")
    ] = None,
    freeze_authority: Annotated[
        str | None, typer.Option(help="Who may freeze its accounts (base58); left out: none.")
    ] = None,
    market_url: MarketUrl = None,
) -> None:
    """Launches a token on a running market: announces it (unless known), creates its pool, prints its record.

    The market must run with MARKET_SCRIPTING=true; it is MARKET_URL's, else the one inside `serve` at
    http://HOST:PORT/market. The token's first pool is its launch; a later one is one more pool."""
    from engine.launch import LaunchFailed, launch

    settings = _settings(market_url=market_url)
    base_url = settings.market_url or f"http://{settings.host}:{settings.port}/market"
    announcement = {
        "symbol": symbol,
        "decimals": decimals,
        "mintAuthority": mint_authority,
        "freezeAuthority": freeze_authority,
    }
    pool = {
        "venue": venue.value,
        "quoteToken": quote,
        "amountRaw": amount_raw,
        "quoteAmountRaw": quote_amount_raw,
    }
    try:
        record = asyncio.run(launch(base_url, announcement, pool))
    except LaunchFailed as error:
        _fail(str(error))
    typer.echo(msgspec.json.format(msgspec.json.encode(record)).decode())


def _market_app(settings: Settings) -> Litestar:
    from api.market import create_market_app
    from engine.services import make_market
    from eventstore.backend import backend_for
    from market.store import SqlMarketStore

    backend = backend_for(settings.database_url)
    db = backend.open(settings.database_url, prepared_statements=settings.database_prepared_statements)
    market = make_market(settings, SqlMarketStore(db, backend))

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await market.start()
        try:
            yield
        finally:
            await market.stop()
            await db.dispose()

    return create_market_app(market, lifespan)


def _run_roles_to_exit(settings: Settings, *, worker: bool = False, projector: bool = False) -> None:
    from engine.exiting import run_to_exit
    from engine.services import CLOSE_TIMEOUT_S

    run_to_exit(_run_roles(settings, worker=worker, projector=projector), CLOSE_TIMEOUT_S)


async def _run_roles(settings: Settings, *, worker: bool = False, projector: bool = False) -> None:
    from engine.services import Services

    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    services = Services(settings)
    await services.start(worker=worker, projector=projector)
    heartbeat: asyncio.Task[None] | None = None
    if settings.heartbeat_file is not None:
        from engine.healthcheck import beat_forever

        heartbeat = asyncio.create_task(beat_forever(settings.heartbeat_file))
    _freeze_what_lives_forever()
    _collect_young_objects_less_often()
    try:
        await stopping.wait()
    finally:
        if heartbeat is not None:
            heartbeat.cancel()  # a stopping process is no longer healthy
        await services.stop()


@app.command()
def worker(
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    market_url: MarketUrl = None,
    worker_concurrency: WorkerConcurrency = None,
    log_level: LogLevel = None,
) -> None:
    """Executes queued orders (WORKER_CONCURRENCY at once) on the market at MARKET_URL, queues the orders
    submitted to the log (the relay), and re-enqueues orders nobody holds."""
    settings = _settings(**locals())
    _require_shared_backends(settings, "worker")
    _require_market_url(settings)
    with _explained(settings):
        _check_backends(settings)
        _run_roles_to_exit(settings, worker=True)


@app.command()
def projector(
    database_url: DatabaseUrl = None, redis_url: RedisUrl = None, log_level: LogLevel = None
) -> None:
    """Follows the event log and keeps the orders table, the active-order cache and the trigger index up to
    date."""
    settings = _settings(**locals())
    _require_shared_backends(settings, "projector")
    with _explained(settings):
        _check_backends(settings)
        _run_roles_to_exit(settings, projector=True)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Creates or upgrades the database schema (Alembic)."""
    settings = _settings(**locals())
    with _explained(settings):
        from migrations.run import upgrade_to_head

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
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Replays the log from its start into the read side, without taking the live one away meanwhile."""
    settings = _settings(database_url=database_url, redis_url=redis_url)
    with _explained(settings):
        if from_scratch:
            from migrations.run import upgrade_to_head

            upgrade_to_head(settings.database_url)
        else:
            _require_database(settings)
        asyncio.run(_rebuild(settings, name))


def _require_database(settings: Settings) -> None:
    """Commands that read the log find an embedded database where it is, and never create one."""
    from engine.problems import require_existing_database

    require_existing_database(settings)


async def _rebuild(settings: Settings, name: ReadSide) -> None:
    from engine.progress import progress
    from engine.services import Services
    from eventstore.base import LOG_START
    from projections.active_orders import RedisActiveOrders
    from projections.rebuild import OrdersRebuild

    services = Services(settings)
    try:
        total = await services.store.count_after(LOG_START)
        if name in (ReadSide.orders, ReadSide.all):
            started = time.monotonic()
            with progress("orders", total) as advance:
                applied = await OrdersRebuild(
                    services.db, services.store, services.backend, on_progress=advance
                ).run()
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
def projections_status(database_url: DatabaseUrl = None, redis_url: RedisUrl = None) -> None:
    """Each projection's checkpoint, the head of the log and how many events it has still to apply."""
    settings = _settings(**locals())
    with _explained(settings):
        _require_database(settings)
        asyncio.run(_status(settings))


async def _status(settings: Settings) -> None:
    from engine.services import Services
    from eventstore.base import LOG_START
    from projections.active_orders import InMemoryActiveOrders
    from projections.trigger_index import InMemoryTriggerIndex
    from workers.relay import InMemoryOrderRelay

    in_memory = (InMemoryActiveOrders, InMemoryTriggerIndex, InMemoryOrderRelay)
    services = Services(settings)
    try:
        head = await services.store.count_after(LOG_START)
        typer.echo(f"log: {head} events ({(await services.store.read_horizon()).describe()})")
        for projection in services.projections:
            if isinstance(projection, in_memory):
                typer.echo(f"{projection.name}: in the serve process's memory (no REDIS_URL)")
                continue
            at = await projection.position()
            lag = await services.store.count_after(at)
            typer.echo(
                f"{projection.name}: checkpoint {at.transaction_id}:{at.position}, {lag} events behind"
            )
    finally:
        await services.stop()


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=0, max=100, help="How many market orders to fire at once.")] = 5,
    url: Annotated[str | None, typer.Option(help="The engine's base URL (default http://HOST:PORT).")] = None,
    limit: Annotated[
        int, typer.Option(min=0, max=100, help="How many limit orders to place (see --limit-offset-bps).")
    ] = 0,
    limit_offset_bps: Annotated[
        int,
        typer.Option(
            min=-5000,
            max=5000,
            help="Each limit this many bps above the best price now (tokenOut per tokenIn): below 0 it "
            "fires at once, above 0 it waits for the market to rise that far.",
        ),
    ] = 10,
    limit_expires_s: Annotated[
        float, typer.Option(min=1, max=3600, help="Limit orders not fired by then expire.")
    ] = 30.0,
    sniper: Annotated[
        int,
        typer.Option(
            min=0,
            max=100,
            help="How many sniper orders to place on a token the demo announces, then launches "
            "(the market needs MARKET_SCRIPTING=true).",
        ),
    ] = 0,
    launch_after_s: Annotated[
        float, typer.Option(min=0, max=600, help="How long the sniper orders wait before the launch.")
    ] = 2.0,
    market_url: MarketUrl = None,
) -> None:
    """Submits orders concurrently to a running engine and shows them live, then a summary.

    Market orders by default; with --limit, limit orders priced from the best price now (GET /api/prices);
    with --sniper, sniper orders on a new token announced and launched on the market (MARKET_URL's, else
    the one inside `serve` at http://HOST:PORT/market)."""
    import httpx
    from rich.console import Console

    from engine.demo import LimitPlan, SniperPlan, run_demo
    from engine.launch import LaunchFailed

    if not orders and not limit and not sniper:
        _fail("nothing to do: give --orders, --limit or --sniper a number above 0", code=2)
    settings = _settings(market_url=market_url)
    base_url = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    limits = LimitPlan(limit, limit_offset_bps, limit_expires_s) if limit else None
    snipers = (
        SniperPlan(sniper, settings.market_url or f"{base_url}/market", launch_after_s) if sniper else None
    )
    try:
        asyncio.run(run_demo(base_url, orders, Console(), limits=limits, snipers=snipers))
    except LaunchFailed as error:
        _fail(f"{error}; sniper orders need a launch: run the market with MARKET_SCRIPTING=true")
    except httpx.HTTPStatusError as error:
        _fail(f"the engine at {base_url} answered {error.response.status_code}: {error.response.text}")
    except httpx.HTTPError as error:
        _fail(f"could not reach the engine at {base_url}: {error}; start it with `order-engine serve`")
