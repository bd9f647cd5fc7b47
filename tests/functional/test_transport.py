"""What a failure on the wire means, through stock httpx, against scripted servers on loopback.

Each server is a few lines of asyncio that fails as a real one might: nobody listening, a
certificate nobody trusts, a connection held busy, a reset once the request is in, a close right
after answering, no answer at all. ``fleet.ncp.answers`` reads httpx's exception into ours: a
failure before any byte left is "not sent" (``RetryableError``, a create may go again), any later
one "may have been sent" (``AmbiguousError``, the server is looked up before anything is
created again).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from fleet.config import Credentials
from fleet.errors import AmbiguousError, RetryableError
from fleet.ncp.answers import translate_transport_errors
from fleet.ncp.client import NcpClient
from tests.conftest import ACCESS, SECRET

pytestmark = pytest.mark.anyio

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


async def test_nobody_listening_is_not_sent() -> None:
    """A refused connection: nothing reached the server, so a create may go again."""
    listener = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with ncp(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(RetryableError, match="ConnectError"):
            await create(client)


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and that cert's file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, cert_file


def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the environment's proxies: the test's server is reached directly."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_tls_is_checked_against_the_environments_authorities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over https an unknown certificate fails unsent; one SSL_CERT_FILE trusts is used."""
    server_tls, cert_file = self_signed(tmp_path)
    no_proxy(monkeypatch)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with serving(keep_alive, tls=server_tls) as server:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        async with ncp(server.url) as client:
            with pytest.raises(RetryableError, match="ConnectError"):
                await create(client)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        async with ncp(server.url) as client:
            assert await create(client) == "1"


async def test_waiting_too_long_for_a_connection_is_not_sent() -> None:
    """With the one connection busy, a request that cannot get it in time was never sent."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            arrived.set()
            await release.wait()
            writer.write(answer())
            await writer.drain()

    limits = httpx.Limits(max_connections=1)
    async with serving(held) as server:
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(5.0, pool=0.05)) as http:
            first = asyncio.create_task(http.post(server.url, content=b"x"))
            await arrived.wait()  # the one connection is busy
            with (
                pytest.raises(RetryableError, match="PoolTimeout"),
                translate_transport_errors("createServerInstances"),
            ):
                await http.post(server.url, content=b"y")
            release.set()
            assert (await first).status_code == 200
        assert server.connections == 1


async def test_a_reset_once_the_request_is_in_may_have_been_sent() -> None:
    """The server read the request, then reset the connection: the create may have been made."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # lingering 0 s: an RST, not a FIN

    async with serving(reset) as server, ncp(server.url) as client:
        with pytest.raises(AmbiguousError, match="ReadError"):
            await create(client)


async def test_a_close_right_after_the_answer_leaves_the_next_create_unharmed() -> None:
    """A server that answers then closes (no Connection: close): every next create is sent anew."""

    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            writer.write(answer())
            writer.write_eof()  # the FIN leaves with the answer, as a load balancer's may
            await reader.read()

    async with serving(answer_then_close) as server, ncp(server.url) as client:
        for _ in range(3):  # back to back: the close is in before the next request leaves
            assert await create(client) == "1"
    assert server.connections == 3


async def test_no_answer_in_time_may_have_been_sent() -> None:
    """The request went in and no answer came within the timeout: a read timeout, ambiguous."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            await reader.read()  # until the client gives up and closes

    async with serving(silent) as server, ncp(server.url, timeout=0.05) as client:
        with pytest.raises(AmbiguousError, match="ReadTimeout"):
            await create(client)


@pytest.mark.parametrize(
    "script",
    [
        b"",  # read the request, closed without a word
        answer()[:-4],  # half the body, then closed
        b"garbage\r\n\r\n",  # not HTTP
        answer(extra="Content-Length: 3\r\n"),  # two lengths that disagree: a smuggling guard
    ],
    ids=["closed", "half a body", "not HTTP", "two lengths"],
)
async def test_an_answer_cut_short_or_broken_may_have_been_sent(script: bytes) -> None:
    """Once the request left, a missing or broken answer is ambiguous, never taken for a refusal."""

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            writer.write(script)
            await writer.drain()

    async with serving(cut) as server, ncp(server.url) as client:
        with pytest.raises(AmbiguousError) as caught:
            await create(client)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


async def test_a_proxy_named_by_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY reaches the real NCP through the proxy; what it refuses was never sent."""
    asked: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serving(proxy) as server:
        no_proxy(monkeypatch)
        monkeypatch.setenv("HTTPS_PROXY", server.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with ncp("https://ncloud.apigw.ntruss.com") as client:
            with pytest.raises(RetryableError, match="ProxyError"):
                await client.send_once("getRegionList", [])
    assert asked and asked[0].startswith(b"CONNECT ncloud.apigw.ntruss.com:443 ")
