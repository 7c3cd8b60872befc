"""What every backend's connections share: how JSON is encoded, and the database's errors said in the
store's terms (`StoreUnavailable`), so that nothing above the adapters looks at a driver's exceptions."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from eventstore.base import StoreUnavailable


def json_text(value: Any) -> str:
    """`value` as JSON text, encoded as the engines encode their JSON bind parameters."""
    return msgspec.json.encode(value).decode()


JSON_OPTIONS: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": msgspec.json.decode}

# Every way the database can be out of reach: refused or dropped connections and broken statements (the
# drivers' OperationalError, raised as SQLAlchemy's, also by eventstore/postgres.py's own driver reads), a
# connection already closed (InterfaceError), and no pooled connection free within the pool's timeout.
_UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)

P = ParamSpec("P")
T = TypeVar("T")


def unavailable_as_store_error(method: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """`method`, raising StoreUnavailable where the database could not be reached."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except _UNREACHABLE as error:
            raise StoreUnavailable(f"the database cannot be reached ({type(error).__name__})") from error

    return translated


def replacing(statement: Any, table: sa.Table) -> Any:
    """`statement` (an INSERT of PostgreSQL's or SQLite's) replacing every column of a row whose primary
    key exists."""
    key = {column.name for column in table.primary_key}
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={
            column.name: statement.excluded[column.name] for column in table.columns if column.name not in key
        },
    )
