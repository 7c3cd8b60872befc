"""The WebSockets are documented: /schema/asyncapi.json names both, with their query parameters, and every
message they really send is valid against its schema and has no field the schema does not declare."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from domain.events import EVENT_TYPES
from tests.harness import engine_settings, running_engine
from tests.integration.test_log_stream import read_log_stream


def declared(document: dict[str, Any], *names: str) -> set[str]:
    return {key for name in names for key in document["components"]["schemas"][name]["properties"]}


async def test_every_websocket_message_matches_the_asyncapi_document(backend):
    async with running_engine(engine_settings(backend)) as engine:
        document = (await engine.http.get("/schema/asyncapi.json")).json()
        openapi = (await engine.http.get("/schema/openapi.json")).json()
        order_id = await engine.submit()
        order_messages, _ = await engine.stream(order_id)
        log_messages = await read_log_stream(engine.ws_base, count=len(order_messages))

    channels = {channel["address"]: channel for channel in document["channels"].values()}
    assert document["asyncapi"].startswith("3.")
    assert set(channels) == {"/api/orders/execute", "/api/orders/stream"}
    assert set(channels["/api/orders/execute"]["bindings"]["ws"]["query"]["properties"]) == {
        "orderId",
        "afterVersion",
    }
    assert set(channels["/api/orders/stream"]["bindings"]["ws"]["query"]["properties"]) == {
        "afterToken",
        "afterPosition",
    }
    assert "/schema/asyncapi.json" in openapi["info"]["description"]

    for message_name, messages, envelopes in (
        ("OrderEvent", order_messages, ("OrderEnvelope",)),
        ("LogEvent", log_messages, ("OrderEnvelope", "LogEnvelope")),
    ):
        # The document is the root, so that its `#/components/...` references resolve.
        validator = jsonschema_rs.Draft202012Validator(
            {**document, "$ref": f"#/components/messages/{message_name}/payload"}
        )
        for message in messages:
            errors = [error.message for error in validator.iter_errors(message)]
            assert not errors, (message, errors)
            assert set(message) <= declared(document, *envelopes, message["type"]), message
    assert {m["type"] for m in order_messages} <= set(EVENT_TYPES)
    assert set(EVENT_TYPES) <= set(document["components"]["schemas"])
