"""One line when a WebSocket opens and one when it closes, under the engine's own logger.

ASGI middleware around the app: it only looks at the accept, close and disconnect messages going past, so
the stream handlers stay free of it."""

from __future__ import annotations

import logging
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

        async def logged_send(message: Message) -> None:
            nonlocal opened, closed
            if message["type"] == "websocket.accept":
                opened = True
                log.info("websocket opened", extra=fields)
            elif message["type"] == "websocket.close" and not closed:
                closed = True
                log.info("websocket closed", extra={**fields, "code": message.get("code", 1000)})
            await send(message)

        try:
            await self.app(scope, logged_receive, logged_send)
        finally:
            if opened and not closed:  # gone without a close frame either way (a dropped connection)
                log.info("websocket closed: connection lost", extra=fields)
