"""Access to the command API: an optional API key, a per-client submit rate limit, deliberate CORS."""

from __future__ import annotations

from tests.harness import MARKET_ORDER, engine_settings, running_engine

SUBMIT = "/api/orders/execute"


async def test_with_an_api_key_configured_submitting_needs_it_and_reading_does_not(backend):
    async with running_engine(engine_settings(backend, api_key="s3cret")) as engine:
        missing = await engine.http.post(SUBMIT, json=MARKET_ORDER)
        wrong = await engine.http.post(SUBMIT, json=MARKET_ORDER, headers={"Authorization": "Bearer nope"})
        right = await engine.http.post(SUBMIT, json=MARKET_ORDER, headers={"Authorization": "Bearer s3cret"})
        listed = await engine.http.get("/api/orders")

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
    assert missing.json()["error"] == "unauthorized"
    assert "s3cret" not in missing.text
    assert listed.status_code == 200


async def test_submitting_too_often_gets_429_with_retry_after_and_reads_stay_open(backend):
    async with running_engine(engine_settings(backend, submit_rate_limit_per_minute=3)) as engine:
        answers = [(await engine.http.post(SUBMIT, json=MARKET_ORDER)) for _ in range(4)]
        reading = await engine.http.get("/api/orders")

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    refused = answers[-1]
    assert refused.json()["error"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert reading.status_code == 200


async def test_cors_allows_only_the_configured_origins(sqlite_url):
    settings = engine_settings(
        {"database_url": sqlite_url, "redis_url": None}, cors_origins="https://ui.example"
    )
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with running_engine(settings) as engine:
        allowed = await engine.http.options(SUBMIT, headers={"Origin": "https://ui.example", **preflight})
        other = await engine.http.options(SUBMIT, headers={"Origin": "https://evil.example", **preflight})
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        default = await engine.http.get("/api/orders", headers={"Origin": "https://ui.example"})

    assert allowed.headers.get("access-control-allow-origin") == "https://ui.example"
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in default.headers
