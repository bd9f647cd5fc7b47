"""The client's HTTP/1.1 transport: h11 over asyncio streams, under httpx's client.

httpx's default transport (httpcore's pool on anyio) spent about 0.85 ms of CPU per request on
these machines, most of a create's cost; the same requests through asyncio streams and h11 took
0.1 ms (bench/bench_throughput.py, CPU per create). A create is one small form POST answered by
one small JSON body, so this transport does only that well: HTTP/1.1, kept-alive connections per
origin, a bound on connections, httpx's four timeouts and its exception types, TLS. Requests and
responses stay httpx's objects; ``Poster`` hands them straight to this transport or, where the
environment names a proxy for the endpoint, to httpx's own client and transports, which go
through it.

httpx's exception types carry the meaning the client relies on (``fleet.answers.NOT_SENT``): a
connect error or a pool timeout means no byte left; anything after writing began may have
reached NCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import urllib.request
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

import h11
import httpx

__all__ = ["Http11Transport", "Poster", "http_transport"]

READ_SIZE = 64 * 1024
# httpx's own default: a server's keep-alive timeout is usually 5 s or more (uvicorn's is 5 s),
# and a connection idle that long is not worth the race with its close.
KEEPALIVE_EXPIRY = 5.0

Origin = tuple[str, str, int]
T = TypeVar("T")


@dataclass(eq=False, slots=True)
class _Connection:
    """One kept-alive connection: its streams, its h11 state, when it was last used."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    def reusable(self, now: float, expiry: float) -> bool:
        """Whether it can carry another request: not closed by the server, not idle too long."""
        # The stream reads eagerly, so a server's close shows here without a system call.
        return (
            not self.reader.at_eof()
            and self.reader.exception() is None
            and not self.writer.is_closing()
            and now - self.idle_since < expiry
        )

    def close(self) -> None:
        """Close it; an error while closing changes nothing for the caller."""
        with contextlib.suppress(Exception):
            self.writer.close()


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with kept-alive connections, at most ``max_connections`` open at once."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: defaultdict[Origin, list[_Connection]] = defaultdict(list)
        self._ssl = ssl_context
        self._expiry = keepalive_expiry
        self._clock = clock
        self._closed = False
        self.opened = 0  # connections opened so far, for tests and figures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request and read its whole answer."""
        timeout = request.extensions.get("timeout", {})
        await _within(self._slots.acquire(), timeout.get("pool"), httpx.PoolTimeout, request)
        try:
            conn = await self._checkout(request, timeout.get("connect"))
            try:
                response = await _exchange(conn, request, timeout)
            except BaseException:
                conn.close()  # half a conversation: never reuse it (cancellation included)
                raise
            self._checkin(_origin(request.url), conn)
            return response
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Close every idle connection."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _checkout(self, request: httpx.Request, connect: float | None) -> _Connection:
        """Return the most recently used live connection to the origin, or a new one."""
        origin = _origin(request.url)
        idle, now = self._idle[origin], self._clock()
        while idle:
            conn = idle.pop()  # the most recent: the least likely to be closed by now
            if conn.reusable(now, self._expiry):
                return conn
            conn.close()
        return await self._connect(origin, request, connect)

    async def _connect(
        self, origin: Origin, request: httpx.Request, connect: float | None
    ) -> _Connection:
        scheme, host, port = origin
        tls = self._ssl_context() if scheme == "https" else None
        with _mapped(request, connect_phase=True):
            reader, writer = await _within(
                asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_SIZE
                ),
                connect,
                httpx.ConnectTimeout,
                request,
            )
        self.opened += 1
        return _Connection(reader, writer)

    def _checkin(self, origin: Origin, conn: _Connection) -> None:
        """Keep a connection whose exchange ended cleanly, if both sides allow it."""
        state = conn.h11
        if self._closed or state.our_state is not h11.DONE or state.their_state is not h11.DONE:
            conn.close()  # Connection: close, or an answer h11 could not frame for reuse
            return
        state.start_next_cycle()
        conn.idle_since = self._clock()
        self._idle[origin].append(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl


def _origin(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host, port)


async def _exchange(
    conn: _Connection, request: httpx.Request, timeout: dict[str, float | None]
) -> httpx.Response:
    """Write the request, read the answer: one HTTP/1.1 exchange on a connection."""
    body = await request.aread()
    headers = list(request.headers.raw)
    if b"content-length" not in {k.lower() for k, _ in headers}:
        headers.append((b"Content-Length", str(len(body)).encode()))
    with _mapped(request):
        data = conn.h11.send(
            h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
        )
        data = (data or b"") + (conn.h11.send(h11.Data(data=body)) or b"") if body else data
        data = (data or b"") + (conn.h11.send(h11.EndOfMessage()) or b"")
        conn.writer.write(data)
        await _within(conn.writer.drain(), timeout.get("write"), httpx.WriteTimeout, request)
        head, content = await _read_answer(conn, request, timeout.get("read"))
    return httpx.Response(
        head.status_code,
        headers=list(head.headers),
        content=content,
        request=request,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
    )


async def _read_answer(
    conn: _Connection, request: httpx.Request, read: float | None
) -> tuple[h11.Response, bytes]:
    """Read events until the answer ends; informational (1xx) answers are skipped."""
    head: h11.Response | None = None
    chunks: list[bytes] = []
    while True:
        event = conn.h11.next_event()
        if event is h11.NEED_DATA:
            data = await _within(conn.reader.read(READ_SIZE), read, httpx.ReadTimeout, request)
            conn.h11.receive_data(data)  # b"" is the server's close; h11 says if it was early
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None  # h11 sends a Response before any EndOfMessage
            return head, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed):
            raise httpx.RemoteProtocolError(
                "Server disconnected without an answer", request=request
            )


