"""Alembic environment: `order-engine migrate` passes the database URL in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, make_url

from eventstore.backend import backend_for

database_url = context.config.get_main_option("sqlalchemy.url") or ""
backend = backend_for(database_url)
engine = create_engine(backend.driver_url(make_url(database_url), asynchronous=False))
with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=backend.batch_alter)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
