"""The client's HTTP/1.1 transport: asyncio streams, with httpx's timeouts and exception types.

httpx's default transport (httpcore's pool on anyio) spent about 0.85 ms of CPU per request on
these machines, most of a create's cost. A create is one small form POST answered by one small
JSON body, so this transport does only that well: HTTP/1.1 (``fleet.http11``), kept-alive
connections per origin, a bound on connections, httpx's four timeouts and its exception types,
TLS. ``Poster`` hands it a request's bytes straight (``exchange``), without httpx's request and
response objects; it still serves httpx's client as a transport (``handle_async_request``).
Where the environment names a proxy for the endpoint, httpx's own client and transports send,
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
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

import httpx

from .http11 import Answer, decoded, read_answer, request_bytes

__all__ = ["Http11Transport", "Poster", "http_transport"]

READ_SIZE = 64 * 1024
# httpx's own default: a server's keep-alive timeout is usually 5 s or more (uvicorn's is 5 s),
# and a connection idle that long is not worth the race with its close.
KEEPALIVE_EXPIRY = 5.0

Origin = tuple[str, str, int]
Timeouts = Mapping[str, float | None]  # httpx's four: connect, read, write, pool
T = TypeVar("T")


@dataclass(eq=False, slots=True)
class _Connection:
    """One kept-alive connection: its streams, and when it was last used."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
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
        """Send one request and read its whole answer (httpx's transport interface)."""
        body = await request.aread()
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in request.headers.raw
            if k.lower() not in (b"host", b"content-length")
        }
        url = request.url
        data = request_bytes(
            request.method, url.raw_path.decode("ascii"), _host(url), headers, body
        )
        answer = await self.exchange(_origin(url), data, request.extensions.get("timeout", {}))
        return httpx.Response(
            answer.status_code,
            headers=list(answer.headers.items()),
            content=answer.content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def exchange(self, origin: Origin, data: bytes, timeout: Timeouts) -> Answer:
        """Write a request's bytes to a connection to ``origin`` and read its whole answer."""
        if self._slots.locked():  # a timer only where there is a wait
            await _within(self._slots.acquire(), timeout.get("pool"), httpx.PoolTimeout)
        else:
            await self._slots.acquire()
        try:
            conn = await self._checkout(origin, timeout.get("connect"))
            try:
                answer = await _exchange(conn, data, timeout)
            except BaseException:
                conn.close()  # half a conversation: never reuse it (cancellation included)
                raise
            self._checkin(origin, conn, answer.keep_alive)
            return answer
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Close every idle connection."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _checkout(self, origin: Origin, connect: float | None) -> _Connection:
        """Return the most recently used live connection to the origin, or a new one."""
        idle, now = self._idle[origin], self._clock()
        while idle:
            conn = idle.pop()  # the most recent: the least likely to be closed by now
            if conn.reusable(now, self._expiry):
                return conn
            conn.close()
        return await self._connect(origin, connect)

    async def _connect(self, origin: Origin, connect: float | None) -> _Connection:
        scheme, host, port = origin
        tls = self._ssl_context() if scheme == "https" else None
        with _mapped(connect_phase=True):
            reader, writer = await _within(
                asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_SIZE
                ),
                connect,
                httpx.ConnectTimeout,
            )
        self.opened += 1
        return _Connection(reader, writer)

    def _checkin(self, origin: Origin, conn: _Connection, keep_alive: bool) -> None:
        """Keep a connection whose exchange ended cleanly, if both sides allow it."""
        if self._closed or not keep_alive:
            conn.close()  # Connection: close, or an answer ended by the server's close
            return
        conn.idle_since = self._clock()
        self._idle[origin].append(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl


def _origin(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host, port)


def _host(url: httpx.URL) -> str:
    """Return the Host header for a URL: its host, and its port unless the default."""
    raw = url.raw_host.decode("ascii")  # an international name as its ASCII form
    host = f"[{raw}]" if ":" in raw else raw
    return host if url.port is None else f"{host}:{url.port}"


async def _exchange(conn: _Connection, data: bytes, timeout: Timeouts) -> Answer:
    """Write the request, read the answer: one HTTP/1.1 exchange on a connection.

    The read timeout bounds the whole answer (httpx bounds each read): an answer is one small body.
    """
    with _mapped():
        conn.writer.write(data)
        if conn.writer.transport.get_write_buffer_size():  # most requests leave at once
            await _within(conn.writer.drain(), timeout.get("write"), httpx.WriteTimeout)
        return await _within(read_answer(conn.reader), timeout.get("read"), httpx.ReadTimeout)


async def _within(
    awaitable: Awaitable[T], seconds: float | None, error: type[httpx.TimeoutException]
) -> T:
    """Await within ``seconds`` (None: no limit), else raise httpx's timeout of that phase."""
    if seconds is None:
        return await awaitable
    try:
        async with asyncio.timeout(seconds):  # no task of its own, unlike wait_for()
            return await awaitable
    except TimeoutError:
        raise error(f"timed out after {seconds:g} s") from None


@contextlib.contextmanager
def _mapped(*, connect_phase: bool = False) -> Iterator[None]:
    """Raise httpx's exception types for what the sockets raise."""
    try:
        yield
    except httpx.HTTPError:
        raise
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        kind = httpx.ConnectError if connect_phase else _io_error(exc)
        raise kind(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc


def _io_error(exc: BaseException) -> type[httpx.TransportError]:
    # A reset or a broken pipe after the request began is as ambiguous as a read error.
    return httpx.ReadError if not isinstance(exc, BrokenPipeError) else httpx.WriteError


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
        self._targets: dict[str, tuple[Origin, str, str]] = {}
        self._transport = transport or http_transport(endpoint, limits, trust_env=trust_env)
        self._http = (
            None
            if self._transport is not None
            else httpx.AsyncClient(timeout=timeouts, limits=limits, trust_env=True)
        )

    async def post(self, url: str, body: str, headers: dict[str, str]) -> Answer:
        """Send one POST and read its whole answer (its content-encoding undone)."""
        if isinstance(self._transport, Http11Transport):
            target = self._targets.get(url)
            if target is None:  # parsed once per action: httpx checks every character of a URL
                parsed = httpx.URL(url)
                target = self._targets[url] = (
                    _origin(parsed),
                    parsed.raw_path.decode("ascii"),
                    _host(parsed),
                )
            origin, path, host = target
            data = request_bytes("POST", path, host, headers, body.encode())
            answer = await self._transport.exchange(origin, data, self._timeouts)
            if "content-encoding" not in answer.headers:
                return answer
            return replace(answer, content=decoded(answer))
        if self._http is not None:
            response = await self._http.post(url, content=body, headers=headers)
        else:
            assert self._transport is not None
            request = httpx.Request(
                "POST",
                url,
                content=body.encode(),
                headers=headers,
                extensions={"timeout": self._timeouts},
            )
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        return Answer(response.status_code, response.headers, response.content, keep_alive=True)

    async def aclose(self) -> None:
        """Close the connections."""
        if self._http is not None:
            await self._http.aclose()
        if self._transport is not None:
            await self._transport.aclose()
