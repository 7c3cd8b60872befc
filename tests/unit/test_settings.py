"""Settings from the environment: what is accepted, and a clear error for what is not."""

from __future__ import annotations

import logging

import pytest

from engine.settings import ConfigurationError, load_settings


@pytest.mark.parametrize("written", ["debug", "Info", "WARNING", "error", "critical"])
def test_a_log_level_is_accepted_in_any_case(written):
    settings = load_settings({"LOG_LEVEL": written})
    logging.Logger("probe").setLevel(settings.log_level.upper())  # as configure_logging sets it


@pytest.mark.parametrize("written", ["verbose", "", "10", "info "])
def test_an_unknown_log_level_is_a_configuration_error_naming_it(written):
    if not written.strip():
        assert load_settings({"LOG_LEVEL": written}).log_level == "INFO"  # empty counts as unset
        return
    with pytest.raises(ConfigurationError, match="LOG_LEVEL"):
        load_settings({"LOG_LEVEL": written})


PRIMARY = "postgresql://postgres@127.0.0.1:5432/order_engine"
REPLICA = "postgresql+psycopg://postgres@127.0.0.1:5433/order_engine?connect_timeout=2"


def test_a_read_replica_is_a_postgresql_database_beside_a_postgresql_primary():
    settings = load_settings({"DATABASE_URL": PRIMARY, "DATABASE_READ_URL": REPLICA})
    assert settings.database_read_url == REPLICA
    assert load_settings({"DATABASE_URL": PRIMARY}).database_read_url is None


@pytest.mark.parametrize(
    ("primary", "replica"),
    [
        ("sqlite:///./order-engine.db", REPLICA),
        (PRIMARY, "sqlite:///./replica.db"),
        (PRIMARY, "postgres://x/y"),
    ],
)
def test_any_other_read_replica_is_a_configuration_error_naming_it(primary, replica):
    with pytest.raises(ConfigurationError, match="DATABASE_READ_URL"):
        load_settings({"DATABASE_URL": primary, "DATABASE_READ_URL": replica})
