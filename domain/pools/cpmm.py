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
        return self._trade(token_in, amount_in_raw)[0]

    def swap(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """Swap, moving the reserves as `quote` said (the fee's liquidity-provider part stays in them)."""
        result, new_reserve_in, new_reserve_out = self._trade(token_in, amount_in_raw)
        if token_in == self.token_x:
            self.reserve_x, self.reserve_y = new_reserve_in, new_reserve_out
        else:
            self.reserve_y, self.reserve_x = new_reserve_in, new_reserve_out
        return result

    def _reserves(self, token_in: str) -> tuple[int, int]:
        if token_in == self.token_x:
            return self.reserve_x, self.reserve_y
        if token_in == self.token_y:
            return self.reserve_y, self.reserve_x
        raise ValueError(f"pool {self.pool_id} trades {self.token_x}/{self.token_y}, not {token_in}")

    def _trade(self, token_in: str, amount_in_raw: int) -> tuple[SwapResult, int, int]:
        """The result and the reserves (in, out) after it."""
        reserve_in, reserve_out = self._reserves(token_in)
        if amount_in_raw <= 0:
            raise ValueError(f"an amount to swap is positive, not {amount_in_raw}")
        if reserve_in + amount_in_raw > U64_MAX:  # the vault's token account would overflow
            raise InsufficientLiquidity(f"pool {self.pool_id}'s {token_in} vault cannot hold that much (u64)")
        trade_fee = _ceil_div(amount_in_raw * self.trade_fee_rate, FEE_RATE_DENOMINATOR)
        protocol_fee = trade_fee * self.protocol_fee_rate // FEE_RATE_DENOMINATOR
        fund_fee = trade_fee * self.fund_fee_rate // FEE_RATE_DENOMINATOR
        traded = amount_in_raw - trade_fee
        amount_out = traded * reserve_out // (reserve_in + traded)
        if amount_out == 0:
            raise InsufficientLiquidity(
                f"{amount_in_raw} base units of {token_in} buy nothing from pool {self.pool_id}"
            )
        result = SwapResult(
            amount_in_raw=amount_in_raw,
            amount_out_raw=amount_out,
            fee_raw=trade_fee,
            price_impact_bps=price_impact_bps(Fraction(reserve_out, reserve_in), traded, amount_out),
        )
        return result, reserve_in + amount_in_raw - protocol_fee - fund_fee, reserve_out - amount_out
