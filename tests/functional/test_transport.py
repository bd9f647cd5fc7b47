"""The client's HTTP/1.1 transport, against scripted servers on loopback.

Each server is a few lines of asyncio that answer as a real one might: kept alive, closed,
chunked, compressed, half an answer, none at all. What the client relies on is asserted: every
answer read whole, connections reused only when safe, the bound on connections kept, and httpx's
exception types, whose meaning (sent or not) decides whether a create may be sent again.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from fleet.answers import NOT_SENT
from fleet.client import NcpClient
from fleet.config import Credentials
from fleet.errors import RetryableError
from fleet.transport import Http11Transport, http_transport
from tests.conftest import ACCESS, SECRET

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(body: bytes = b'{"ok": true}', *, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (head and Content-Length body); b'' once the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
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


def client(transport: httpx.AsyncBaseTransport, **timeouts: float) -> httpx.AsyncClient:
    """An httpx client over ``transport`` with the given timeouts (default 5 s)."""
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, **timeouts))


async def test_requests_share_a_kept_alive_connection() -> None:
    """Requests in a row reuse one connection, and each answer is read whole."""
    async with serving(keep_alive) as server:
        transport = Http11Transport()
        async with client(transport) as http:
            for _ in range(3):
                response = await http.post(server.url + "/x", content=b"a=1")
                assert response.json() == {"ok": True}
        assert server.connections == 1 and transport.opened == 1


async def test_no_more_connections_than_allowed_and_every_request_answered() -> None:
    """Eight requests at once through two connections: two open at most, all answered."""

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await asyncio.sleep(0.02)
            writer.write(answer())
            await writer.drain()

    async with serving(slow) as server:
        async with client(Http11Transport(max_connections=2)) as http:
            answers = await asyncio.gather(*(http.post(server.url, content=b"x") for _ in range(8)))
        assert [r.status_code for r in answers] == [200] * 8
        assert server.most_open == 2


async def test_waiting_too_long_for_a_connection_is_a_pool_timeout_nothing_sent() -> None:
    """With the one connection busy, a request that cannot get it in time was never sent."""
    release = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await release.wait()
            writer.write(answer())
            await writer.drain()

    async with serving(held) as server:
        async with client(Http11Transport(max_connections=1), pool=0.05) as http:
            first = asyncio.create_task(http.post(server.url, content=b"x"))
            await asyncio.sleep(0.02)
            with pytest.raises(httpx.PoolTimeout) as caught:
                await http.post(server.url, content=b"y")
            assert isinstance(caught.value, NOT_SENT)
            release.set()
            assert (await first).status_code == 200
        assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    """A server that closes after each answer: the next request opens a new one, no error."""

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            writer.write(answer())
            await writer.drain()
        # closing without saying so: the client sees it only when it next looks

    async with serving(once) as server:
        async with client(Http11Transport()) as http:
            for _ in range(3):
                assert (await http.post(server.url, content=b"x")).status_code == 200
                await asyncio.sleep(0.02)  # the close reaches the client
        assert server.connections == 3


async def test_connection_close_is_honoured() -> None:
    """An answer saying Connection: close is read whole; its connection is not kept."""

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            writer.write(answer(extra="Connection: close\r\n"))
            await writer.drain()

    async with serving(closing) as server:
        transport = Http11Transport()
        async with client(transport) as http:
            for _ in range(2):
                assert (await http.post(server.url, content=b"x")).json() == {"ok": True}
        assert transport.opened == 2


async def test_an_idle_connection_past_its_expiry_is_replaced() -> None:
    """Kept alive longer than the expiry, a connection is closed rather than raced."""
    now = [0.0]
    async with serving(keep_alive) as server:
        transport = Http11Transport(keepalive_expiry=5.0, clock=lambda: now[0])
        async with client(transport) as http:
            await http.post(server.url, content=b"x")
            now[0] = 4.9
            await http.post(server.url, content=b"x")
            assert transport.opened == 1
            now[0] = 10.0
            await http.post(server.url, content=b"x")
        assert transport.opened == 2


async def test_chunked_and_compressed_answers_are_read_whole() -> None:
    """A chunked, gzip-encoded answer reaches the caller as the JSON it encodes."""
    body = gzip.compress(b'{"serverInstanceList": [1, 2, 3]}')

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            parts = [body[:10], body[10:]]
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            writer.write(head + chunks)
            await writer.drain()

    async with serving(chunked) as server:
        transport = Http11Transport()
        async with client(transport) as http:
            for _ in range(2):
                response = await http.post(server.url, content=b"x")
                assert response.json() == {"serverInstanceList": [1, 2, 3]}
        assert transport.opened == 1  # a chunked answer ends cleanly: the connection is kept


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (b"", httpx.RemoteProtocolError),  # read the request, closed without a word
        (answer()[:-4], httpx.RemoteProtocolError),  # half the body, then closed
        (b"garbage\r\n\r\n", httpx.RemoteProtocolError),  # not HTTP
    ],
)
async def test_an_answer_cut_short_is_an_error_after_sending(
    script: bytes, error: type[httpx.HTTPError]
) -> None:
    """Once the request left, a missing or broken answer is an error the client calls ambiguous."""

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):
            writer.write(script)
            await writer.drain()

    async with serving(cut) as server, client(Http11Transport()) as http:
        with pytest.raises(error) as caught:
            await http.post(server.url, content=b"x")
    assert not isinstance(caught.value, NOT_SENT)


async def test_a_slow_answer_is_a_read_timeout_and_its_connection_is_dropped() -> None:
    """No answer in time: a read timeout (ambiguous); the connection is never reused."""
    delays = [0.5, 0.0]

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await asyncio.sleep(delays.pop(0))
            writer.write(answer())
            await writer.drain()

    async with serving(late) as server:
        transport = Http11Transport()
        async with client(transport, read=0.05) as http:
            with pytest.raises(httpx.ReadTimeout) as caught:
                await http.post(server.url, content=b"x")
            assert not isinstance(caught.value, NOT_SENT)
            assert (await http.post(server.url, content=b"x")).status_code == 200
        assert transport.opened == 2  # the late answer never reaches the next request


async def test_nobody_listening_is_a_connect_error_nothing_sent() -> None:
    """A refused connection is httpx's ConnectError, which the client may send again."""
    listener = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with client(Http11Transport()) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.post(f"http://127.0.0.1:{port}/", content=b"x")
    assert isinstance(caught.value, NOT_SENT)


