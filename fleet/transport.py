"""The client's HTTP/1.1 transport: asyncio protocols, with httpx's timeouts and exception types.

httpx's default transport (httpcore's pool on anyio) spent about 0.85 ms of CPU per request on
these machines, most of a create's cost. A create is one small form POST answered by one small
JSON body, so this transport does only that well: HTTP/1.1 (``fleet.http11``), kept-alive
connections per origin (each an asyncio protocol that frames its answer as the bytes arrive, so
the request wakes once), a bound on connections, httpx's four timeouts and its exception types,
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
from dataclasses import replace
from typing import TypeVar

import httpx

from .http11 import Answer, Framer, decoded, request_bytes

__all__ = ["Http11Transport", "Poster", "http_transport"]

# httpx's own default: a server's keep-alive timeout is usually 5 s or more (uvicorn's is 5 s),
# and a connection idle that long is not worth the race with its close.
KEEPALIVE_EXPIRY = 5.0

Origin = tuple[str, str, int]
Timeouts = Mapping[str, float | None]  # httpx's four: connect, read, write, pool
T = TypeVar("T")


class _Connection(asyncio.Protocol):
    """One kept-alive connection: its answers are framed as their bytes arrive.

    The waiting request wakes once, when its whole answer is in, however many reads brought it.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.closed = False  # by the server, by an error, or out of step: never reused
        self._framer: Framer | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._writable: asyncio.Future[None] | None = None  # set while the socket is full

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Frame the answer so far; wake the request once it is whole."""
        if self._framer is None:  # bytes nobody asked for: the connection is out of step
            self.closed = True
            return
        try:
            answer = self._framer.feed(data)
        except httpx.HTTPError as exc:
            self._settle(exc)
            return
        if answer is not None:
            self._settle(answer)

    def eof_received(self) -> bool | None:
        """Take the server's close: an answer it ends is whole, any other is cut short."""
        self.closed = True
        self._ended(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail what waits on the connection: it is gone."""
        self.closed = True
        self._ended(exc)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        """Hold writes back: the socket's buffer is full (``exchange`` waits)."""
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """Let writes go on: the socket's buffer drained."""
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def reusable(self, now: float, expiry: float) -> bool:
        """Whether it can carry another request: not closed by the server, not idle too long."""
        transport = self.transport
        return (
            not self.closed
            and transport is not None
            and not transport.is_closing()
            and now - self.idle_since < expiry
        )

    async def exchange(self, data: bytes, timeout: Timeouts) -> Answer:
        """Write a request; return its whole answer (the read timeout bounds all of it)."""
        assert self.transport is not None
        self._framer = Framer()
        self._answer = asyncio.get_running_loop().create_future()
        try:
            self.transport.write(data)
            if self._writable is not None:  # most requests fit the socket's buffer at once
                await _within(
                    asyncio.shield(self._writable), timeout.get("write"), httpx.WriteTimeout
                )
            return await _within(self._answer, timeout.get("read"), httpx.ReadTimeout)
        finally:
            self._framer = self._answer = None

    def _ended(self, exc: Exception | None) -> None:
        if self._framer is None:
            return
        if exc is not None:
            kind = httpx.WriteError if isinstance(exc, BrokenPipeError) else httpx.ReadError
            self._settle(kind(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
            return
        try:
            self._settle(self._framer.end())
        except httpx.HTTPError as error:
            self._settle(error)

    def _settle(self, outcome: Answer | httpx.HTTPError) -> None:
        waiter = self._answer
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Answer):
            waiter.set_result(outcome)
        else:
            self.closed = True
            waiter.set_exception(outcome)

    def close(self) -> None:
        """Close it; an error while closing changes nothing for the caller."""
        self.closed = True
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()


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
        origin, path, host = _target(request.url)
        data = request_bytes(request.method, path, host, headers, body)
        answer = await self.exchange(origin, data, request.extensions.get("timeout", {}))
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
                answer = await conn.exchange(data, timeout)
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
        loop = asyncio.get_running_loop()
        with _mapped():
            _, conn = await _within(
                loop.create_connection(
                    _Connection, host, port, ssl=tls, server_hostname=host if tls else None
                ),
                connect,
                httpx.ConnectTimeout,
            )
        self.opened += 1
        return conn

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


def _target(url: httpx.URL) -> tuple[Origin, str, str]:
    """Return where a request for ``url`` goes: its origin, its path and query, its Host header.

    The Host header is the host (an international name in its ASCII form), and the port unless
    it is the scheme's default.
    """
    raw = url.raw_host.decode("ascii")
    host = f"[{raw}]" if ":" in raw else raw
    return (
        _origin(url),
        url.raw_path.decode("ascii"),
        host if url.port is None else f"{host}:{url.port}",
    )


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
def _mapped() -> Iterator[None]:
    """Raise httpx's ConnectError for what connecting raises: nothing was sent."""
    try:
        yield
    except httpx.HTTPError:
        raise
    except (OSError, ssl.SSLError) as exc:
        raise httpx.ConnectError(
            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
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
                target = self._targets[url] = _target(httpx.URL(url))
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
