"""A short chaos run in the suite (the full one: `uv run python -m tests.chaos --orders 300`)."""

from __future__ import annotations

from tests.chaos import chaos_run


async def test_a_short_chaos_run_keeps_every_invariant(postgres_url, redis_url, tmp_path):
    summary = await chaos_run(postgres_url, redis_url, order_count=40, log_dir=tmp_path, seed=7)
    print(summary.report())
    assert summary.orders_accepted == 40
    assert sum(summary.faults.values()) >= 2, "the driver should have injected faults"
    assert summary.ok, summary.report()