async def test_a_cancelled_request_gives_its_connection_slot_back() -> None:
    """Cancelling a request mid-answer frees its slot; its half-used connection is dropped."""
    release = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await release.wait()
            writer.write(answer())
            await writer.drain()

    async with serving(held) as server:
        transport = Http11Transport(max_connections=1)
        async with client(transport, pool=1.0) as http:
            pending = asyncio.create_task(http.post(server.url, content=b"x"))
            await asyncio.sleep(0.02)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            release.set()
            assert (await http.post(server.url, content=b"x")).status_code == 200
        assert transport.opened == 2


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client's."""
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
    return server, ssl.create_default_context(cafile=str(cert_file))


async def test_tls_is_verified_against_the_trusted_authorities(tmp_path: Path) -> None:
    """Over https the certificate is checked: trusted, the call goes; unknown, it fails unsent."""
    server_tls, trusting = self_signed(tmp_path)
    async with serving(keep_alive, tls=server_tls) as server:
        async with client(Http11Transport(ssl_context=trusting)) as http:
            assert (await http.post(server.url, content=b"x")).status_code == 200
        async with client(Http11Transport(ssl_context=ssl.create_default_context())) as http:
            with pytest.raises(httpx.ConnectError) as caught:
                await http.post(server.url, content=b"x")
        assert isinstance(caught.value, NOT_SENT)


async def test_a_proxy_named_by_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY reaches the real NCP through the proxy; what it refuses was never sent."""
    asked: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serving(proxy) as server:
        monkeypatch.setenv("HTTPS_PROXY", server.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        credentials = Credentials(ACCESS, SECRET, "t")
        async with NcpClient(credentials, "https://ncloud.apigw.ntruss.com") as ncp:
            with pytest.raises(RetryableError, match="ProxyError"):
                await ncp.send_once("getRegionList", [])
    assert asked and asked[0].startswith(b"CONNECT ncloud.apigw.ntruss.com:443 ")


@pytest.mark.parametrize(
    ("env", "url", "proxied"),
    [
        ({"HTTPS_PROXY": "http://p:3128"}, "https://ncloud.apigw.ntruss.com", True),
        ({"ALL_PROXY": "http://p:3128"}, "https://ncloud.apigw.ntruss.com", True),
        ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "ntruss.com"}, "https://x.ntruss.com", False),
        ({"HTTP_PROXY": "http://p:3128"}, "https://ncloud.apigw.ntruss.com", False),
        ({}, "https://ncloud.apigw.ntruss.com", False),
    ],
)
def test_the_transport_is_ours_unless_a_proxy_applies(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, proxied: bool
) -> None:
    """Where the environment proxies the endpoint, httpx's transports carry it (None here)."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    transport = http_transport(url, httpx.Limits(max_connections=4), trust_env=True)
    assert (transport is None) is proxied
