"""Liquidity pools as the venues' programs compute them, in integer base units (no floats).

`base.py` is what every pool offers (the `Pool` protocol, `SwapResult`); `cpmm.py` is Raydium's constant
product pool, `dlmm.py` Meteora's bin pool. `PoolState` is any of them, told apart by `kind` on the wire.
"""

from domain.pools.base import InsufficientLiquidity, Pool, SwapResult
from domain.pools.cpmm import CpmmPool

PoolState = CpmmPool

__all__ = ["CpmmPool", "InsufficientLiquidity", "Pool", "PoolState", "SwapResult"]
