"""One line when a WebSocket opens and one when it closes, under the engine's own logger.

ASGI middleware around the app: it only looks at the accept, close and disconnect messages going past, so
the stream handlers stay free of it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("engine.websocket")

Scope = dict[str, Any]
Message = dict[str, Any]


class WebSocketLog:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        client = scope.get("client")
        fields = {
            "path": scope["path"],
            "client": f"{client[0]}:{client[1]}" if client else None,
            **({"order_id": query["orderId"][0]} if "orderId" in query else {}),
        }
        opened = closed = False

        async def logged_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.disconnect" and not closed:
                closed = True
                log.info("websocket closed by the client", extra={**fields, "code": message.get("code")})
            return message

        def logged_send(message: Message) -> Awaitable[None]:
            # A plain function handing back the server's own awaitable: every message of every socket passes
            # here, and a coroutine of ours around each would be one more frame made and awaited per message.
            nonlocal opened, closed
            kind = message["type"]
            if kind == "websocket.send":
                pass  # nearly every message: nothing to note
            elif kind == "websocket.accept":
                opened = True
                log.info("websocket opened", extra=fields)
            elif kind == "websocket.close" and not closed:
                closed = True
                log.info("websocket closed", extra={**fields, "code": message.get("code", 1000)})
            return send(message)

        try:
            await self.app(scope, logged_receive, logged_send)
        finally:
            if opened and not closed:  # gone without a close frame either way (a dropped connection)
                log.info("websocket closed: connection lost", extra=fields)
