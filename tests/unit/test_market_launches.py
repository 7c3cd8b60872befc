"""Tokens and launches on a market held in memory: the registry's records, pools made as the venues' programs
initialise them, the market writing both through before it tells, the flow leaving launched pools alone, and
the launch schedule."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import msgspec
import pytest

from domain.pools import CpmmPool, DlmmPool
from domain.pools.dlmm import bin_price
from domain.tokens import TOKENS
from market.launch import LAUNCH_BIN_STEP, LAUNCH_BINS_PER_SIDE, RefusedPool, new_pool, pool_id_for
from market.market import Market, MarketConfig
from market.memory import InMemoryMarketStore
from market.schedule import InvalidSchedule, ScheduledLaunch, load_schedule, play
from market.tokens import TokenExists, TokenRegistry, UnknownToken
from venues.chain import TokenRecord

AUTHORITY = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
PEPE = TokenRecord(symbol="PEPE", decimals=6, mint_authority=None, freeze_authority=None, announced_at=1)
SOL = TokenRecord(
    symbol="SOL", decimals=9, mint_authority=None, freeze_authority=None, announced_at=0, launched_at=0,
    first_pool="raydium-cpmm-SOL-USDC-1",
)  # fmt: skip
BILLION_PEPE, FIFTY_SOL = 10**15, 50 * 10**9
EXAMPLE_SCHEDULE = Path(__file__).resolve().parents[2] / "docs" / "launch-schedule.example.json"


class Clock:
    def __init__(self, at: float = 1_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


async def started(store: InMemoryMarketStore | None = None, clock: Clock | None = None) -> Market:
    market = Market(
        store or InMemoryMarketStore(), MarketConfig(flow_interval_ms=0, seed=3), clock or Clock()
    )
    await market.start()
    return market


# -- the registry --------------------------------------------------------------------------------------


def test_a_symbol_is_announced_once_and_launched_by_its_first_pool_only():
    registry = TokenRegistry([SOL])
    record = registry.announced("PEPE", 6, AUTHORITY, None, at=5)
    assert (record.mint_authority, record.launched_at, record.first_pool, record.tradable) == (
        AUTHORITY,
        None,
        None,
        False,
    )
    assert "PEPE" not in registry  # announced, not kept until written
    registry.keep([record])
    with pytest.raises(TokenExists):
        registry.announced("PEPE", 9, None, None, at=6)
    launched = registry.launched("PEPE", "raydium-cpmm-PEPE-SOL-1", at=7)
    assert (launched.launched_at, launched.first_pool, launched.tradable) == (
        7,
        "raydium-cpmm-PEPE-SOL-1",
        True,
    )
    registry.keep([launched])
    assert registry.launched("PEPE", "meteora-dlmm-PEPE-SOL-1", at=8) == launched
    assert [r.symbol for r in registry.all()] == ["PEPE", "SOL"]
    with pytest.raises(UnknownToken):
        registry.get("DOGE")


# -- pools as the programs initialise them ---------------------------------------------------------------


def test_a_raydium_pool_holds_the_deposits_as_its_reserves_at_the_deposits_price():
    pool = new_pool("raydium", "raydium-cpmm-PEPE-SOL-1", PEPE, SOL, BILLION_PEPE, FIFTY_SOL)
    assert isinstance(pool, CpmmPool)
    assert (pool.token_x, pool.token_y, pool.decimals_x, pool.decimals_y) == ("PEPE", "SOL", 6, 9)
    assert (pool.reserve_x, pool.reserve_y, pool.trade_fee_rate) == (BILLION_PEPE, FIFTY_SOL, 2_500)
    assert pool.spot_price("PEPE") == Decimal("0.00000005")  # 50 SOL / 1e9 PEPE


def test_raydium_refuses_deposits_below_the_liquidity_it_locks():
    # isqrt(amount * quote) must reach 10^max(decimals) = 10^9: 10^9 * 10^9 does, one unit less does not.
    new_pool("raydium", "p", PEPE, SOL, 10**9, 10**9)
    with pytest.raises(RefusedPool, match=r"^amountRaw: .*isqrt\(amountRaw \* quoteAmountRaw\) = 999999999"):
        new_pool("raydium", "p", PEPE, SOL, 10**9, 10**9 - 1)


@pytest.mark.parametrize(("amount", "quote_amount"), [(BILLION_PEPE, FIFTY_SOL), (7, 10**9), (10**9, 3)])
def test_a_meteora_pool_s_active_bin_holds_the_initial_price_and_the_deposits_spread_around_it(
    amount, quote_amount
):
    pool = new_pool("meteora", "meteora-dlmm-PEPE-SOL-1", PEPE, SOL, amount, quote_amount)
    assert isinstance(pool, DlmmPool) and pool.bin_step == LAUNCH_BIN_STEP
    raw_price = Fraction(quote_amount, amount) * 2**64  # Q64.64, base units of SOL per base unit of PEPE
    assert (
        bin_price(pool.active_id, LAUNCH_BIN_STEP)
        <= raw_price
        < bin_price(pool.active_id + 1, LAUNCH_BIN_STEP)
    )
    assert sorted(pool.bins) == list(
        range(pool.active_id - LAUNCH_BINS_PER_SIDE, pool.active_id + LAUNCH_BINS_PER_SIDE + 1)
    )
    assert (
        sum(x for x, _ in pool.bins.values()) == amount
        and sum(y for _, y in pool.bins.values()) == quote_amount
    )
    assert all(y == 0 for bin_id, (_, y) in pool.bins.items() if bin_id > pool.active_id)
    assert all(x == 0 for bin_id, (x, _) in pool.bins.items() if bin_id < pool.active_id)


@pytest.mark.parametrize(("amount", "quote_amount"), [(10**18, 1), (1, 10**18)])
def test_meteora_refuses_a_price_beyond_its_bins(amount, quote_amount):
    with pytest.raises(
        RefusedPool, match=r"^amountRaw: the initial price, .* is outside what Meteora's bins hold"
    ):
        new_pool("meteora", "p", PEPE, SOL, amount, quote_amount)


def test_a_token_is_not_paired_with_itself_and_pool_ids_count_up():
    with pytest.raises(RefusedPool, match=r"^quoteToken: "):
        new_pool("raydium", "p", SOL, SOL, 10**12, 10**12)
    taken = {"raydium-cpmm-PEPE-SOL-1", "raydium-cpmm-PEPE-SOL-2", "meteora-dlmm-PEPE-SOL-1"}
    assert pool_id_for("raydium", "PEPE", "SOL", taken) == "raydium-cpmm-PEPE-SOL-3"
    assert pool_id_for("meteora", "PEPE", "USDC", taken) == "meteora-dlmm-PEPE-USDC-1"


# -- the market -----------------------------------------------------------------------------------------


async def test_the_starting_tokens_are_records_launched_at_the_start():
    market = await started(clock=Clock(1_000))
    records = {record.symbol: record for record in market.registry.all()}
    assert set(records) == set(TOKENS)
    for symbol, record in records.items():
        assert (record.decimals, record.mint_authority, record.freeze_authority) == (
            TOKENS[symbol].decimals,
            None,
            None,
        )
        assert record.announced_at == record.launched_at == 1_000_000
        assert record.first_pool in market.ledger.pools and symbol in record.first_pool
    await market.stop()


async def test_a_launch_is_written_before_it_is_seen_and_a_restarted_market_keeps_it():
    store, clock = InMemoryMarketStore(), Clock(1_000)
    market = await started(store, clock)
    announced = await market.announce("PEPE", 6, None, AUTHORITY)
    assert store.tokens["PEPE"] == announced and not announced.tradable
    assert market.ledger.pools_for(token_in="PEPE") == []
    clock.at = 1_002.5
    pool = await market.create_pool("PEPE", "raydium", "SOL", BILLION_PEPE, FIFTY_SOL)
    assert pool.pool_id == "raydium-cpmm-PEPE-SOL-1" and store.pools[pool.pool_id] == pool
    launched = market.registry.get("PEPE")
    assert (launched.launched_at, launched.first_pool) == (1_002_500, pool.pool_id) and store.tokens[
        "PEPE"
    ] == launched
    second = await market.create_pool("PEPE", "meteora", "USDC", BILLION_PEPE, 10**10)
    assert market.registry.get("PEPE") == launched  # a later pool launches nothing
    assert [p.pool_id for p in market.ledger.pools_for(token_in="PEPE")] == [second.pool_id, pool.pool_id]
    await market.stop()
    clock.at = 2_000
    restarted = await started(store, clock)
    assert restarted.registry.all() == market.registry.all()
    assert (
        restarted.registry.get("SOL").announced_at == 1_000_000
    )  # the starting tokens' records are kept too
    assert restarted.ledger.pools[pool.pool_id] == pool
    await restarted.stop()


async def test_the_market_refuses_unknown_tokens_taken_symbols_and_pairings_with_no_pool():
    market = await started()
    await market.announce("PEPE", 6, None, None)
    await market.announce("DOGE", 8, None, None)
    with pytest.raises(TokenExists):
        await market.announce("PEPE", 6, None, None)
    with pytest.raises(UnknownToken):
        await market.create_pool("NOPE", "raydium", "SOL", BILLION_PEPE, FIFTY_SOL)
    for quote in ("DOGE", "NOPE"):  # announced but not tradable, unknown
        with pytest.raises(RefusedPool, match=f"^quoteToken: {quote} is not a tradable token"):
            await market.create_pool("PEPE", "raydium", quote, BILLION_PEPE, FIFTY_SOL)
    assert not market.registry.get("PEPE").tradable and market.ledger.pools_for(token_in="PEPE") == []
    await market.stop()


async def test_the_flow_trades_the_starting_tokens_pools_and_leaves_a_launched_one_alone():
    market = await started()
    await market.announce("PEPE", 6, None, None)
    pool = await market.create_pool("PEPE", "raydium", "SOL", BILLION_PEPE, FIFTY_SOL)
    before = dict(market.ledger.pools)
    for _ in range(20):
        await market.flow.tick()
    assert market.ledger.pools[pool.pool_id] is pool
    assert any(market.ledger.pools[pool_id] is not state for pool_id, state in before.items())
    await market.stop()


# -- the schedule ---------------------------------------------------------------------------------------


def launch(after_s: float, symbol: str, **changes: object) -> ScheduledLaunch:
    fields = {
        "after_s": after_s,
        "symbol": symbol,
        "decimals": 6,
        "venue": "raydium",
        "quote": "SOL",
        "amount_raw": str(BILLION_PEPE),
        "quote_amount_raw": str(FIFTY_SOL),
    }
    return ScheduledLaunch(**(fields | changes))  # type: ignore[arg-type]


async def test_a_schedule_announces_at_once_launches_at_each_time_and_skips_what_is_done():
    market = await started()
    await market.announce("DONE", 6, None, None)
    await market.create_pool("DONE", "raydium", "SOL", BILLION_PEPE, FIFTY_SOL)
    seen: list[tuple[float, list[str]]] = []

    async def sleep(seconds: float) -> None:  # what was tradable at each wait, before it
        seen.append(
            (
                seconds,
                sorted(r.symbol for r in market.registry.all() if r.tradable and r.symbol not in TOKENS),
            )
        )

    schedule = (
        launch(0, "PEPE", freeze_authority=AUTHORITY),
        launch(1.5, "DONE", venue="meteora"),
        launch(4, "WIF", venue="meteora", quote="USDC"),
        launch(4, "BAD", amount_raw="1", quote_amount_raw="1"),  # refused by Raydium: logged, skipped
    )
    await play(market, schedule, sleep)
    assert seen == [
        (0, ["DONE"]),
        (1.5, ["DONE", "PEPE"]),
        (2.5, ["DONE", "PEPE"]),
        (0, ["DONE", "PEPE", "WIF"]),
    ]
    assert market.registry.get("PEPE").freeze_authority == AUTHORITY
    assert [p.pool_id for p in market.ledger.pools_for(token_in="DONE")] == ["raydium-cpmm-DONE-SOL-1"]
    assert market.registry.get("WIF").first_pool == "meteora-dlmm-WIF-USDC-1"
    assert "BAD" in market.registry and not market.registry.get("BAD").tradable
    await play(market, schedule, sleep)  # played again (a restart): nothing new
    assert len(market.ledger.pools_for(token_in="PEPE")) == 1
    await market.stop()


def test_the_example_schedule_is_a_schedule_and_a_bad_one_says_where(tmp_path):
    example = load_schedule(str(EXAMPLE_SCHEDULE))
    assert [entry.after_s for entry in example] == sorted(entry.after_s for entry in example) and example
    bad = tmp_path / "schedule.json"
    bad.write_text(json.dumps([{**msgspec.to_builtins(example[0]), "decimals": 12}]))
    with pytest.raises(InvalidSchedule, match=r"is not a launch schedule: .*decimals"):
        load_schedule(str(bad))
    with pytest.raises(InvalidSchedule, match="cannot read"):
        load_schedule(str(tmp_path / "missing.json"))
