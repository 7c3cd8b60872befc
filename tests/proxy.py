"""A TCP relay that tests use to make a server vanish and come back."""

from __future__ import annotations

import asyncio


class DroppableProxy:
    """A TCP relay in front of a server (the engine, PostgreSQL) that can drop every connection at once,
    like a network or a server that goes away, and refuse new ones until it is restored."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.up = True
        self.connections: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> DroppableProxy:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()
        self.drop()
        await self.server.wait_closed()

    def drop(self) -> None:
        """Reset every open connection (both sides) and refuse new ones."""
        self.up = False
        for writer in list(self.connections):
            writer.transport.abort()

    def restore(self) -> None:
        self.up = True

    async def _relay(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if not self.up:
            client.transport.abort()
            return
        try:
            server_reader, server = await asyncio.open_connection(*self.upstream)
        except OSError:
            client.transport.abort()
            return
        self.connections |= {client, server}
        try:
            await asyncio.gather(self._pipe(client_reader, server), self._pipe(server_reader, client))
        finally:
            self.connections -= {client, server}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
