"""Simulated Raydium and Meteora venues, so the engine can run and be tested without a chain.

They try to behave like real ones in the ways the engine has to cope with: prices wander between quotes (so
either venue can win the routing), big orders move the pool, execution takes seconds and lands at a price a
little off the quote, transactions can fail, and a resubmitted transaction is recognised instead of swapping
twice. With a seed every run is repeatable, which is what the tests rely on.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass

from domain.events import Quote
from domain.routing import BPS, quote_for
from domain.tokens import TOKENS, reference_price
from venues.base import Fill, SwapTransaction, VenueError

FAILURE_REASONS = (
    "venue error: simulated pool unavailable",
    "venue error: blockhash expired",
    "venue error: RPC node timed out",
)

# The price walk: each quote pulls the deviation back towards the reference and adds noise, so prices
# drift a few percent but never run away.
WALK_REVERSION = 0.8
WALK_STEP = 0.008
WALK_LIMIT = 0.03

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class SimulationConfig:
    quote_delay_ms: int = 200
    execution_delay_ms_min: int = 2000
    execution_delay_ms_max: int = 3000
    failure_rate: float = 0.0
    seed: int | None = None
    volatility_bps: float = 20.0  # std-dev of the price move between quote and execution
    adverse_drift_bps: float = 0.0  # a deterministic move against the trader at execution


def base58(data: bytes) -> str:
    """Bitcoin-alphabet base58, the encoding of Solana signatures (leading zero bytes become '1')."""
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = BASE58_ALPHABET[digit] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


class SimulatedVenue:
    """One constant-fee pool per pair with a given USD depth, behind the `Venue` port."""

    def __init__(self, name: str, fee_bps: int, depth_usd: float, config: SimulationConfig) -> None:
        self.name = name
        self.fee_bps = fee_bps
        self.depth_usd = depth_usd
        self.config = config
        # Quotes and executions draw from separate streams, so how many quotes the engine asks for does not
        # change how executions turn out (and vice versa).
        seeded = config.seed is not None
        self._quote_rng = random.Random(f"{config.seed}:{name}:quote") if seeded else random.Random()
        self._execution_rng = random.Random(f"{config.seed}:{name}:execute") if seeded else random.Random()
        # Signatures must be stable per transaction, and unguessable across unseeded runs.
        self._signature_salt = f"{config.seed}:{name}" if seeded else f"{random.Random().getrandbits(128)}"
        self._deviation: dict[tuple[str, str], float] = {}
        # client_tx_id -> (loop time at which it lands, its Fill or failure reason): the chain's memory.
        self._executions: dict[str, tuple[float, Fill | str]] = {}

    async def quote(self, token_in: str, token_out: str, amount_in: float) -> Quote:
        await _sleep_ms(self.config.quote_delay_ms)
        notional_usd = amount_in * TOKENS[token_in].reference_usd
        return quote_for(
            self.name,
            self._spot_price(token_in, token_out),
            self.fee_bps,
            notional_usd / self.depth_usd,
            amount_in,
        )

    def _spot_price(self, token_in: str, token_out: str) -> float:
        # One walk per pool, not per direction, so selling and buying back see the same market.
        pool = tuple(sorted((token_in, token_out)))
        step = WALK_REVERSION * self._deviation.get(pool, 0.0) + self._quote_rng.gauss(0.0, WALK_STEP)
        deviation = self._deviation[pool] = max(-WALK_LIMIT, min(WALK_LIMIT, step))
        factor = 1 + deviation if (token_in, token_out) == pool else 1 / (1 + deviation)
        return reference_price(token_in, token_out) * factor

    async def execute(self, tx: SwapTransaction) -> Fill:
        loop = asyncio.get_running_loop()
        known = self._executions.get(tx.client_tx_id)
        if known is None:
            # Everything is decided at submission, so a seeded run does not depend on which of several
            # concurrent executions finishes first.
            cfg = self.config
            delay_ms = self._execution_rng.uniform(cfg.execution_delay_ms_min, cfg.execution_delay_ms_max)
            known = (loop.time() + delay_ms / 1000, self._outcome(tx))
            self._executions[tx.client_tx_id] = known
        # A duplicate of a landed transaction answers at once; one still in flight waits for it to land.
        lands_at, outcome = known
        if (remaining := lands_at - loop.time()) > 0:
            await asyncio.sleep(remaining)
        if isinstance(outcome, str):
            raise VenueError(outcome)
        return outcome

    def _outcome(self, tx: SwapTransaction) -> Fill | str:
        rng, cfg = self._execution_rng, self.config
        if rng.random() < cfg.failure_rate:
            return rng.choice(FAILURE_REASONS)
        move = rng.gauss(0.0, cfg.volatility_bps / BPS) - cfg.adverse_drift_bps / BPS
        execution_price = tx.quoted_price * (1 + move)
        amount_out = tx.amount_in * execution_price
        if amount_out < tx.min_amount_out:
            return f"slippage exceeded: executed {amount_out:.6g} < minimum {tx.min_amount_out:.6g}"
        signature = hashlib.sha512(f"{self._signature_salt}:{tx.client_tx_id}".encode()).digest()
        return Fill(tx_hash=base58(signature), execution_price=execution_price, amount_out=amount_out)


def simulated_venues(config: SimulationConfig) -> list[SimulatedVenue]:
    """Raydium: deeper pool, higher fee. Meteora: lower fee, shallower pool, so big orders favour Raydium."""
    return [
        SimulatedVenue("raydium", fee_bps=25, depth_usd=20_000_000, config=config),
        SimulatedVenue("meteora", fee_bps=20, depth_usd=8_000_000, config=config),
    ]


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)
