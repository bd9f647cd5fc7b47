"""The client's requests as they leave, through stock httpx, against scripted loopback servers.

Each call is one form POST to the action's path, on a kept-alive connection, with no more
connections open than the client allows; an encoded answer is read as the JSON it encodes; a
request that could not be written safely never leaves.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest

from fleet.config import Credentials
from fleet.errors import PermanentError
from fleet.ncp.client import NcpClient
from tests.conftest import SECRET
from tests.functional.test_transport import CREATED, answer, create, ncp, read_request, serving

pytestmark = pytest.mark.anyio


async def test_each_call_is_one_form_post_on_a_kept_alive_connection() -> None:
    """Calls in a row share one connection; each is a POST of the form to the action's path."""
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            requests.append(request)
            writer.write(answer())
            await writer.drain()

    async with serving(serve) as server, ncp(server.url) as client:
        for _ in range(3):
            assert await create(client) == "1"
    assert server.connections == 1 and len(requests) == 3
    port = server.url.rsplit(":", 1)[1]
    head = requests[0].split(b"\r\n")
    assert head[0] == b"POST /vserver/v2/createServerInstances?responseFormatType=json HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in head
    assert b"content-type: application/x-www-form-urlencoded" in [h.lower() for h in head]
    assert requests[0].endswith(b"\r\n\r\nserverName=web-1")


async def test_no_more_connections_than_allowed_and_every_call_answered() -> None:
    """Eight calls at once through two connections: two open at most, all answered."""

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await asyncio.sleep(0.02)
            writer.write(answer())
            await writer.drain()

    async with serving(slow) as server, ncp(server.url, max_connections=2) as client:
        made = await asyncio.gather(*(create(client) for _ in range(8)))
    assert made == ["1"] * 8
    assert server.most_open == 2


async def test_a_compressed_chunked_answer_is_read_as_the_json_it_encodes() -> None:
    """A chunked, gzip-encoded answer reaches the caller as its JSON, on a connection kept."""
    body = gzip.compress(CREATED)
    parts = [body[:10], body[10:]]
    script = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
        + b"0\r\n\r\n"
    )

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(script)
            await writer.drain()

    async with serving(chunked) as server, ncp(server.url) as client:
        for _ in range(2):
            assert await create(client) == "1"
    assert server.connections == 1


async def test_a_key_holding_a_line_break_is_never_sent() -> None:
    """A header value that would end its line early is refused before anything leaves."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            seen.append(request)

    async with serving(serve) as server:
        credentials = Credentials("AK\r\nX-Injected: 1", SECRET, "t")
        async with NcpClient(credentials, server.url) as client:
            with pytest.raises(PermanentError, match="request not sent"):
                await client.send_once("getRegionList", [])
    assert seen == []
