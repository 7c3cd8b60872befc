"""Amounts survive the whole way exactly: the request, the event, the read model and every answer, to the last
base unit, however they were given (a JSON number, a decimal string, or base units)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.tokens import TOKENS
from migrations.run import upgrade_to_head
from tests.harness import engine_settings, project_everything, running_engine

EXACT = msgspec.json.Decoder(float_hook=Decimal)  # JSON numbers read as the decimals they are written as


def amounts() -> st.SearchStrategy[tuple[str, int, str]]:
    """(token, base units, how the request gives them), across each token's whole range."""
    return st.sampled_from(list(TOKENS)).flatmap(
        lambda symbol: st.tuples(
            st.just(symbol),
            st.one_of(
                st.integers(min_value=1, max_value=1000),
                st.integers(min_value=1, max_value=TOKENS[symbol].max_amount_in_raw),
            ),
            st.sampled_from(["number", "string", "raw"]),
        )
    )


def request_body(symbol: str, raw: int, given_as: str) -> str:
    """The POST body as text: a JSON number written as the exact decimal (json.dumps would take a float)."""
    token_out = "USDC" if symbol != "USDC" else "SOL"
    body = json.dumps({"orderType": "market", "tokenIn": symbol, "tokenOut": token_out})
    value = f"{TOKENS[symbol].value(raw):f}"
    amount = {"raw": f'"amountInRaw": "{raw}"', "string": f'"amountIn": "{value}"'}.get(
        given_as, f'"amountIn": {value}'
    )
    return f"{body[:-1]}, {amount}}}"


async def submit_and_read(examples: list[tuple[str, int, str]], sqlite_url: str) -> list[tuple[Any, ...]]:
    settings_ = engine_settings({"database_url": sqlite_url, "redis_url": None})
    seen = []
    async with running_engine(settings_, worker=False) as engine:
        for symbol, raw, given_as in examples:
            answer = await engine.http.post(
                "/api/orders/execute",
                content=request_body(symbol, raw, given_as),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 201, answer.text
            order_id = answer.json()["orderId"]
            (event,) = EXACT.decode((await engine.http.get(f"/api/orders/{order_id}/events")).content)
            seen.append((symbol, raw, order_id, event))
        await project_everything(engine.services)
        listed = EXACT.decode((await engine.http.get("/api/orders", params={"limit": 200})).content)
        views = {view["orderId"]: view for view in listed["orders"]}
        return [(*example, views[example[2]]) for example in seen]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(examples=st.lists(amounts(), min_size=1, max_size=12))
def test_any_amount_survives_the_api_the_log_and_the_read_model_exactly(examples, tmp_path_factory):
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('amounts') / 'engine.db'}"
    upgrade_to_head(sqlite_url)
    for symbol, raw, _, event, view in asyncio.run(submit_and_read(examples, sqlite_url)):
        value = TOKENS[symbol].value(raw)
        for shown in (event, view):
            assert shown["amountInRaw"] == str(raw)
            assert shown["amountIn"] == value  # the JSON number is the exact decimal


def test_the_smallest_and_a_finely_given_amount_survive(sqlite_url):
    examples = [
        ("SOL", 1, "number"),
        ("USDC", 999_999_123_456, "string"),
        ("USDC", 999_999_123_456, "number"),
    ]
    seen = asyncio.run(submit_and_read(examples, sqlite_url))
    assert [(event["amountIn"], view["amountInRaw"]) for *_, event, view in seen] == [
        (Decimal("0.000000001"), "1"),
        (Decimal("999999.123456"), "999999123456"),
        (Decimal("999999.123456"), "999999123456"),
    ]
