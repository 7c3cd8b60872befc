"""The reference our POST endpoint is measured against: bare Litestar handlers on the same server settings.

`POST /parse` only decodes and validates the same body; `POST /insert` also writes one row (one INSERT,
one transaction) through a psycopg pool. Run by `bench.pipeline` as

    DATABASE_URL=postgresql://... uvicorn --factory bench.reference_app:create_app
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar, post
from psycopg_pool import AsyncConnectionPool

from api.orders import OrderSubmission

TABLE = "CREATE TABLE IF NOT EXISTS reference_orders (order_id uuid PRIMARY KEY, body jsonb NOT NULL)"


class Accepted(msgspec.Struct, rename="camel"):
    order_id: str


def create_app() -> Litestar:
    pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=10, max_size=20, open=False)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=True)
        async with pool.connection() as conn:
            await conn.execute(TABLE)
        yield
        await pool.close()

    @post("/parse")
    async def parse(data: OrderSubmission) -> Accepted:
        return Accepted(str(uuid.uuid4()))

    @post("/insert")
    async def insert(data: OrderSubmission) -> Accepted:
        order_id = uuid.uuid4()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO reference_orders (order_id, body) VALUES (%s, %s)",
                (order_id, msgspec.json.encode(data).decode()),
            )
        return Accepted(str(order_id))

    return Litestar([parse, insert], lifespan=[lifespan])
