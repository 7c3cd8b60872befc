"""`HEAD` on every `GET` resource: answered as the `GET` would be, without the content (RFC 9110, 9.3.2)."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    async def head(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def without_content(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}  # type: ignore[typeddict-item]
            await send(message)

        # A copy: the server keeps seeing HEAD in its own scope, so it expects no content either.
        await app({**scope, "method": "GET"}, receive, without_content)  # type: ignore[typeddict-item]

    return head
