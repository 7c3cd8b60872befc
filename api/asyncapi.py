"""The two WebSockets as an AsyncAPI 3.0 document, served at `/schema/asyncapi.json`.

The message schemas come from the event types themselves (domain/events.py, through msgspec, written as the
wire writes them: decimals as numbers, `...Raw` amounts as strings of digits): a message is
the envelope every event carries (api/messages.py) plus the event's own fields, so a new event or field
shows here without an edit. A field added to the messages of one stream goes into its envelope below.
"""

from __future__ import annotations

from typing import Any

import msgspec

from api.wire import wire_schema
from domain.events import EVENT_TYPES
from domain.status import OrderStatus
from eventstore.base import MAX_POSITION, MAX_VERSION, RESUME_TOKEN_PATTERN
from projections.feed import MAX_BACKLOG

SCHEMAS = "#/components/schemas/{name}"

ORDER_ENVELOPE = {
    "type": "object",
    "description": "What every message carries, whatever its event.",
    "properties": {
        "orderId": {"type": "string", "format": "uuid"},
        "version": {"type": "integer", "minimum": 1, "description": "1, 2, 3, ... per order, no gap"},
        "type": {"type": "string", "enum": list(EVENT_TYPES), "description": "the event's name"},
        "status": {"type": "string", "enum": [str(s) for s in OrderStatus], "description": "after the event"},
        "timestamp": {"type": "string", "format": "date-time", "description": "when it was recorded, UTC"},
        "pair": {
            "type": "object",
            "description": "On `OrderSubmitted` only: how to read the order's prices. Events give them as "
            "tokenOut per tokenIn; in the pair's one orientation they read as `quote` per `base` (`unit`), "
            "inverted when tokenIn is the quote.",
            "properties": {
                "base": {"type": "string"},
                "quote": {"type": "string"},
                "unit": {"type": "string", "examples": ["USDC per SOL"]},
            },
            "required": ["base", "quote", "unit"],
        },
    },
    "required": ["orderId", "version", "type", "status", "timestamp"],
}
LOG_ENVELOPE = {
    "type": "object",
    "description": "What the all-orders stream adds to each order message.",
    "properties": {
        "resumeToken": {
            "type": "string",
            "pattern": RESUME_TOKEN_PATTERN,
            "description": "Strictly greater, as a string, than every token sent before it on the stream: "
            "resume with `afterToken` set to the last one received, and drop a message whose token is not "
            "greater than the last one seen.",
        },
        "position": {
            "type": "integer",
            "minimum": 1,
            "description": "The event's place in the log, unique; `afterPosition` resumes after it. In "
            "PostgreSQL positions are handed out before commit, so along the stream they do not always "
            "increase: compare resume tokens, not positions.",
        },
    },
    "required": ["resumeToken", "position"],
}

ORDER_CHANNEL = f"""One order's events: every event so far, then each new one as it is appended, in version
order, no gap, no duplicate. Open it with a GET upgrade on the path the POST answered as `wsUrl`. Closes:
`1000` after the terminal event (`OrderConfirmed` or `OrderFailed`), `4404` for an unknown order, `4400` for
a malformed `orderId` or `afterVersion` (or one given twice), `1011` while the database is unavailable,
`1013` when the client fell behind: more than {MAX_BACKLOG} events came for it since its socket last took
one (it is not reading); the close comes right after the messages already on their way, with the reason
`fell behind; reconnect with afterVersion=N` (N: the last version surely sent whole; rarely one more
arrives), `1001` when the server shuts down (another behind the same URL takes the reconnect). After `1001`,
`1011` or `1013`, reconnect with `afterVersion` set to the last version received: the rest follows with no
gap and no duplicate. Frames sent by the client are ignored."""
LOG_CHANNEL = """Every event of every order in log order: the log after `afterToken` (or `afterPosition`;
from its start without either), then each new event. Closes: `4400` for a malformed `afterToken` or
`afterPosition`, both given, or one twice, `4404` when no event has that position, `1011` while the database
is unavailable and `1001` when the server shuts down (reconnect and resume with the last `resumeToken`).
Frames sent by the client are ignored."""


def _query(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    query = {"type": "object", "properties": properties, "required": required}
    return {"ws": {"method": "GET", "query": query}}


def asyncapi_document(*, version: str) -> dict[str, Any]:
    _, event_schemas = msgspec.json.schema_components(list(EVENT_TYPES.values()), ref_template=SCHEMAS)
    order_message = {
        "oneOf": [
            {"allOf": [{"$ref": SCHEMAS.format(name="OrderEnvelope")}, {"$ref": SCHEMAS.format(name=name)}]}
            for name in EVENT_TYPES
        ]
    }
    log_message = {"allOf": [{"$ref": SCHEMAS.format(name="LogEnvelope")}, order_message]}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order execution engine: WebSockets",
            "version": version,
            "description": "One JSON text frame per event. The HTTP API: /schema/openapi.json.",
        },
        "channels": {
            "order": {
                "address": "/api/orders/execute",
                "description": ORDER_CHANNEL,
                "messages": {"orderEvent": {"$ref": "#/components/messages/OrderEvent"}},
                "bindings": _query(
                    {
                        "orderId": {"type": "string", "format": "uuid"},
                        "afterVersion": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_VERSION,
                            "default": 0,
                            "description": "resume after this version: only later events are sent",
                        },
                    },
                    ["orderId"],
                ),
            },
            "log": {
                "address": "/api/orders/stream",
                "description": LOG_CHANNEL,
                "messages": {"logEvent": {"$ref": "#/components/messages/LogEvent"}},
                "bindings": _query(
                    {
                        "afterToken": {
                            "type": "string",
                            "pattern": RESUME_TOKEN_PATTERN,
                            "description": "resume after the message that carried this `resumeToken`",
                        },
                        "afterPosition": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_POSITION,
                            "default": 0,
                        },
                    },
                    [],
                ),
            },
        },
        "operations": {
            "sendOrderEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/order"},
                "messages": [{"$ref": "#/channels/order/messages/orderEvent"}],
            },
            "sendLogEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/log"},
                "messages": [{"$ref": "#/channels/log/messages/logEvent"}],
            },
        },
        "components": {
            "messages": {
                "OrderEvent": {"contentType": "application/json", "payload": order_message},
                "LogEvent": {"contentType": "application/json", "payload": log_message},
            },
            "schemas": {
                "OrderEnvelope": ORDER_ENVELOPE,
                "LogEnvelope": LOG_ENVELOPE,
                **wire_schema(event_schemas),
            },
        },
    }
