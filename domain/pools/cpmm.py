"""Raydium's constant product pool (CPMM), in the integer maths of its program.

Source: github.com/raydium-io/raydium-cp-swap, `programs/cp-swap/src/curve/calculator.rs`
(`CurveCalculator::swap_base_input`), `curve/fees.rs` (`Fees::trading_fee`, `protocol_fee`, `fund_fee`),
`curve/constant_product.rs` (`swap_base_input_without_fees`), `states/pool.rs` (`vault_amount_without_fee`).

For an exact-in swap of `amount_in` (rates in millionths, `FEE_RATE_DENOMINATOR_VALUE = 1_000_000`):
    trade_fee  = ceil(amount_in * trade_fee_rate / 1_000_000)          (2_500: 0.25 %)
    amount_out = floor((amount_in - trade_fee) * reserve_out / (reserve_in + amount_in - trade_fee))
The protocol's and the fund's shares of the fee, floor(trade_fee * rate / 1_000_000) each, are set aside
in the program's `protocol_fees_token_*`/`fund_fees_token_*` and subtracted from the vaults before the next
swap (`vault_amount_without_fee`); the rest of the fee stays in the vault and so in the reserves (the
liquidity providers' income). Hence, after a swap:
    reserve_in  += amount_in - protocol_fee - fund_fee
    reserve_out -= amount_out
The creator fee of newer pools is left out (0 on the standard configs). The program refuses a swap that
would pay out nothing (`require_gt!(amount_received, 0)` in `instructions/swap_base_input.rs`).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from domain.pools.base import U64_MAX, InsufficientLiquidity, PoolFields, SwapResult, price_impact_bps

FEE_RATE_DENOMINATOR = 1_000_000  # `FEE_RATE_DENOMINATOR_VALUE` in curve/fees.rs


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class CpmmPool(PoolFields, kw_only=True, tag="cpmm"):
    """One Raydium CPMM pool; `reserve_*` in base units, fee rates in millionths of the input.

    The default rates are Raydium's standard AMM config (0.25 % trade fee, of which 12 % to the protocol
    and 4 % to the fund).
    """

    reserve_x: int
    reserve_y: int
    trade_fee_rate: int = 2_500
    protocol_fee_rate: int = 120_000  # share of the trade fee, in millionths
    fund_fee_rate: int = 40_000  # share of the trade fee, in millionths

    def spot_price(self, token_in: str) -> Decimal:
        """Whole `token_out` per whole `token_in`: the reserves' ratio with the decimals applied."""
        reserve_in, reserve_out = self._reserves(token_in)
        shift = self.decimals_x - self.decimals_y  # whole per whole = base per base * 10^(dec_in - dec_out)
        if token_in == self.token_y:
            shift = -shift
        return (Decimal(reserve_out) / Decimal(reserve_in)).scaleb(shift)

    def quote(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """The swap's outcome (see the module's formulas); the pool is unchanged. `now` is ignored.

        Raises `InsufficientLiquidity` if it would pay out nothing; `ValueError` for a token the pool does
        not trade or an amount <= 0."""
        trade = self._trade(token_in, amount_in_raw)
        return self._result(amount_in_raw, trade)

    def amount_out(self, token_in: str, amount_in_raw: int, now: int) -> int:
        """`quote(token_in, amount_in_raw, now).amount_out_raw`, without the price impact's Fractions.
        Raises as `quote`."""
        return self._trade(token_in, amount_in_raw).amount_out

    def rate_ceiling(self, token_in: str, now: int) -> Fraction:
        """Base units of the output per base unit of `token_in` that no swap pays more than: the reserves'
        ratio less the trade fee rate, `reserve_out / reserve_in * (1 - trade_fee_rate / 1e6)`.

        The fee is rounded up, so what is traded is at most the input times (1 - rate); the output, rounded
        down, is at most what is traded times reserve_out / reserve_in (it is that over reserve_in plus what
        is traded). The protocol's and the fund's shares are parts of the trade fee, not taken on top of it.
        An empty input reserve (a pool no swap ever leaves so) pays at most its output reserve.
        Raises `ValueError` for a token the pool does not trade."""
        reserve_in, reserve_out = self._reserves(token_in)
        if reserve_in == 0:
            return Fraction(reserve_out)
        return Fraction(
            reserve_out * (FEE_RATE_DENOMINATOR - self.trade_fee_rate), reserve_in * FEE_RATE_DENOMINATOR
        )

    def swap(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """Swap, moving the reserves as `quote` said (the fee's liquidity-provider part stays in them)."""
        trade = self._trade(token_in, amount_in_raw)
        protocol_fee = trade.fee * self.protocol_fee_rate // FEE_RATE_DENOMINATOR
        fund_fee = trade.fee * self.fund_fee_rate // FEE_RATE_DENOMINATOR
        new_reserve_in = trade.reserve_in + amount_in_raw - protocol_fee - fund_fee
        new_reserve_out = trade.reserve_out - trade.amount_out
        if token_in == self.token_x:
            self.reserve_x, self.reserve_y = new_reserve_in, new_reserve_out
        else:
            self.reserve_y, self.reserve_x = new_reserve_in, new_reserve_out
        return self._result(amount_in_raw, trade)

    def liquidity(self, token: str) -> int:
        return self._reserves(token)[0]

    def _reserves(self, token_in: str) -> tuple[int, int]:
        if token_in == self.token_x:
            return self.reserve_x, self.reserve_y
        if token_in == self.token_y:
            return self.reserve_y, self.reserve_x
        raise ValueError(f"pool {self.pool_id} trades {self.token_x}/{self.token_y}, not {token_in}")

    def _trade(self, token_in: str, amount_in_raw: int) -> _Trade:
        """The swap's amounts, from the reserves before it. Raises as `quote`."""
        reserve_in, reserve_out = self._reserves(token_in)
        if amount_in_raw <= 0:
            raise ValueError(f"an amount to swap is positive, not {amount_in_raw}")
        if reserve_in + amount_in_raw > U64_MAX:  # the vault's token account would overflow
            raise InsufficientLiquidity(f"pool {self.pool_id}'s {token_in} vault cannot hold that much (u64)")
        trade_fee = _ceil_div(amount_in_raw * self.trade_fee_rate, FEE_RATE_DENOMINATOR)
        traded = amount_in_raw - trade_fee
        amount_out = traded * reserve_out // (reserve_in + traded)
        if amount_out == 0:
            raise InsufficientLiquidity(
                f"{amount_in_raw} base units of {token_in} buy nothing from pool {self.pool_id}"
            )
        return _Trade(reserve_in=reserve_in, reserve_out=reserve_out, fee=trade_fee, amount_out=amount_out)

    @staticmethod
    def _result(amount_in_raw: int, trade: _Trade) -> SwapResult:
        traded = amount_in_raw - trade.fee
        return SwapResult(
            amount_in_raw=amount_in_raw,
            amount_out_raw=trade.amount_out,
            fee_raw=trade.fee,
            price_impact_bps=price_impact_bps(
                Fraction(trade.reserve_out, trade.reserve_in), traded, trade.amount_out
            ),
        )


class _Trade(NamedTuple):
    """One swap's amounts in base units: the reserves (in, out) before it, its trade fee, what it pays."""

    reserve_in: int
    reserve_out: int
    fee: int
    amount_out: int
