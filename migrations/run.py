"""Running the Alembic migrations from code (the `migrate` command, and `serve` at start)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from eventstore.backend import driver_url


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(_config(database_url), "head")


def is_at_head(database_url: str) -> bool:
    """Whether the database has every migration applied (False for an empty one)."""
    heads = set(ScriptDirectory.from_config(_config(database_url)).get_heads())
    engine = create_engine(driver_url(database_url, asynchronous=False))
    alembic_log = logging.getLogger("alembic.runtime.migration")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # a check, not a migration: no "Context impl ..." lines
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads()) == heads
    finally:
        alembic_log.setLevel(level)
        engine.dispose()
