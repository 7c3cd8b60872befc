"""The common ways starting the engine goes wrong, each told in one line with what to do about it.

Servers that are down, a database that does not exist or has no schema, a port already taken, a URL of the
wrong kind: the CLI checks what it can before starting anything, and turns the errors it could not foresee
into the same one-line messages (`explain`) instead of tracebacks.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from engine.settings import ConfigurationError, Settings

CONNECT_TIMEOUT_S = 3.0
REDIS_SCHEMES = ("redis", "rediss", "unix")
MIGRATE = "run `order-engine migrate`"


class Unusable(Exception):
    """The engine cannot run as configured; the message says why and what to do, in one line."""


def check_urls(settings: Settings) -> None:
    """DATABASE_URL, REDIS_URL and MARKET_URL name something the engine can talk to (checked before
    connecting)."""
    from eventstore.backend import backend_for

    try:
        backend_for(settings.database_url)
    except ValueError as error:
        raise ConfigurationError(
            f"DATABASE_URL is not usable ({error}): use sqlite:///./order-engine.db or "
            "postgresql://user@host:5432/name"
        ) from None
    if settings.redis_url is not None and urlsplit(settings.redis_url).scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"REDIS_URL must start with redis://, rediss:// or unix://, not {hidden(settings.redis_url)!r} "
            "(unset it to run `order-engine serve` without Redis)"
        )
    if settings.market_url is not None and urlsplit(settings.market_url).scheme not in ("http", "https"):
        raise ConfigurationError(
            f"MARKET_URL must start with http:// or https://, not {settings.market_url!r} "
            "(unset it to run the market inside `order-engine serve`)"
        )


def require_existing_database(settings: Settings) -> None:
    """An embedded database file must already be there: reading it must not create an empty one."""
    from eventstore.backend import backend_for

    path = backend_for(settings.database_url).database_file(settings.database_url)
    if path is not None and not Path(path).exists():
        raise Unusable(
            f"no database at {path} (DATABASE_URL): {MIGRATE} to create it, or set DATABASE_URL "
            "to the engine's database"
        )


def listening_socket(host: str, port: int, port_setting: str = "--port or PORT") -> socket.socket:
    """The API's (or the market's) listening socket, bound here so that a port in use is told before
    anything starts; the message names `port_setting` as the way to choose another."""
    try:
        return socket.create_server((host, port), family=_family(host), backlog=2048)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise Unusable(
                f"port {port} on {host} is already in use (another engine?): stop what holds it, or choose "
                f"another with {port_setting}"
            ) from None
        raise Unusable(f"cannot listen on {host}:{port} ({error.strerror}): check --host/HOST") from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def check_backends(settings: Settings, *, schema: bool) -> None:
    """Redis answers (when configured), and the database has the latest schema (when `schema`)."""
    if schema:
        await asyncio.to_thread(_check_schema, settings.database_url)
    if settings.redis_url is not None:
        await _check_redis(settings.redis_url)


def _check_schema(database_url: str) -> None:
    from migrations.run import is_at_head

    if not is_at_head(database_url):
        raise Unusable(f"the database at {hidden(database_url)} is not at the latest schema: {MIGRATE}")


async def _check_redis(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()


def explain(error: BaseException, settings: Settings) -> str | None:
    """One line for an error that comes from how the engine was started, or None for any other error."""
    import psycopg
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    for cause in _causes(error):
        if isinstance(cause, Unusable):
            return str(cause)
        if isinstance(cause, psycopg.errors.UndefinedTable) or (
            isinstance(cause, sqlite3.OperationalError) and "no such table" in str(cause)
        ):
            return f"the database at {hidden(settings.database_url)} has no order-engine tables: {MIGRATE}"
        if isinstance(cause, psycopg.OperationalError):
            return _postgres_unreachable(cause, settings.database_url)
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
            return (
                f"cannot open the database file of DATABASE_URL={settings.database_url} (does its folder "
                "exist?): fix DATABASE_URL"
            )
        if isinstance(cause, (RedisConnectionError, RedisTimeoutError)) and settings.redis_url:
            return (
                f"cannot reach Redis at {hidden(settings.redis_url)} ({_first_line(cause)}): start Redis "
                "(`redis-server`, or `docker compose up -d`) or fix REDIS_URL"
            )
    return None


def _postgres_unreachable(error: Exception, database_url: str) -> str:
    url = hidden(database_url)
    reason = _first_line(error)
    if missing := re.search(r'database "(.+?)" does not exist', reason):
        name = missing.group(1)
        return f"the database {name!r} of {url} does not exist: create it (`createdb {name}`), then {MIGRATE}"
    return (
        f"cannot reach PostgreSQL at {url} ({reason}): start it (`docker compose up -d`) or fix DATABASE_URL"
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (a driver's error inside SQLAlchemy's), what caused it, and the members
    of exception groups (task groups raise those)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        wrapped = getattr(current, "orig", None)
        for linked in (wrapped, current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__


def hidden(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
