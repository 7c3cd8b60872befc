"""Alembic environment: `order-engine migrate` passes the database URL in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from eventstore.database import driver_url

url = driver_url(context.config.get_main_option("sqlalchemy.url") or "", asynchronous=False)
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=url.get_backend_name() == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
