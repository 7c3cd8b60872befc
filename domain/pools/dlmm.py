"""Meteora's bin pool (DLMM), in the integer and Q64.64 fixed-point maths of its program.

Sources, all in github.com/MeteoraAg/dlmm-sdk (the program itself is not public; the SDK's Rust `commons`
crate mirrors it for quotes, and `programs/lb_clmm` of the SDK's first commits carries its state code):
- prices: `commons/src/math/price_math.rs` (`get_price_from_id`), `commons/src/math/u64x64_math.rs` (`pow`);
- one bin's swap: `commons/src/quote.rs` (`swap_exact_in_quote_at_bin`, `calculate_exact_in_fill_amount`,
  as in the SDK's release 0.12.0; the same as `swapExactInQuoteAtBin` in `ts-client/src/dlmm/helpers/bin.ts`),
  `commons/src/extensions/bin.rs` (`get_amount_in`, `get_amount_out`), `commons/src/math/u128x128_math.rs`
  (`mul_div`, `mul_shr`, `shl_div` and their rounding);
- fees and volatility: `commons/src/extensions/lb_pair.rs` (`get_base_fee`, `compute_variable_fee`,
  `get_total_fee`, `compute_fee`, `compute_fee_from_amount`, `update_references`,
  `update_volatility_accumulator`), `commons/src/constants.rs` (`FEE_PRECISION`, `MAX_FEE_RATE`, ...);
- the walk over bins: `commons/src/quote.rs` (`quote_exact_in`).

Bin `id` has the price (1 + bin_step / 10_000)^id of token_x in token_y, in base units, as a Q64.64 integer
computed exactly as the program's `pow` does (rounding down at each step, through the inverse of the base):
the program's own rounding, so amounts match it to the base unit; a `Fraction` of the true power would
differ from it in the last bits. Inside a bin the price is constant (no price impact); a swap that empties
a bin moves `active_id` to the next bin holding the token it pays out and goes on.

Fee rates are in `FEE_PRECISION` (1e9) units:
    base_fee     = base_factor * bin_step * 10 * 10^base_fee_power_factor
    variable_fee = ceil((volatility_accumulator * bin_step)^2 * variable_fee_control / 1e11)
    total_fee    = min(base_fee + variable_fee, MAX_FEE_RATE = 1e8, i.e. 10 %)
taken on the input in each bin: ceil(amount * total / 1e9) when nothing is left over for the next bin
(`compute_fee_from_amount`), else ceil(max_in * total / (1e9 - total)) on top of the input `max_in` that
empties it (`compute_fee`). The whole fee leaves the bin: the program books it for the liquidity providers
and the protocol outside the bins' amounts (these pools take the fee on the input and hold no limit orders).

Volatility: at the start of a swap `update_references(now)`, before each bin that pays out
`update_volatility_accumulator()`, and at the end `last_update_timestamp = now`. That last step is the
program's swap handler's, which is not published (in `programs/lb_clmm/src/state/parameters.rs` of the
SDK's first commit the line in `update_references` is commented out); it is done once per swap here, as
Trader Joe's Liquidity Book, which DLMM follows, does.

Amounts are Python integers; a swap that would leave a bin holding more than a u64 is refused, as the
program's checked arithmetic refuses it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from domain.pools.base import U64_MAX, InsufficientLiquidity, PoolFields, SwapResult, price_impact_bps

SCALE_OFFSET = 64  # Q64.64: a price p is the integer p * 2^64
ONE = 1 << SCALE_OFFSET
U128_MAX = (1 << 128) - 1
MAX_EXPONENTIAL = 0x80000  # `pow` handles |id| below 2^19
BASIS_POINT_MAX = 10_000
FEE_PRECISION = 1_000_000_000
MAX_FEE_RATE = 100_000_000  # 10 %
VARIABLE_FEE_SCALE = 100_000_000_000  # the 1e11 `compute_variable_fee` divides by (rounding up)
# Q64.64 active bin prices (2^-29 to 2^28 base units per base unit) that no bin ahead of the active one beats
# (for bin steps >= 1): `pow` rounds down at most 37 times (19 squarings, 18 products), which costs a result
# (before its inversion for ids > 0) of at least 2^35 units a relative 2^20 / 2^35 = 2^-15 at most, less
# than the 1e-4 between two bins' prices. Nearer Q64.64's ends rounding can reorder neighbouring bins.
MONOTONE_PRICES = range(2**35, 2**92)


def _pow(base: int, exp: int) -> int:
    """`base`^`exp` in Q64.64 as `u64x64_math.rs` `pow` computes it: square-and-multiply over the 19 bits
    of |exp|, each product shifted down 64 bits (rounding down), on 1/base when base >= 1 (so the products
    fit 128 bits), inverting the result at the end when needed. Raises ValueError out of its range."""
    invert = exp < 0
    if exp == 0:
        return ONE
    exp = abs(exp)
    if exp >= MAX_EXPONENTIAL:
        raise ValueError(f"a bin id's magnitude is below {MAX_EXPONENTIAL}, not {exp}")
    squared = base
    result = ONE
    if squared >= result:
        squared = U128_MAX // squared
        invert = not invert
    for bit in range(19):
        if bit:
            squared = (squared * squared) >> SCALE_OFFSET
        if exp & (1 << bit):
            result = (result * squared) >> SCALE_OFFSET
    if result == 0:
        raise ValueError(f"the price of bin {exp} is out of Q64.64's range")
    return U128_MAX // result if invert else result


@lru_cache(maxsize=65_536)
def bin_price(bin_id: int, bin_step: int) -> int:
    """Q64.64 price of one base unit of token_x in base units of token_y in bin `bin_id`
    (`price_math.rs` `get_price_from_id`)."""
    bps = (bin_step << SCALE_OFFSET) // BASIS_POINT_MAX
    return _pow(ONE + bps, bin_id)


def bin_id_at(price: Decimal | Fraction, bin_step: int, decimals_x: int, decimals_y: int) -> int:
    """The bin holding `price` (whole token_y per whole token_x, exact): the highest id whose price is <= it.

    Raises ValueError for a price <= 0."""
    if price <= 0:
        raise ValueError(f"a price is positive, not {price}")
    target = Fraction(price) * Fraction(10) ** (decimals_y - decimals_x) * ONE  # Q64.64, exact
    bin_id = math.floor(math.log(target / ONE) / math.log1p(bin_step / BASIS_POINT_MAX))  # a first guess
    while bin_price(bin_id, bin_step) > target:
        bin_id -= 1
    while bin_price(bin_id + 1, bin_step) <= target:
        bin_id += 1
    return bin_id


def spread_bins(
    active_id: int, amount_x: int, amount_y: int, bins_per_side: int
) -> dict[int, tuple[int, int]]:
    """Liquidity spread evenly, like Meteora's "spot" strategy: `amount_y` evenly over the active bin and the
    `bins_per_side` bins below it, `amount_x` evenly over the active bin and the ones above (bins below the
    active one hold only token_y, above it only token_x); the remainders of the division go to the active
    bin. Amounts in base units."""
    if bins_per_side < 0 or amount_x < 0 or amount_y < 0:
        raise ValueError("amounts and the number of bins are >= 0")
    count = bins_per_side + 1
    each_x, rest_x = divmod(amount_x, count)
    each_y, rest_y = divmod(amount_y, count)
    bins = {active_id - offset: (0, each_y) for offset in range(1, count)}
    bins |= {active_id + offset: (each_x, 0) for offset in range(1, count)}
    bins[active_id] = (each_x + rest_x, each_y + rest_y)
    return bins


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class DlmmPool(PoolFields, kw_only=True, tag="dlmm"):
    """One Meteora DLMM pool.

    `bins`: bin id -> (amount_x, amount_y) in base units; `active_id`: the bin the price is in.
    Fee parameters as in Meteora's `StaticParameters`; the defaults are illustrative, not one of Meteora's
    published presets: a base fee of bin_step hundredths of a percent (0.1 % at bin step 10), a 30 s filter
    period, a 600 s decay period, half the volatility kept past the filter period. The volatility state as
    in its `VariableParameters` (`last_update_timestamp` in unix seconds).
    """

    bin_step: int  # basis points between two bins' prices
    active_id: int
    bins: dict[int, tuple[int, int]]
    base_factor: int = 10_000
    base_fee_power_factor: int = 0
    filter_period: int = 30
    decay_period: int = 600
    reduction_factor: int = 5_000  # basis points of the volatility kept past the filter period
    variable_fee_control: int = 40_000
    max_volatility_accumulator: int = 350_000
    volatility_accumulator: int = 0
    volatility_reference: int = 0
    index_reference: int = 0
    last_update_timestamp: int = 0

    def spot_price(self, token_in: str) -> Decimal:
        """Whole `token_out` per whole `token_in` at the active bin's price."""
        out_per_in = self._spot(self._swaps_for_y(token_in))
        shift = self.decimals_x - self.decimals_y  # whole per whole = base per base * 10^(dec_in - dec_out)
        if token_in == self.token_y:
            shift = -shift
        return (Decimal(out_per_in.numerator) / Decimal(out_per_in.denominator)).scaleb(shift)

    def base_fee_rate(self) -> int:
        """`get_base_fee`, in FEE_PRECISION units."""
        power: int = 10**self.base_fee_power_factor  # an int power of an int (mypy cannot tell its sign)
        return self.base_factor * self.bin_step * 10 * power

    def total_fee_rate(self) -> int:
        """`get_total_fee` at the current volatility, in FEE_PRECISION units, capped at MAX_FEE_RATE."""
        return self._total_fee_rate(self.base_fee_rate(), self.volatility_accumulator)

    def quote(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """The swap's outcome at unix second `now`; the pool is unchanged.

        Raises `InsufficientLiquidity` when the bins hold too little of the output token or the input buys
        nothing; `ValueError` for a token the pool does not trade or an amount <= 0."""
        walk = self._walk(token_in, amount_in_raw, now)
        return self._result(token_in, amount_in_raw, walk)

    def amount_out(self, token_in: str, amount_in_raw: int, now: int) -> int:
        """`quote(token_in, amount_in_raw, now).amount_out_raw`, without the fee and price impact's
        bookkeeping. Raises as `quote`."""
        return self._walk(token_in, amount_in_raw, now).amount_out

    def rate_ceiling(self, token_in: str, now: int) -> Fraction:
        """Base units of the output per base unit of `token_in` that no swap now pays more than on average:
        the active bin's price less the base fee (capped at MAX_FEE_RATE; the variable fee only adds to it).

        In each bin the output is at most the input that stays in it (after the fee) at the bin's price, both
        rounded in the pool's favour, and that input at most what the bin took less the least fee rate; the
        bins after the active one pay less, their prices falling strictly along the walk while the active
        one's is within MONOTONE_PRICES (see there). Outside it the ceiling is all the output token the bins
        hold, more than any swap of one base unit or more pays. Raises as `quote`."""
        swap_for_y = self._swaps_for_y(token_in)
        price = bin_price(self.active_id, self.bin_step)
        if self.bin_step < 1 or price not in MONOTONE_PRICES:
            out_side = 1 if swap_for_y else 0
            return Fraction(sum(held[out_side] for held in self.bins.values()))
        out_per_in = Fraction(price, ONE) if swap_for_y else Fraction(ONE, price)
        return out_per_in * (FEE_PRECISION - min(self.base_fee_rate(), MAX_FEE_RATE)) / FEE_PRECISION

    def swap(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """Swap, changing bins, active bin and volatility state as `quote` said."""
        walk = self._walk(token_in, amount_in_raw, now)
        result = self._result(token_in, amount_in_raw, walk)
        self.bins = self.bins | walk.bins
        self.active_id = walk.active_id
        self.volatility_accumulator = walk.volatility_accumulator
        self.volatility_reference = walk.volatility_reference
        self.index_reference = walk.index_reference
        self.last_update_timestamp = now
        return result

    def liquidity(self, token: str) -> int:
        side = 0 if self._swaps_for_y(token) else 1  # each bin holds (amount_x, amount_y)
        return sum(amounts[side] for amounts in self.bins.values())

    def _swaps_for_y(self, token_in: str) -> bool:
        if token_in == self.token_x:
            return True
        if token_in == self.token_y:
            return False
        raise ValueError(f"pool {self.pool_id} trades {self.token_x}/{self.token_y}, not {token_in}")

    def _spot(self, swap_for_y: bool) -> Fraction:
        """Base units out per base unit in at the active bin's price."""
        price = Fraction(bin_price(self.active_id, self.bin_step), ONE)
        return price if swap_for_y else 1 / price

    def _result(self, token_in: str, amount_in_raw: int, walk: _Walk) -> SwapResult:
        spot = Fraction(walk.price_before, ONE)
        return SwapResult(
            amount_in_raw=amount_in_raw,
            amount_out_raw=walk.amount_out,
            fee_raw=walk.fee,
            price_impact_bps=price_impact_bps(
                spot if token_in == self.token_x else 1 / spot, amount_in_raw - walk.fee, walk.amount_out
            ),
        )

    def _walk(self, token_in: str, amount_in_raw: int, now: int) -> _Walk:
        """The walk of `quote.rs` `quote_exact_in` over the bins, computed without changing the pool: bins
        not holding the output token are passed over without touching the volatility, as the program's
        loop does. Raises as `quote`."""
        swap_for_y = self._swaps_for_y(token_in)
        if amount_in_raw <= 0:
            raise ValueError(f"an amount to swap is positive, not {amount_in_raw}")
        price_before = bin_price(self.active_id, self.bin_step)
        index_reference, volatility_reference = self._references(now)
        base_fee = self.base_fee_rate()
        out_side = 1 if swap_for_y else 0
        step = -1 if swap_for_y else 1  # selling x walks down the bins (the price of x falls), buying x up
        changed: dict[int, tuple[int, int]] = {}
        active_id, accumulator = self.active_id, self.volatility_accumulator
        left, amount_out, fee = amount_in_raw, 0, 0
        for bin_id, held in _bins_ahead(self.bins, self.active_id, step):
            if left == 0:
                break
            if not held[out_side]:
                continue
            active_id = bin_id
            # `update_volatility_accumulator`: the reference plus 10_000 per bin from the reference bin
            crossed = abs(index_reference - bin_id) * BASIS_POINT_MAX
            accumulator = min(volatility_reference + crossed, self.max_volatility_accumulator)
            rate = self._total_fee_rate(base_fee, accumulator)
            taken, paid, bin_fee, after = _swap_in_bin(
                held, bin_price(bin_id, self.bin_step), rate, left, swap_for_y
            )
            if max(after) > U64_MAX:  # the program's checked add fails: the swap is refused
                raise InsufficientLiquidity(
                    f"bin {bin_id} of pool {self.pool_id} cannot hold that much (u64)"
                )
            changed[bin_id] = after
            left, amount_out, fee = left - taken, amount_out + paid, fee + bin_fee
        if left > 0:
            raise InsufficientLiquidity(
                f"pool {self.pool_id} holds too little {self.token_y if swap_for_y else self.token_x} "
                f"for {amount_in_raw} base units of {token_in}"
            )
        if amount_out == 0:
            raise InsufficientLiquidity(
                f"{amount_in_raw} base units of {token_in} buy nothing from pool {self.pool_id}"
            )
        return _Walk(
            amount_out=amount_out,
            fee=fee,
            price_before=price_before,
            bins=changed,
            active_id=active_id,
            volatility_accumulator=accumulator,
            volatility_reference=volatility_reference,
            index_reference=index_reference,
        )

    def _references(self, now: int) -> tuple[int, int]:
        """`update_references` (lb_pair.rs), as (index reference, volatility reference): past the filter
        period the reference bin becomes the active one and the volatility decays (by `reduction_factor`
        inside the decay period, to 0 past it)."""
        elapsed = now - self.last_update_timestamp
        if elapsed < self.filter_period:
            return self.index_reference, self.volatility_reference
        if elapsed < self.decay_period:
            return self.active_id, self.volatility_accumulator * self.reduction_factor // BASIS_POINT_MAX
        return self.active_id, 0

    def _total_fee_rate(self, base_fee: int, volatility_accumulator: int) -> int:
        """`get_total_fee` at `volatility_accumulator`, in FEE_PRECISION units, capped at MAX_FEE_RATE."""
        variable = 0
        if self.variable_fee_control > 0:
            squared = (volatility_accumulator * self.bin_step) ** 2
            variable = _ceil_div(self.variable_fee_control * squared, VARIABLE_FEE_SCALE)
        return min(base_fee + variable, MAX_FEE_RATE)


class _Walk(NamedTuple):
    """A swap's outcome over the bins: what it pays, its fee (base units), the active bin's Q64.64 price
    before it, and the state after it (the bins it changed, the active bin, the volatility)."""

    amount_out: int
    fee: int
    price_before: int
    bins: dict[int, tuple[int, int]]
    active_id: int
    volatility_accumulator: int
    volatility_reference: int
    index_reference: int


def _bins_ahead(
    bins: dict[int, tuple[int, int]], start: int, step: int
) -> Iterator[tuple[int, tuple[int, int]]]:
    """(id, amounts) of the bins from `start` on, `step` (+1 or -1) at a time, in order: bin after bin while
    the ids follow each other (as the spread liquidity of a pool holds them, so a swap reads only the bins
    it crosses), then the ones past the first gap, sorted once."""
    bin_id = start
    while (held := bins.get(bin_id)) is not None:
        yield bin_id, held
        bin_id += step
    for later in sorted((i for i in bins if (i - bin_id) * step > 0), key=lambda i: i * step):
        yield later, bins[later]


def _swap_in_bin(
    held: tuple[int, int], price: int, rate: int, amount_in: int, swap_for_y: bool
) -> tuple[int, int, int, tuple[int, int]]:
    """(input taken with its fee, output paid, fee, the bin's amounts after) in a bin holding `held` at
    Q64.64 `price`, at fee rate `rate` (FEE_PRECISION units): the input less the fee joins the bin, the
    output leaves it. As `swap_exact_in_quote_at_bin` and `calculate_exact_in_fill_amount` (quote.rs;
    `swapExactInQuoteAtBin` in ts-client/src/dlmm/helpers/bin.ts) for the fee on the input and no limit
    orders: the fee comes off the whole input first; if what is left empties the bin, the input is cut to
    what empties it plus the fee on top of that."""
    amount_x, amount_y = held
    fee = _ceil_div(amount_in * rate, FEE_PRECISION)  # compute_fee_from_amount
    traded = amount_in - fee
    if swap_for_y:
        max_out = amount_y
        max_in = _ceil_div(amount_y << SCALE_OFFSET, price)  # get_amount_in: shl_div, rounding up
    else:
        max_out = amount_x
        max_in = _ceil_div(amount_x * price, ONE)  # get_amount_in: mul_shr, rounding up
    if traded >= max_in:
        paid = max_out
        if traded > max_in:  # input left over for the next bin
            traded = max_in
            fee = _ceil_div(max_in * rate, FEE_PRECISION - rate)  # compute_fee
    else:  # get_amount_out, rounding down (below max_out as traded < max_in)
        paid = (price * traded) >> SCALE_OFFSET if swap_for_y else (traded << SCALE_OFFSET) // price
    after = (amount_x + traded, amount_y - paid) if swap_for_y else (amount_x - paid, amount_y + traded)
    return traded + fee, paid, fee, after