async def _within(
    awaitable: Awaitable[T],
    seconds: float | None,
    error: type[httpx.TimeoutException],
    request: httpx.Request,
) -> T:
    """Await within ``seconds`` (None: no limit), else raise httpx's timeout of that phase."""
    if seconds is None:
        return await awaitable
    try:
        async with asyncio.timeout(seconds):  # no task of its own, unlike wait_for()
            return await awaitable
    except TimeoutError:
        raise error(f"timed out after {seconds:g} s", request=request) from None


@contextlib.contextmanager
def _mapped(request: httpx.Request, *, connect_phase: bool = False) -> Iterator[None]:
    """Raise httpx's exception types for what the sockets and h11 raise."""
    try:
        yield
    except httpx.HTTPError:
        raise
    except (h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
        _raise(httpx.RemoteProtocolError, exc, request)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        kind = httpx.ConnectError if connect_phase else _io_error(exc)
        _raise(kind, exc, request)


def _io_error(exc: BaseException) -> type[httpx.TransportError]:
    # A reset or a broken pipe after the request began is as ambiguous as a read error.
    return httpx.ReadError if not isinstance(exc, BrokenPipeError) else httpx.WriteError


def _raise(
    kind: type[httpx.TransportError], exc: BaseException, request: httpx.Request
) -> NoReturn:
    raise kind(
        f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, request=request
    ) from exc


def http_transport(
    url: str, limits: httpx.Limits, *, trust_env: bool
) -> httpx.AsyncBaseTransport | None:
    """Return the transport for calls to ``url``; None where the environment names a proxy.

    httpx ignores the environment's proxies once it is given a transport, so where one applies
    to the endpoint it is left to httpx's own transports, which go through it.
    """
    if trust_env and _proxied(httpx.URL(url)):
        return None
    return Http11Transport(
        max_connections=limits.max_connections or 100,
        ssl_context=httpx.create_ssl_context(trust_env=trust_env),
        keepalive_expiry=limits.keepalive_expiry or KEEPALIVE_EXPIRY,
    )


def _proxied(url: httpx.URL) -> bool:
    """Whether the environment (HTTPS_PROXY, ALL_PROXY ... less NO_PROXY) proxies ``url``."""
    proxies = urllib.request.getproxies()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.host)


class Poster:
    """POSTs a form and reads the whole answer: straight to a transport, else via httpx's client.

    Straight to the transport: httpx's client layers (cookies, redirects, auth hooks, URL
    merging) cost a third of a request's CPU, and NCP's API uses none of them. Where the
    environment proxies the endpoint, httpx's client sends, through its proxy.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
    ) -> None:
        # Proxies and CA bundles from the environment apply to the real NCP; the local
        # simulator on loopback is always reached directly.
        trust_env = endpoint.startswith("https://")
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        timeouts = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._timeouts = timeouts.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        self._transport = transport or http_transport(endpoint, limits, trust_env=trust_env)
        self._http = (
            None
            if self._transport is not None
            else httpx.AsyncClient(timeout=timeouts, limits=limits, trust_env=True)
        )

    async def post(self, url: str, body: str, headers: dict[str, str]) -> httpx.Response:
        """Send one POST and read its whole answer."""
        if self._http is not None:
            return await self._http.post(url, content=body, headers=headers)
        assert self._transport is not None
        parsed = self._urls.get(url)
        if parsed is None:  # parsed once per action: httpx checks every character of a URL
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request(
            "POST",
            parsed,
            content=body.encode(),
            headers=headers,
            extensions={"timeout": self._timeouts},
        )
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        """Close the connections."""
        if self._http is not None:
            await self._http.aclose()
        if self._transport is not None:
            await self._transport.aclose()
