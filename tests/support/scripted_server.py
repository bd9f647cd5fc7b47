"""Scripted HTTP servers on loopback, a few lines of asyncio each, and a client to send creates.

Where a test needs a server that fails as a real one might (the simulator answers as NCP does).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fleet.config import Credentials
from fleet.ncp.client import NcpClient
from tests.support.keys import ACCESS, SECRET

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

CREATED = (
    b'{"createServerInstancesResponse": {"returnCode": "0", "requestId": "r",'
    b' "serverInstanceList": [{"serverInstanceNo": "1", "serverName": "web-1"}]}}'
)


def answer(body: bytes = CREATED, *, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (head and Content-Length body); b'' once the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


class Server:
    """A loopback server running ``handler`` per connection; counts the connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer)
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """Run a scripted server on a free loopback port."""
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    async with listener:
        yield server
        listener.close()


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on the connection until the client closes it."""
    while await read_request(reader):
        writer.write(answer())
        await writer.drain()


def ncp(url: str, *, timeout: float = 30.0, max_connections: int = 100) -> NcpClient:
    """A client of ``url`` as a rollout makes one, with the test keys."""
    credentials = Credentials(ACCESS, SECRET, "t")
    return NcpClient(credentials, url, timeout=timeout, max_connections=max_connections)


async def create(client: NcpClient) -> str:
    """Send one create, with no retry; return the instance number of the server it made."""
    created = await client.send_once("createServerInstances", [("serverName", "web-1")])
    return str(created["serverInstanceList"][0]["serverInstanceNo"])
