"""The OpenAPI document says exactly what the API accepts: every request it calls valid is answered as valid
(the boundaries it states, taken from the document itself), and the path parameter is `orderId`, a UUID."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from domain.tokens import TOKENS
from tests.harness import MARKET_ORDER, engine_settings, project_everything, running_engine

EXECUTE = "/api/orders/execute"


def embedded(sqlite_url: str) -> dict[str, str | None]:
    return {"database_url": sqlite_url, "redis_url": None}


def query_parameter(schema: dict[str, Any], name: str) -> dict[str, Any]:
    (parameter,) = (p for p in schema["paths"]["/api/orders"]["get"]["parameters"] if p["name"] == name)
    return parameter["schema"]


def branches(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [branch for branch in body["oneOf"] if branch["properties"]["orderType"]["const"] == kind]


def amount_boundaries(branch: dict[str, Any]) -> list[dict[str, Any]]:
    """A branch's amountIn range as the schema states it, as numbers, decimal strings and base units, each
    boundary checked against its pattern, and just past them refused by it."""
    token_in = branch["properties"]["tokenIn"]["const"]
    number, text, _ = branch["properties"]["amountIn"]["oneOf"]
    raw, _ = branch["properties"]["amountInRaw"]["oneOf"]
    token = TOKENS[token_in]
    least, most = token.value(1), token.value(token.max_amount_in_raw)
    amounts: list[dict[str, Any]] = [{"amountIn": number["minimum"]}, {"amountIn": number["maximum"]}]
    for field, amount, rule in (
        ("amountIn", f"{least:f}", text),
        ("amountIn", f"{most:f}", text),
        ("amountInRaw", "1", raw),
        ("amountInRaw", str(token.max_amount_in_raw), raw),
    ):
        assert re.fullmatch(rule["pattern"], amount), (rule, amount)
        amounts.append({field: amount})
    assert not re.fullmatch(text["pattern"], f"{token.value(token.max_amount_in_raw + 1):f}")
    assert not re.fullmatch(text["pattern"], f"{token.value(1) / 10:f}")
    assert not re.fullmatch(raw["pattern"], str(token.max_amount_in_raw + 1))
    assert not re.fullmatch(raw["pattern"], "0")
    return amounts


async def test_orders_the_schema_calls_valid_are_accepted_at_every_stated_boundary(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url), trigger_interval_ms=3_600_000)) as engine:
        assert (
            await engine.http.post("/market/tokens", json={"symbol": "PEPE", "decimals": 6})
        ).status_code == 201
        schema = (await engine.http.get("/schema/openapi.json")).json()
        components = schema["components"]["schemas"]
        body = components["OrderSubmission"]
        valid: list[dict[str, Any]] = []
        base = {k: v for k, v in MARKET_ORDER.items() if k != "amountIn"}
        for branch in branches(body, "market"):  # one per tokenIn: its amount range, the tokens it can buy
            token_in = branch["properties"]["tokenIn"]["const"]
            outs = branch["properties"]["tokenOut"]["enum"]
            amounts = amount_boundaries(branch)
            for token_out in outs:
                valid += [{**base, "tokenIn": token_in, "tokenOut": token_out, **a} for a in amounts[:2]]
            valid += [{**base, "tokenIn": token_in, "tokenOut": outs[0], **a} for a in amounts[2:]]
        for branch in branches(body, "limit"):  # one per pair: the least takingAmount it states
            properties = branch["properties"]
            token_in, token_out = properties["tokenIn"]["const"], properties["tokenOut"]["const"]
            number, text, _ = properties["takingAmount"]["oneOf"]
            least = f"{TOKENS[token_out].value(1):f}"
            assert re.fullmatch(text["pattern"], least) and not re.fullmatch(text["pattern"], least + "1")
            order = {**base, "orderType": "limit", "tokenIn": token_in, "tokenOut": token_out}
            valid += [
                {**order, "amountIn": "1", "takingAmount": taking} for taking in (number["minimum"], least)
            ]
        for branch in branches(body, "sniper"):  # SOL and USDC: any amount, minLiquidity from 0
            properties = branch["properties"]
            token_in = properties["tokenIn"]["const"]
            number, text, _ = properties["minLiquidity"]["oneOf"]
            finest = f"{TOKENS[token_in].value(1):f}"
            assert all(re.fullmatch(text["pattern"], v) for v in ("0", "0.0", finest))
            assert not any(re.fullmatch(text["pattern"], v) for v in ("-1", finest + "1", "1e3"))
            assert re.fullmatch(properties["tokenOut"]["pattern"], "PEPE")
            assert "PEPE" not in properties["tokenOut"]["not"]["enum"]
            delay = body["properties"]["maxDelayMs"]["oneOf"][0]
            order = {**base, "orderType": "sniper", "tokenIn": token_in, "tokenOut": "PEPE"}
            valid += [{**order, **a} for a in amount_boundaries(branch)]
            valid += [
                {**order, "amountIn": "1", "minLiquidity": liquidity, "maxDelayMs": delay_ms}
                for liquidity, delay_ms in (
                    (number["minimum"], delay["minimum"]),
                    (finest, delay["maximum"]),
                )
            ]
        valid.append({**MARKET_ORDER, "slippageBps": 50.0})  # a JSON integer may be written with ".0"
        answers = [await engine.http.post(EXECUTE, json=order) for order in valid]
        no_limit = await engine.http.post(EXECUTE, json={**MARKET_ORDER, "orderType": "limit"})
        unfunded = await engine.http.post(
            EXECUTE, json={**MARKET_ORDER, "orderType": "sniper", "tokenIn": "USDT", "tokenOut": "PEPE"}
        )
        over = await engine.http.post(EXECUTE, json={**MARKET_ORDER, "amountIn": 10_000.5})

    [order_type] = body["properties"]["orderType"]["allOf"]  # the OrderType enum, as the schema states it
    assert components[order_type["$ref"].rsplit("/", 1)[1]]["enum"] == ["market", "limit", "sniper"]
    assert body["additionalProperties"] is False
    assert {branch["properties"]["tokenIn"]["const"] for branch in body["oneOf"]} == set(
        body["properties"]["tokenIn"]["enum"]
    )
    # Exactly one of amountIn and amountInRaw, not null.
    assert all(
        [rule["required"] for rule in branch["allOf"][0]["oneOf"]] == [["amountIn"], ["amountInRaw"]]
        for branch in body["oneOf"]
    )
    assert [len(branches(body, kind)) for kind in ("market", "limit", "sniper")] == [5, 5 * 4, 2]
    refused = [
        (order, a.status_code, a.text)
        for order, a in zip(valid, answers, strict=True)
        if a.status_code != 201
    ]
    assert not refused
    assert len(valid) == (5 * 4 * 2 + 5 * 4) + 5 * 4 * 2 + 2 * (6 + 2) + 1
    # What the schema leaves out is refused: a limit order without its limit, a sniper order paying with
    # another token than SOL or USDC, SOL above its own maximum.
    assert (no_limit.status_code, no_limit.json()["field"]) == (400, "limitPrice")
    assert (unfunded.status_code, unfunded.json()["field"]) == (400, "tokenIn")
    assert (over.status_code, over.json()["field"]) == (400, "amountIn")


async def test_order_id_path_parameter_is_a_uuid_named_order_id_in_any_case(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        schema = (await engine.http.get("/schema/openapi.json")).json()
        order_id = await engine.submit()
        upper = [
            await engine.http.get(path.format(order_id.upper()))
            for path in ("/api/orders/{}", "/api/orders/{}/events")
        ]
        unknown = await engine.http.get(f"/api/orders/{uuid.uuid4()}")
        malformed = [await engine.http.get(path) for path in ("/api/orders/0", "/api/orders/0/events")]

    for path in ("/api/orders/{orderId}", "/api/orders/{orderId}/events"):
        (parameter,) = schema["paths"][path]["get"]["parameters"]
        assert (parameter["name"], parameter["in"], parameter["schema"]) == (
            "orderId",
            "path",
            {"type": "string", "format": "uuid"},
        )
    assert [answer.status_code for answer in upper] == [200, 200]
    assert upper[0].json()["orderId"] == order_id
    assert unknown.status_code == 404
    assert [(a.status_code, a.json()["field"]) for a in malformed] == [(400, "orderId"), (400, "orderId")]


async def test_date_time_filters_take_any_rfc_3339_moment_whatever_its_offset(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        schema = (await engine.http.get("/schema/openapi.json")).json()
        await engine.submit()
        await project_everything(engine.services)

        async def listed(**params: str) -> list[dict[str, Any]] | int:
            response = await engine.http.get("/api/orders", params=params)
            return response.json()["orders"] if response.status_code == 200 else response.status_code

        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        far_east = timezone(timedelta(hours=23, minutes=59))
        after_hour_ago = await listed(createdAfter=hour_ago.astimezone(far_east).isoformat())
        before_hour_ago = await listed(createdBefore=hour_ago.astimezone(far_east).isoformat())
        edges = [
            await listed(createdAfter="0001-01-01T00:00:00+23:59"),
            await listed(createdBefore="9999-12-31T23:59:59.999999-23:59"),
        ]
        no_such_day = await listed(createdAfter="2026-02-30T00:00:00Z")
        no_zone = await listed(createdAfter="2026-01-01T00:00")

    for name in ("createdAfter", "createdBefore"):
        assert query_parameter(schema, name)["format"] == "date-time"
    assert len(after_hour_ago) == 1 and before_hour_ago == []  # the offset is honoured, not dropped
    assert [len(orders) for orders in edges] == [1, 1]  # no overflow at the ends of the calendar
    assert no_such_day == 400 and no_zone == 400


async def test_next_cursor_has_the_shape_the_schema_states(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        schema = (await engine.http.get("/schema/openapi.json")).json()
        for _ in range(3):
            await engine.submit()
        await project_everything(engine.services)
        first = (await engine.http.get("/api/orders", params={"limit": 2})).json()
        second = (
            await engine.http.get("/api/orders", params={"limit": 2, "cursor": first["nextCursor"]})
        ).json()
        # Any string of that shape is a place in the list: before everything, or after everything.
        pattern = query_parameter(schema, "cursor")["pattern"]
        start = (
            await engine.http.get("/api/orders", params={"cursor": "9999999999999999-" + "f" * 32})
        ).json()
        end = (await engine.http.get("/api/orders", params={"cursor": "0-" + "0" * 32})).json()

    assert re.fullmatch(pattern, first["nextCursor"])
    assert len(first["orders"]) + len(second["orders"]) == 3 and second["nextCursor"] is None
    assert (len(start["orders"]), end["orders"]) == (3, [])


async def test_identifier_headers_the_schema_calls_valid_are_accepted_and_padding_is_not_valid(sqlite_url):
    """A header's surrounding spaces are not part of it (the door trims them), so the schema must not call a
    padded or blank key valid: the server would see another key, or none."""
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        schema = (await engine.http.get("/schema/openapi.json")).json()
        operation = schema["paths"][EXECUTE]["post"]
        patterns = {p["name"]: p["schema"]["pattern"] for p in operation["parameters"] if p["in"] == "header"}
        accepted = [
            await engine.http.post(EXECUTE, json=MARKET_ORDER, headers={name: value})
            for name in patterns
            for value in ("K", "a b", "~!x")
        ]

    assert set(patterns) == {"Idempotency-Key", "X-Request-ID"}
    for pattern in patterns.values():
        for padded in ("   ", " K", "K ", "K\t", ""):
            assert not re.search(pattern, padded), (pattern, padded)
    assert {a.status_code for a in accepted} <= {200, 201}, [a.text for a in accepted]
