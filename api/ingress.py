"""Every request passes here once, before routing, CORS or any handler sees it.

- Header values lose their surrounding spaces and tabs (RFC 9110, 5.5: they are not part of the value), so
  `Idempotency-Key: K` and `Idempotency-Key: K ` are one key for every reader: handlers, guards, CORS.
- The path and query string must percent-decode to UTF-8 text without NUL: text the database could not
  store (PostgreSQL refuses NUL) is refused here, the same in every mode, with 400 (a WebSocket: 4400).
- A client that goes away before its body has arrived is noted, so its request is not logged as our error.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import CLIENT_LEFT, ErrorBody
from api.stream import CLOSE_BAD_REQUEST

OWS = b" \t"


def at_the_door(app: ASGIApp) -> ASGIApp:
    async def door(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        scope["headers"] = [(name, value.strip(OWS)) for name, value in scope["headers"]]
        problem = _undecodable(scope)
        if problem is not None:
            await _refuse(scope, receive, send, *problem)
            return

        async def noting_disconnect() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope[CLIENT_LEFT] = True  # type: ignore[literal-required]
            return message

        await app(scope, noting_disconnect if scope["type"] == "http" else receive, send)

    return door


def _undecodable(scope: Scope) -> tuple[str, str] | None:
    """(field, message) for the first part of the path or query that is not storable text, else None."""
    if (problem := _text_problem(scope.get("raw_path") or b"")) is not None:
        return "path", f"path: {problem}"
    for pair in scope["query_string"].split(b"&"):
        name, _, value = pair.partition(b"=")
        name_problem = _text_problem(name)
        field = "query" if name_problem else unquote_to_bytes(name.replace(b"+", b" ")).decode()
        if (problem := name_problem or _text_problem(value)) is not None:
            return field, f"{field}: {problem}"
    return None


def _text_problem(raw: bytes) -> str | None:
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        decoded.decode()
    except UnicodeDecodeError:
        return "must be valid UTF-8 once percent-decoded"
    if b"\x00" in decoded:
        return "must not contain NUL characters"
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, field: str, message: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await send({"type": "websocket.close", "code": CLOSE_BAD_REQUEST, "reason": _reason(message)})
        return
    body = msgspec.json.encode(ErrorBody("invalid_request", message, field))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _reason(message: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    return message.encode()[:123].decode(errors="ignore")
