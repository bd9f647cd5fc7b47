"""HTTP/1.1 on the wire (fleet.http11) as the client sends it, against scripted loopback servers.

The answers a server may frame (length, chunks, its close, an informational answer first, an
encoding) are read whole; a broken one is an error that says the request may have arrived; a
request that could not be written safely never leaves.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib

import httpx
import pytest

from fleet.answers import NOT_SENT
from fleet.client import NcpClient
from fleet.config import Credentials
from fleet.errors import PermanentError
from fleet.transport import Poster
from tests.conftest import SECRET
from tests.functional.test_transport import answer, read_request, serving

pytestmark = pytest.mark.anyio

BODY = b'{"serverInstanceList": [1, 2, 3]}'
RAW_DEFLATE = zlib.compressobj(wbits=-zlib.MAX_WBITS)
DEFLATED = RAW_DEFLATE.compress(BODY) + RAW_DEFLATE.flush()
GZIPPED = gzip.compress(BODY)

# How a server may frame one answer, and whether the connection may carry the next request.
FRAMINGS = [
    ("length", answer(BODY), True),
    (
        "chunked, with an extension and a trailer",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"a;x=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n"
        % (BODY[:10], len(BODY) - 10, BODY[10:]),
        True,
    ),
    ("100 Continue first", b"HTTP/1.1 100 Continue\r\n\r\n" + answer(BODY), True),
    ("HTTP/1.0, ended by the close", b"HTTP/1.0 200 OK\r\n\r\n" + BODY, False),
    ("Connection: close", answer(BODY, extra="Connection: close\r\n"), False),
    ("gzip", answer(GZIPPED, extra="Content-Encoding: gzip\r\n"), True),
    ("raw deflate", answer(DEFLATED, extra="Content-Encoding: deflate\r\n"), True),
]


@pytest.mark.parametrize(
    ("script", "reused"), [f[1:] for f in FRAMINGS], ids=[f[0] for f in FRAMINGS]
)
async def test_answers_framed_every_way_are_read_whole(script: bytes, reused: bool) -> None:
    """Each framing reaches the caller as the JSON it carries; kept alive only where allowed."""
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            requests.append(request)
            writer.write(script)
            await writer.drain()
            if not reused:
                return

    async with serving(serve) as server:
        poster = Poster(server.url)
        for _ in range(2):
            got = await poster.post(f"{server.url}/vserver/v2/x?responseFormatType=json", "a=1", {})
            assert (got.status_code, got.content) == (200, BODY)
        await poster.aclose()
    assert server.connections == (1 if reused else 2)
    port = server.url.rsplit(":", 1)[1]
    head = requests[0].split(b"\r\n")
    assert head[0] == b"POST /vserver/v2/x?responseFormatType=json HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in head and b"Content-Length: 3" in head
    assert requests[0].endswith(b"\r\n\r\na=1")


BROKEN = [
    ("not HTTP/1.x", b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("a header line without a colon", b"HTTP/1.1 200 OK\r\nBroken\r\nContent-Length: 0\r\n\r\n"),
    ("a folded header line", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  more\r\nContent-Length: 0\r\n\r\n"),
    ("a length that is not a number", b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"),
    ("an unknown transfer-encoding", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    (
        "a chunk size that is not hex",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ),
    (
        "a chunk longer than it said",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
    ),
    ("switching protocols", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
]


@pytest.mark.parametrize("script", [b[1] for b in BROKEN], ids=[b[0] for b in BROKEN])
async def test_a_broken_answer_is_an_error_after_sending(script: bytes) -> None:
    """An answer that cannot be framed is never guessed at: the request may have arrived."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            writer.write(script)
            await writer.drain()

    async with serving(serve) as server:
        poster = Poster(server.url)
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await poster.post(server.url + "/x", "a=1", {})
        await poster.aclose()
    assert not isinstance(caught.value, NOT_SENT)


async def test_an_encoding_that_cannot_be_undone_is_an_unreadable_answer() -> None:
    """A body that says gzip and is not: a decoding error, never the raw bytes taken for JSON."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(answer(BODY, extra="Content-Encoding: gzip\r\n"))
            await writer.drain()

    async with serving(serve) as server:
        poster = Poster(server.url)
        with pytest.raises(httpx.DecodingError):
            await poster.post(server.url + "/x", "a=1", {})
        await poster.aclose()


async def test_a_key_holding_a_line_break_is_never_sent() -> None:
    """A header value that would end its line early is refused before anything leaves."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            seen.append(request)

    async with serving(serve) as server:
        credentials = Credentials("AK\r\nX-Injected: 1", SECRET, "t")
        async with NcpClient(credentials, server.url) as ncp:
            with pytest.raises(PermanentError, match="request not sent"):
                await ncp.send_once("getRegionList", [])
    assert seen == []
