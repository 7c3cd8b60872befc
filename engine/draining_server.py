"""uvicorn's server, with a drain before its own shutdown.

uvicorn, on SIGTERM, stops accepting, closes each WebSocket with 1012 (service restart) at once, waits for
the requests in progress (up to `timeout_graceful_shutdown`) and runs the lifespan's shutdown. Here the
WebSockets are closed by the handlers themselves first, with 1001 (going away) once the message being
sent is out, while `/health` answers 503 `draining` on the connections still open; then uvicorn's shutdown
runs as it does, its WebSockets gone already."""

from __future__ import annotations

import logging
import socket

import uvicorn

from api.draining import Draining

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, draining: Draining | None, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.draining = draining

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.draining is not None:
            for server in self.servers:
                server.close()  # no new connection; uvicorn's shutdown closes them again, harmlessly
            for listener in sockets or []:
                listener.close()
            self.draining.begin()
            grace_s = self.config.timeout_graceful_shutdown or 0.0
            still_open = await self.draining.sockets_closed(grace_s)
            if still_open:
                log.warning("%d WebSockets did not close within %.0f s", still_open, grace_s)
        await super().shutdown(sockets)
