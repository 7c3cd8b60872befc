"""Liquidity pools as the venues' programs compute them, in integer base units (no floats).

`base.py` is what every pool offers (the `Pool` protocol, `SwapResult`); `cpmm.py` is Raydium's constant
product pool, `dlmm.py` Meteora's bin pool.
"""
