"""The HTTP command API refuses bad input with a JSON error naming the field, and honours Idempotency-Key."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from domain.tokens import TOKENS
from tests.harness import MARKET_ORDER, Engine, engine_settings, project_everything, running_engine

EXECUTE = "/api/orders/execute"
JSON = {"content-type": "application/json"}
MAX_BODY_BYTES = 16_384


def embedded(sqlite_url: str) -> dict[str, str | None]:
    return {"database_url": sqlite_url, "redis_url": None}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in MARKET_ORDER.items() if k != field}


def order(**changes: Any) -> dict[str, Any]:
    return {**MARKET_ORDER, **changes}


def in_base_units(amount_in_raw: Any) -> dict[str, Any]:
    """The order with its amount given as `amountInRaw` instead of `amountIn`."""
    return {**without("amountIn"), "amountInRaw": amount_in_raw}


def raw(text: str | bytes) -> dict[str, Any]:
    return {"content": text.encode() if isinstance(text, str) else text, "headers": JSON}


async def list_all_orders(engine: Engine) -> list[dict[str, Any]]:
    """Every order in the read table, after the projector has applied everything appended so far."""
    await project_everything(engine.services)
    response = await engine.http.get("/api/orders", params={"limit": 200})
    assert response.status_code == 200, response.text
    return response.json()["orders"]


# label, request (httpx post kwargs), expected status, expected error code (None: any), field it must name
BAD_BODIES: list[tuple[str, dict[str, Any], int, str | None, str | None]] = [
    *[
        (f"missing {f}", {"json": without(f)}, 400, "invalid_request", f)
        for f in MARKET_ORDER
        if f != "slippageBps"
    ],
    ("amountIn as a boolean", {"json": order(amountIn=True)}, 400, "invalid_request", "amountIn"),
    ("amountIn not a decimal", {"json": order(amountIn="half")}, 400, "invalid_request", "amountIn"),
    ("amountIn null", {"json": order(amountIn=None)}, 400, "invalid_request", "amountIn"),
    ("slippageBps fractional", {"json": order(slippageBps=1.5)}, 400, "invalid_request", "slippageBps"),
    ("tokenIn a number", {"json": order(tokenIn=5)}, 400, "invalid_request", "tokenIn"),
    ("amountIn 0", {"json": order(amountIn=0)}, 400, "invalid_request", "amountIn"),
    ("amountIn -1", {"json": order(amountIn=-1)}, 400, "invalid_request", "amountIn"),
    (
        "amountIn 1e400",
        raw('{"orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amountIn":1e400,"slippageBps":50}'),
        400,
        "invalid_request",
        None,  # refused by the JSON decoder before any field is known
    ),
    ("amountIn above SOL max", {"json": order(amountIn=10_001)}, 400, "invalid_request", "amountIn"),
    ("amountIn below SOL unit", {"json": order(amountIn=1e-10)}, 400, "invalid_request", "amountIn"),
    ("amountIn 1e-10 as a string", {"json": order(amountIn="1e-10")}, 400, "invalid_request", "amountIn"),
    (
        "amountIn 10 decimals of SOL",
        {"json": order(amountIn=0.1234567891)},
        400,
        "invalid_request",
        "amountIn",
    ),
    (
        "amountIn 10 decimals of SOL as a string",
        {"json": order(amountIn="0.1234567891")},
        400,
        "invalid_request",
        "amountIn",
    ),
    (
        "amountIn 7 decimals of USDC",
        {"json": order(tokenIn="USDC", tokenOut="SOL", amountIn=1.1234567)},
        400,
        "invalid_request",
        "amountIn",
    ),
    ('amountIn "0"', {"json": order(amountIn="0")}, 400, "invalid_request", "amountIn"),
    (
        "amountIn of 5,000 digits",
        raw(json.dumps(without("amountIn"))[:-1] + ', "amountIn": ' + "9" * 5_000 + "}"),
        400,
        "invalid_request",
        None,  # refused by the JSON decoder before any field is known, as 1e400
    ),
    (
        "both amountIn and amountInRaw",
        {"json": order(amountInRaw="500000000")},
        400,
        "invalid_request",
        "amountInRaw",
    ),
    ("amountInRaw 0", {"json": in_base_units("0")}, 400, "invalid_request", "amountInRaw"),
    ("amountInRaw 00012", {"json": in_base_units("00012")}, 400, "invalid_request", "amountInRaw"),
    ("amountInRaw 1.5", {"json": in_base_units("1.5")}, 400, "invalid_request", "amountInRaw"),
    ("amountInRaw -3", {"json": in_base_units("-3")}, 400, "invalid_request", "amountInRaw"),
    ("amountInRaw empty", {"json": in_base_units("")}, 400, "invalid_request", "amountInRaw"),
    ("amountInRaw a number", {"json": in_base_units(500)}, 400, "invalid_request", "amountInRaw"),
    ("amountInRaw null", {"json": in_base_units(None)}, 400, "invalid_request", "amountIn"),
    (
        "amountInRaw above SOL max",
        {"json": in_base_units(str(TOKENS["SOL"].max_amount_in_raw + 1))},
        400,
        "invalid_request",
        "amountInRaw",
    ),
    (
        "amountInRaw of 5,000 digits (more than Python's int() reads)",
        {"json": in_base_units("9" * 5_000)},
        400,
        "invalid_request",
        "amountInRaw",
    ),
    ("slippageBps 0", {"json": order(slippageBps=0)}, 400, "invalid_request", "slippageBps"),
    ("slippageBps 5001", {"json": order(slippageBps=5001)}, 400, "invalid_request", "slippageBps"),
    ("unknown tokenIn", {"json": order(tokenIn="DOGE")}, 400, "invalid_request", "tokenIn"),
    ("unknown tokenOut", {"json": order(tokenOut="DOGE")}, 400, "invalid_request", "tokenOut"),
    ("same token in and out", {"json": order(tokenOut="SOL")}, 400, "invalid_request", "tokenOut"),
    ("unknown extra field", {"json": order(priority="high")}, 400, "invalid_request", "priority"),
    ("a limit without its limit", {"json": order(orderType="limit")}, 400, "invalid_request", "limitPrice"),
    ("a sniper for a listed token", {"json": order(orderType="sniper")}, 400, "invalid_request", "tokenOut"),
    (
        "a sniper for an unknown token",
        {"json": order(orderType="sniper", tokenOut="WIF")},
        422,
        "unprocessable",
        "tokenOut",
    ),
    ("orderType foo", {"json": order(orderType="foo")}, 400, "invalid_request", "orderType"),
    ("a JSON array", {"json": [MARKET_ORDER]}, 400, "invalid_request", "body"),
    ("a JSON string", {"json": "just a string"}, 400, "invalid_request", "body"),
    ("JSON null", raw("null"), 400, "invalid_request", "body"),
    ("malformed JSON", raw(b'{"orderType":'), 400, "invalid_request", "body"),
    ("malformed JSON key", raw(b"{bad"), 400, "invalid_request", "body"),
    ("empty body", raw(b""), 400, "invalid_request", "body"),
    (
        "body over the limit",
        raw(json.dumps(order(padding="x" * (MAX_BODY_BYTES + 1)))),
        413,
        "body_too_large",
        None,
    ),
]


def problem_with(response: Any, status: int, error: str | None, field: str | None) -> str | None:
    """Why `response` is not the expected JSON error, or None if it is."""
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text}"
    if response.status_code != status:
        return f"status {response.status_code}, expected {status}: {response.text}"
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {response.headers.get('content-type')!r}: {response.text}"
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text!r}"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return f"no error code: {body}"
    if not isinstance(body.get("message"), str) or not body["message"]:
        return f"no message: {body}"
    if error is not None and body["error"] != error:
        return f"error {body['error']!r}, expected {error!r}: {body}"
    if field is not None and field not in body["message"] and body.get("field") != field:
        return f"does not name {field!r}: {body}"
    return None


async def test_bad_bodies_answer_a_json_4xx_naming_the_field_and_create_nothing(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        problems = []
        for label, request, status, error, field in BAD_BODIES:
            response = await engine.http.post(EXECUTE, **request)
            if (problem := problem_with(response, status, error, field)) is not None:
                problems.append(f"{label}: {problem}")

        if created := await list_all_orders(engine):
            problems.append(f"bad input created {len(created)} order(s): {created}")

    assert not problems, "\n".join(problems)


async def test_a_raw_amount_of_100_000_digits_is_refused_naming_it(sqlite_url):
    """Read as text and refused by its length: never handed to int() (which takes seconds, or refuses
    strings over 4,300 digits)."""
    body = json.dumps(in_base_units("7" * 100_000))
    settings = embedded(sqlite_url) | {"request_max_body_bytes": 2 * len(body)}
    async with running_engine(engine_settings(settings)) as engine:
        response = await engine.http.post(EXECUTE, content=body, headers=JSON)
        created = await list_all_orders(engine)

    assert problem_with(response, 400, "invalid_request", "amountInRaw") is None, response.text
    assert created == []


async def test_only_amount_in_may_be_a_decimal_string(sqlite_url):
    """`amountIn` is a decimal value, exact as a JSON number or a string; other numbers sent as strings are
    refused, and `amountInRaw` is a string of digits only."""
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        answers = {}
        for field, value in (("amountIn", "0.5"), ("slippageBps", "50")):
            response = await engine.http.post(EXECUTE, json=order(**{field: value}))
            answers[field] = (response.status_code, response.json())
        response = await engine.http.post(EXECUTE, json=in_base_units(500_000_000))
        answers["amountInRaw"] = (response.status_code, response.json())
        created = await list_all_orders(engine)

    assert {field: status for field, (status, _) in answers.items()} == {
        "amountIn": 201,
        "slippageBps": 400,
        "amountInRaw": 400,
    }, answers
    # Named in JSON's types, not Python's (msgspec says `float`, `int` and `str`).
    messages = {field: body.get("message") for field, (_, body) in answers.items()}
    assert messages["slippageBps"].startswith("slippageBps: Expected `number`, got `string`"), messages
    assert messages["amountInRaw"].startswith("amountInRaw: Expected `string | null`, got `int"), messages
    assert [(o["orderId"], o["amountIn"], o["amountInRaw"]) for o in created] == [
        (answers["amountIn"][1]["orderId"], 0.5, "500000000")
    ]


async def test_amount_in_beyond_float_range_is_refused_as_out_of_range(sqlite_url):
    body = b'{"orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amountIn":1e400,"slippageBps":50}'
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        response = await engine.http.post(EXECUTE, content=body, headers=JSON)

    assert response.status_code == 400, response.text
    # The JSON decoder refuses the number before any field is known, so the message names the rule only.
    assert "out of range" in response.json()["message"], response.json()


async def test_a_valid_body_is_accepted_with_an_order_id_and_ws_url(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        response = await engine.http.post(EXECUTE, json=without("slippageBps"))
        assert response.status_code == 201, response.text
        order_id = response.json()["orderId"]
        assert response.json()["wsUrl"] == f"/api/orders/execute?orderId={order_id}"

        view = (await engine.http.get(f"/api/orders/{order_id}")).json()
        assert view["slippageBps"] == 50  # the documented default


async def test_a_body_just_under_the_limit_is_not_refused_for_its_size(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        body = json.dumps(MARKET_ORDER).encode()
        padded = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
        assert len(padded) == MAX_BODY_BYTES

        response = await engine.http.post(EXECUTE, content=padded, headers=JSON)

        assert response.status_code == 201, response.text


# -- Idempotency-Key --------------------------------------------------------------------------------


async def submitted_events(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    response = await engine.http.get(f"/api/orders/{order_id}/events")
    assert response.status_code == 200, response.text
    return [m for m in response.json() if m["type"] == "OrderSubmitted"]


async def test_same_key_and_body_twice_answers_the_same_order_once(backend):
    headers = {"Idempotency-Key": "order-42"}
    async with running_engine(engine_settings(backend)) as engine:
        first = await engine.http.post(EXECUTE, json=MARKET_ORDER, headers=headers)
        second = await engine.http.post(EXECUTE, json=MARKET_ORDER, headers=headers)

        assert first.status_code == 201, first.text
        assert second.status_code == 200, second.text
        order_id = first.json()["orderId"]
        assert second.json() == first.json()
        assert len(await submitted_events(engine, order_id)) == 1


async def test_different_keys_make_different_orders(backend):
    async with running_engine(engine_settings(backend)) as engine:
        a = await engine.http.post(EXECUTE, json=MARKET_ORDER, headers={"Idempotency-Key": "a"})
        b = await engine.http.post(EXECUTE, json=MARKET_ORDER, headers={"Idempotency-Key": "b"})

        assert (a.status_code, b.status_code) == (201, 201)
        assert a.json()["orderId"] != b.json()["orderId"]


async def test_same_key_with_a_different_body_is_a_409_and_changes_nothing(backend):
    headers = {"Idempotency-Key": "order-43"}
    async with running_engine(engine_settings(backend)) as engine:
        first = await engine.http.post(EXECUTE, json=MARKET_ORDER, headers=headers)
        other = await engine.http.post(EXECUTE, json=order(amountIn=0.75), headers=headers)

        assert first.status_code == 201, first.text
        assert other.status_code == 409, other.text
        assert other.headers["content-type"].startswith("application/json")
        body = other.json()
        assert body["error"] == "idempotency_key_reused"
        assert "Idempotency-Key" in body["message"]
        submitted = await submitted_events(engine, first.json()["orderId"])
        assert [m["amountIn"] for m in submitted] == [0.5]


async def test_concurrent_repeats_of_one_key_create_exactly_one_order(backend):
    headers = {"Idempotency-Key": "order-44"}
    async with running_engine(engine_settings(backend)) as engine:
        responses = await asyncio.gather(
            *(engine.http.post(EXECUTE, json=MARKET_ORDER, headers=headers) for _ in range(20))
        )

        statuses = sorted(r.status_code for r in responses)
        assert all(200 <= s < 300 for s in statuses), [r.text for r in responses]
        assert statuses.count(201) == 1, statuses
        order_ids = {r.json()["orderId"] for r in responses}
        assert len(order_ids) == 1
        assert len(await submitted_events(engine, order_ids.pop())) == 1


# -- queries ----------------------------------------------------------------------------------------


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_QUERIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("malformed order id", "/api/orders/not-a-uuid", {}, "orderId"),
    ("malformed order id, events", "/api/orders/not-a-uuid/events", {}, "orderId"),
    ("unknown status", "/api/orders", {"status": "nonsense"}, "status"),
    ("limit 0", "/api/orders", {"limit": 0}, "limit"),
    ("limit 1000", "/api/orders", {"limit": 1000}, "limit"),
    ("limit not a number", "/api/orders", {"limit": "ten"}, "limit"),
    ("garbage cursor", "/api/orders", {"cursor": "garbage"}, "cursor"),
    ("cursor of the wrong shape", "/api/orders", {"cursor": cursor_of(["yesterday", 5])}, "cursor"),
]


async def test_bad_queries_answer_400_naming_the_parameter(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        problems = []
        for label, path, params, field in BAD_QUERIES:
            response = await engine.http.get(path, params=params)
            if (problem := problem_with(response, 400, "invalid_request", field)) is not None:
                problems.append(f"{label}: {problem}")

    assert not problems, "\n".join(problems)


async def test_unknown_but_well_formed_order_id_is_404(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        for path in ("/api/orders/{}", "/api/orders/{}/events"):
            response = await engine.http.get(path.format("6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11"))
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"] == "not_found"


async def test_pages_concatenate_to_every_order_newest_first(sqlite_url):
    async with running_engine(engine_settings(embedded(sqlite_url))) as engine:
        submitted = [await engine.submit() for _ in range(5)]
        await project_everything(engine.services)

        pages = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor is not None else {})
            response = await engine.http.get("/api/orders", params=params)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            cursor = pages[-1]["nextCursor"]
            if cursor is None or len(pages) > 5:
                break

    assert [len(page["orders"]) for page in pages] == [2, 2, 1]
    assert pages[-1]["nextCursor"] is None
    listed = [o for page in pages for o in page["orders"]]
    ids = [o["orderId"] for o in listed]
    assert len(set(ids)) == len(ids), f"repeated orders: {ids}"
    assert ids == submitted[::-1]
    created = [o["createdAt"] for o in listed]
    assert created == sorted(created, reverse=True)
