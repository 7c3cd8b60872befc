"""docs/examples/*.jsonl, the message sequences README points to, are what the engine sends: each file was
written from a real run (UPDATE_EXAMPLES=1 writes it again) and each run checks it against a new one, line by
line: same event types and statuses, same fields, same order."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.harness import engine_settings, running_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

# name: (the order, the engine's settings for it)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ws-confirmed.jsonl": (
        {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": 0.5, "slippageBps": 50},
        {"mock_seed": 7},
    ),
    "ws-retried-then-failed.jsonl": (  # every attempt fails at the venue: two retries, then the end
        {"tokenIn": "USDC", "tokenOut": "BONK", "amountIn": 25, "slippageBps": 30},
        {"mock_seed": 7, "mock_failure_rate": 1.0, "max_attempts": 3, "retry_base_ms": 500},
    ),
}


def shape(value: Any) -> Any:
    """What a message looks like, without what changes from run to run (ids, times, prices, hashes)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """The shape, plus the fields that say what happened: the same in every run of the case."""
    fixed = ("type", "status", "version", "attempt", "attempts", "tokenIn", "tokenOut", "amountIn", "pair")
    return {**shape(message), **{key: message[key] for key in fixed if key in message}}


@pytest.mark.parametrize("name", CASES)
async def test_each_example_sequence_is_what_the_engine_sends(name: str, sqlite_url: str) -> None:
    order, settings = CASES[name]
    backend = {"database_url": sqlite_url, "redis_url": None}
    async with running_engine(engine_settings(backend, **settings)) as engine:
        order_id = await engine.submit(orderType="market", **order)
        messages, close_code = await engine.stream(order_id)
    assert close_code == 1000

    example = EXAMPLES / name
    if os.environ.get("UPDATE_EXAMPLES") == "1":
        example.parent.mkdir(exist_ok=True)
        lines = (json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in messages)
        example.write_text("".join(f"{line}\n" for line in lines))
        return
    shown = [json.loads(line) for line in example.read_text().splitlines()]
    assert [comparable(m) for m in shown] == [comparable(m) for m in messages], (
        f"{example} no longer matches what the engine sends; if the change is meant, write it again with "
        "UPDATE_EXAMPLES=1 and say so in README"
    )
    assert len({m["orderId"] for m in shown}) == 1
