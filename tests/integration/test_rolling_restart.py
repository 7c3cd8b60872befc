"""The rolling restart under load, in the suite at its full size (`uv run python -m tests.rolling_restart`
prints the same run's summary)."""

from __future__ import annotations

import pytest

from tests.rolling_restart import RESTARTS, rolling_restart


@pytest.mark.timeout(240)
async def test_every_process_restarted_in_turn_under_load_loses_and_repeats_nothing(
    postgres_url, redis_url, tmp_path
):
    summary = await rolling_restart(postgres_url, redis_url, order_count=300, log_dir=tmp_path, seed=7)
    print(summary.report())
    assert summary.orders_accepted == 300
    assert [stop.name for stop in summary.stops] == RESTARTS
    assert summary.ok, summary.report()
