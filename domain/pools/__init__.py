"""Liquidity pools as the venues' programs compute them, in integer base units (no floats).

`base.py` is what every pool offers (the `Pool` protocol, `SwapResult`); `cpmm.py` is Raydium's constant
product pool, `dlmm.py` Meteora's bin pool. `PoolState` is any of them, told apart by `kind` on the wire.
"""

from domain.pools.base import InsufficientLiquidity, Pool, SwapResult
from domain.pools.cpmm import CpmmPool
from domain.pools.dlmm import DlmmPool, bin_id_at, spread_bins

PoolState = CpmmPool | DlmmPool

__all__ = [
    "CpmmPool",
    "DlmmPool",
    "InsufficientLiquidity",
    "Pool",
    "PoolState",
    "SwapResult",
    "bin_id_at",
    "spread_bins",
]
