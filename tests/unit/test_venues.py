"""The simulated venues act like real ones: drifting prices, price impact, delays, failures, idempotency."""

from __future__ import annotations

import asyncio
import time

import pytest

from domain.events import Quote
from domain.routing import best_quote, min_amount_out
from domain.tokens import reference_price
from venues.base import Fill, SwapTransaction, VenueError
from venues.simulated import (
    BASE58_ALPHABET,
    FAILURE_REASONS,
    SimulatedVenue,
    SimulationConfig,
    base58,
    simulated_venues,
)

INSTANT = {"quote_delay_ms": 0, "execution_delay_ms_min": 0, "execution_delay_ms_max": 0}


def venues(**overrides: object) -> list[SimulatedVenue]:
    return simulated_venues(SimulationConfig(**{**INSTANT, "seed": 7, **overrides}))  # type: ignore[arg-type]


def swap(quote: Quote, client_tx_id: str, amount_in: float, slippage_bps: int = 50) -> SwapTransaction:
    return SwapTransaction(
        client_tx_id=client_tx_id,
        token_in="SOL",
        token_out="USDC",
        amount_in=amount_in,
        quoted_price=quote.effective_price,
        min_amount_out=min_amount_out(quote, slippage_bps),
        instructions=("swap",),
    )


async def quote_and_execute(venue: SimulatedVenue, client_tx_id: str, amount_in: float = 2.0) -> Fill:
    quote = await venue.quote("SOL", "USDC", amount_in)
    return await venue.execute(swap(quote, client_tx_id, amount_in))


def test_base58_matches_the_bitcoin_alphabet_encoding() -> None:
    assert base58(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert base58(b"\0\0\x01") == "112"


async def test_tx_hash_looks_like_a_solana_signature() -> None:
    venue = venues()[0]
    hashes = {(await quote_and_execute(venue, f"order-{i}:1")).tx_hash for i in range(20)}
    assert len(hashes) == 20
    for tx_hash in hashes:
        assert 87 <= len(tx_hash) <= 88
        assert set(tx_hash) <= set(BASE58_ALPHABET)


async def test_same_seed_repeats_quotes_and_fills_call_for_call() -> None:
    async def run(seed: int) -> list[Quote | Fill | str]:
        trace: list[Quote | Fill | str] = []
        for venue in venues(seed=seed, failure_rate=0.2):
            for i in range(20):
                trace.append(await venue.quote("SOL", "USDC", 3.0))
                try:
                    trace.append(await quote_and_execute(venue, f"o{i}:1"))
                except VenueError as error:
                    trace.append(error.reason)
        return trace

    first = await run(42)
    assert first == await run(42)
    assert any(isinstance(item, Fill) for item in first)
    assert any(isinstance(item, str) for item in first)
    assert first != await run(43)


async def test_quotes_drift_but_stay_within_a_few_percent_of_reference() -> None:
    reference = reference_price("SOL", "USDC")
    for venue in venues():
        prices = [(await venue.quote("SOL", "USDC", 1.0)).price for _ in range(200)]
        assert len(set(prices)) > 150
        assert all(abs(price / reference - 1) <= 0.031 for price in prices)
        assert max(prices) / min(prices) - 1 > 0.01  # it really wanders, not just jitters


async def test_each_venue_wins_sometimes() -> None:
    raydium, meteora = venues()
    wins = {"raydium": 0, "meteora": 0}
    for _ in range(200):
        quotes = [await raydium.quote("SOL", "USDC", 5.0), await meteora.quote("SOL", "USDC", 5.0)]
        wins[best_quote(quotes).venue] += 1
    assert wins["raydium"] >= 30
    assert wins["meteora"] >= 30


async def test_big_orders_pay_more_price_impact_and_favour_the_deeper_pool() -> None:
    raydium, meteora = venues()
    small = await meteora.quote("SOL", "USDC", 1.0)
    big = await meteora.quote("SOL", "USDC", 5_000.0)
    fee = 1 - meteora.fee_bps / 10_000
    assert small.effective_price / (small.price * fee) > 0.9999
    assert big.effective_price / (big.price * fee) < 0.95  # $750k into an $8M pool
    big_wins = 0
    for _ in range(100):
        quotes = [await raydium.quote("SOL", "USDC", 5_000.0), await meteora.quote("SOL", "USDC", 5_000.0)]
        big_wins += best_quote(quotes).venue == "raydium"
    assert big_wins >= 90


async def test_reexecuting_a_fill_returns_it_at_once() -> None:
    venue = venues(execution_delay_ms_min=300, execution_delay_ms_max=300)[0]
    quote = await venue.quote("SOL", "USDC", 2.0)
    tx = swap(quote, "order-1:1", 2.0)
    fill = await venue.execute(tx)
    again = await asyncio.wait_for(venue.execute(tx), timeout=0.05)
    assert again == fill
    other = await venue.execute(swap(quote, "order-1:2", 2.0))
    assert other.tx_hash != fill.tx_hash
    assert other.execution_price != fill.execution_price


async def test_reexecuting_a_failure_raises_the_same_reason_at_once() -> None:
    venue = venues(failure_rate=1.0, execution_delay_ms_min=300, execution_delay_ms_max=300)[0]
    tx = swap(await venue.quote("SOL", "USDC", 2.0), "order-2:1", 2.0)
    with pytest.raises(VenueError) as first:
        await venue.execute(tx)
    reasons = {first.value.reason}
    for _ in range(5):
        with pytest.raises(VenueError) as again:
            await asyncio.wait_for(venue.execute(tx), timeout=0.05)
        reasons.add(again.value.reason)
    assert len(reasons) == 1


async def test_failure_rate_one_always_fails_with_a_venue_reason() -> None:
    for venue in venues(failure_rate=1.0):
        for i in range(20):
            with pytest.raises(VenueError) as error:
                await quote_and_execute(venue, f"order-{i}:1")
            assert error.value.reason in FAILURE_REASONS
            assert str(error.value) == error.value.reason


async def test_adverse_drift_beyond_slippage_is_refused() -> None:
    calm = venues(volatility_bps=0.0)[0]
    assert (await quote_and_execute(calm, "ok:1")).amount_out > 0  # the same swap passes without drift

    venue = venues(volatility_bps=0.0, adverse_drift_bps=200.0)[0]
    with pytest.raises(VenueError) as error:
        await quote_and_execute(venue, "order-3:1")
    assert error.value.reason.startswith("slippage exceeded: executed ")
    assert "< minimum " in error.value.reason


async def test_execution_delay_is_respected() -> None:
    venue = venues(execution_delay_ms_min=50, execution_delay_ms_max=50)[0]
    tx = swap(await venue.quote("SOL", "USDC", 2.0), "order-4:1", 2.0)
    started = time.monotonic()
    await venue.execute(tx)
    assert time.monotonic() - started >= 0.050 - time.get_clock_info("monotonic").resolution


async def test_quote_delay_is_respected() -> None:
    venue = venues(quote_delay_ms=50)[0]
    started = time.monotonic()
    await venue.quote("SOL", "USDC", 2.0)
    assert time.monotonic() - started >= 0.050 - time.get_clock_info("monotonic").resolution
