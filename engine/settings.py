"""Configuration from the environment (documented in `.env.example` and the README)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import msgspec

if TYPE_CHECKING:
    from market.schedule import ScheduledLaunch

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    database_url: str = "sqlite:///./order-engine.db"
    # A streaming replica of DATABASE_URL's PostgreSQL: lists, figures and WebSocket catch-up read it (a
    # moment behind); unset, they read DATABASE_URL.
    database_read_url: str | None = None
    redis_url: str | None = None  # unset: in-process broker, cache and wake-ups
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 3000
    worker_concurrency: Positive = 10
    rate_limit_max: Positive = 100
    rate_limit_window_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    max_attempts: Positive = 3
    retry_base_ms: NonNegative = 500
    max_crashed_runs: Positive = 3  # runs of one order that crashed on an error of ours, then it fails
    mock_quote_delay_ms: NonNegative = 200
    mock_execution_delay_ms_min: NonNegative = 2000
    mock_execution_delay_ms_max: NonNegative = 3000
    mock_failure_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    mock_seed: int | None = None
    # The market (the one simulated chain): unset MARKET_URL runs it inside `serve`, mounted at /market;
    # set, the engine's processes reach `order-engine market` there (it listens on MARKET_PORT).
    market_url: str | None = None
    market_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 3001
    market_flow_interval_ms: NonNegative = (
        1000  # the noise traders' and arbitrageurs' pace; 0: a still market
    )
    # How often each worker's trigger watcher reads the pools of the pairs with armed limit orders.
    trigger_interval_ms: Positive = 200
    # The market's scripting endpoints (POST /tokens, POST /tokens/{symbol}/pools, POST /swaps): off unless
    # set, so a production market takes no launches or price moves from anyone who can reach it.
    market_scripting: bool = False
    market_launch_schedule: str | None = None  # path of a JSON launch schedule the market plays at start
    recovery_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    recovery_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    worker_lease_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0  # a killed worker's orders are free after it
    request_max_body_bytes: Positive = 16_384
    api_key: str | None = None  # set: POST /api/orders/execute needs `Authorization: Bearer <API_KEY>`
    submit_rate_limit_per_minute: NonNegative = 600  # per client address; 0 turns the limit off
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser; empty: none
    # Comma-separated addresses of proxies whose X-Forwarded-For/-Proto are believed (`*`: any); empty: none,
    # so a client cannot pick its own address (the submit rate limit is per address) or scheme.
    trusted_proxies: str = ""
    # Any case: `info` is `INFO`.
    log_level: Annotated[str, msgspec.Meta(pattern=r"(?i)^(debug|info|warning|error|critical)$")] = "INFO"
    # /health warns when a transaction of our database has held the followers' view back for longer.
    read_horizon_warn_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # false behind a pooler that shares server connections between transactions (PgBouncer in transaction
    # mode, before 1.21): psycopg then prepares no statement, which would be another client's on the next.
    database_prepared_statements: bool = True
    # SIGTERM/SIGINT: how long an API has to finish its requests and close its WebSockets (1001), and a
    # worker to let its orders in hand reach their next event, before what is left is cut off.
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    # Set: a worker or projector touches this file every 5 s, for a container's health check.
    heartbeat_file: str | None = None

    def __post_init__(self) -> None:
        if self.mock_execution_delay_ms_min > self.mock_execution_delay_ms_max:
            raise ValueError("MOCK_EXECUTION_DELAY_MS_MIN must not exceed MOCK_EXECUTION_DELAY_MS_MAX")
        if self.database_read_url is not None and not all(
            _is_postgresql(url) for url in (self.database_url, self.database_read_url)
        ):
            raise ValueError("DATABASE_READ_URL is a PostgreSQL replica of a PostgreSQL DATABASE_URL")

    @property
    def distributed(self) -> bool:
        """PostgreSQL/Redis mode: the roles may run as separate processes."""
        return self.redis_url is not None


def _is_postgresql(url: str) -> bool:
    return url.split("://", 1)[0].split("+", 1)[0] == "postgresql"


class ConfigurationError(Exception):
    pass


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment (empty values count as unset), then `overrides` by field name."""
    environ = os.environ if environ is None else environ
    fields = {f.encode_name: f.name for f in msgspec.structs.fields(Settings)}
    raw: dict[str, object] = {name: environ[name] for name in fields if environ.get(name, "").strip()}
    raw.update({name.upper(): value for name, value in overrides.items()})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except (msgspec.ValidationError, ValueError) as error:
        raise ConfigurationError(f"invalid configuration: {error}") from None


def launch_schedule(settings: Settings) -> tuple[ScheduledLaunch, ...]:
    """MARKET_LAUNCH_SCHEDULE's launches (none when unset). Raises ConfigurationError for a file that
    cannot be read or is not a schedule."""
    if settings.market_launch_schedule is None:
        return ()
    from market.schedule import InvalidSchedule, load_schedule

    try:
        return load_schedule(settings.market_launch_schedule)
    except InvalidSchedule as error:
        raise ConfigurationError(str(error)) from None
