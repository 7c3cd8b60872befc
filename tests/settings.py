"""The engine's settings in tests, and the order they submit: apart from the harness, so that what starts
engine processes (tests/processes.py, the benchmarks) does not import the whole engine itself."""

from __future__ import annotations

# Venue delays short enough for tests, long enough that orders overlap and subscribers join mid-flight.
FAST = {
    "mock_quote_delay_ms": 5,
    "mock_execution_delay_ms_min": 30,
    "mock_execution_delay_ms_max": 60,
    "mock_failure_rate": 0.0,
    "market_flow_interval_ms": 0,  # the market's prices move only when a test moves them
    "market_scripting": True,  # tests launch tokens and move prices (POST /tokens, /swaps); off by default
    "retry_base_ms": 50,
    "recovery_interval_s": 0.2,
    "recovery_grace_s": 0.5,
    "rate_limit_max": 100_000,  # tests of the limit set their own
    "submit_rate_limit_per_minute": 0,
}
MARKET_ORDER = {
    "orderType": "market",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amountIn": 0.5,
    "slippageBps": 50,
}
