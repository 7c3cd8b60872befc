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
