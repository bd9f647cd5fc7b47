"""A local NCP VPC Server API, as a pure ASGI application (no sockets here; see ``server``).

Requests go through the same stages as at NCP, in this order:

1. the gateway's token bucket (``rate``/``burst``): when empty, answer 429 and do nothing else;
2. the gateway's authentication (signature v2 or v1 over the raw path and query, 5-minute window);
3. the route: ``GET`` or ``POST /vserver/v2/<action>`` (``/vpc/v2/`` for getVpcList and
   getSubnetList), parameters from the query string and an ``application/x-www-form-urlencoded``
   body, merged (the body wins on a clash);
4. the fault, if one is due (see below), then the action: the Server API (``state``), a read of
   the catalog (``read_actions``), or the public IP and block storage API (``extras``). Every
   action takes ``regionCode`` and acts on that region only, the first region (KR) when it is
   absent.

Answers are always JSON, whatever ``responseFormatType`` says (NCP's XML default is not simulated).
Every answer, errors included, waits ``latency`` (+ up to ``latency_jitter``) seconds first, and
carries a ``Date`` header from the gateway's clock: the wall clock plus ``clock_offset``, the
clock the signature window and ``createDate`` read too.

Gateway errors, ``{"error": {"errorCode", "message"[, "details"]}}`` (see ``gateway`` for 401,
413 and 429):

| HTTP | errorCode | message | when |
|---|---|---|---|
| 404 | 300 | Not Found Exception | unknown path, action or method |
| 503 | 500 | Endpoint Error | fault ``fail_before``: nothing done |
| 504 | 510 | Endpoint Timeout | fault ``fail_after`` (done) or ``late_commit`` (done later) |
| 500 | 900 | Unexpected Error | fault ``error_500``: done |

Server API errors, HTTP 400 ``{"responseError": {"returnCode", "returnMessage"}}``: the table of
codes is in ``errors`` (900001-900030 the simulator's; 1100031, 1015009 and 1413 NCP's). A create
is checked in two passes (``validation``): its structure, then what it references in the
catalog (``references``; the catalog's format is in ``catalog_file``).

Faults. A create that passed validation draws one fault from the seeded RNG (the fractions
``fail_before`` ... ``error_500`` of the config); a rule posted to ``/_admin/faults`` overrides
the draw, and reaches any action (see ``faults``). What each kind does:

- ``fail_before``: 503 Endpoint Error; nothing done.
- ``fail_after``: done, then 504 Endpoint Timeout.
- ``drop_after``: done, then the headers with the full Content-Length and half the body, and no
  more: uvicorn closes the connection and the client sees a transport error
  (httpx ``RemoteProtocolError``), never an HTTP status.
- ``slow``: done, answered after ``slow_seconds`` (abandoned if the client hangs up).
- ``late_commit`` (creates only): 504 Endpoint Timeout at once; the backend commits the servers
  ``late_commit_seconds`` later, and reads see them from then plus the listing lag.
- ``bad_body``: done, then a 200 whose body is cut in half: not readable JSON.
- ``never_ready`` (creates only): done and answered as usual, but the servers never boot: they
  stay CREAT with operation SETUP (a broken image, a spec sold out in the zone).
- ``error_500``: done, then 500 errorCode 900 Unexpected Error.
Kinds after "done" fire only when the action succeeded; a refused call answers its own error and
leaves the rule in place.

Admin endpoints under ``/_admin/`` (state, config, reset, faults, calls, servers changed out of
band): see ``admin``.

Counters: ``requests`` and ``by_action`` count every API call received (throttled and rejected ones
included), ``by_status`` counts answers per HTTP status, ``created`` counts servers created,
``faults`` counts faults played by kind.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

from fleet.simulator.admin import serve_admin
from fleet.simulator.asgi import (
    JSON_HEADERS,
    Receive,
    Scope,
    Send,
    encode,
    lifespan,
    read_body,
    send_json,
    until_disconnect,
)
from fleet.simulator.calls import CallLog
from fleet.simulator.catalog import Catalog
from fleet.simulator.catalog_file import default_catalog, load_catalog
from fleet.simulator.config import SimulatorConfig
from fleet.simulator.errors import ApiError
from fleet.simulator.extras import ExtraActions
from fleet.simulator.faults import CREATE, FaultRule, Faults, parse_rules
from fleet.simulator.gateway import MAX_BODY_BYTES, Clock, Gateway
from fleet.simulator.read_actions import VPC_ACTIONS, ReadActions
from fleet.simulator.state import SimulatorState
from fleet.simulator.validation import validate_create

__all__ = ["API_PREFIX", "VPC_PREFIX", "SimulatorApp"]

API_PREFIX: Final = "/vserver/v2/"
VPC_PREFIX: Final = "/vpc/v2/"


@dataclass(slots=True)
class _Counters:
    requests: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Request:
    """One API call as received: where it went, its merged parameters, and its log entry."""

    method: str
    action: str
    prefix: str  # the API's path prefix, '' when the path has none of them
    uri: str  # raw path and query, as signed
    headers: dict[bytes, bytes]
    params: dict[str, str]
    too_large: bool
    log: dict[str, Any]


class SimulatorApp:
    """The simulator as an ASGI 3 application (gateway, Server API, faults and admin)."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        catalog: Catalog | None = None,
        wall_clock: Clock = time.time,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        if catalog is None:
            path = self.config.catalog
            catalog = load_catalog(path) if path is not None else default_catalog()
        self.catalog = catalog
        self._machine_clock = wall_clock
        self.clock = clock
        self.sleep = sleep
        self.state = SimulatorState(
            self.config, catalog=self.catalog, clock=clock, wall_clock=self.wall_clock
        )
        self.reads = ReadActions(self.state)
        self.extras = ExtraActions(self.state.resources, self.catalog)
        self.handlers = {**self.state.actions, **self.reads.actions, **self.extras.actions}
        self.actions = frozenset({CREATE, *self.handlers})  # every API action it answers
        self.counters = _Counters()
        self.gateway = Gateway(self.config, clock, self.wall_clock)
        self.faults = Faults(self.config)
        self.calls = CallLog(self.config.call_log_size)
        self._jitter = random.Random()

    def wall_clock(self) -> float:
        """Return the gateway's clock: this machine's, plus the configured offset."""
        return self._machine_clock() + self.config.clock_offset

    def snapshot(self) -> dict[str, Any]:
        """Return the counters, the public config, every server and the rules left."""
        c = self.counters
        return {
            "counters": {
                "requests": c.requests,
                "by_action": dict(c.by_action),
                "by_status": dict(c.by_status),
                "throttled": self.gateway.throttled,
                "auth_failed": self.gateway.auth_failed,
                "created": self.state.created,
                "faults": dict(self.faults.played),
            },
            "config": self.config.public(),
            "servers": self.state.servers(),
            **self.state.resources.admin(),
            "fault_rules": [rule.public() for rule in self.faults.rules],
        }

    def reconfigure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply run-time changes (ADMIN_FIELDS only); raise ValueError on a bad one."""
        new = self.config.changed(changes)
        self.config = self.state.config = self.state.resources.config = new
        self.gateway.config = self.faults.config = new
        if {"rate", "burst"} & changes.keys():
            self.gateway.refill()
        if "seed" in changes:
            self.faults.reseed()
            self.state.reseed()
        if "call_log_size" in changes:
            self.calls.resize(new.call_log_size)
        return new

    def reset(self) -> None:
        """Forget servers, counters, calls and rules; refill the bucket and reseed the RNGs."""
        self.state.clear()
        self.counters = _Counters()
        self.gateway = Gateway(self.config, self.clock, self.wall_clock)
        self.faults = Faults(self.config)
        self.calls = CallLog(self.config.call_log_size)

    def out_of_band(self, no: str, change: Mapping[str, Any]) -> dict[str, Any]:
        """Change one server as someone else would (see ``admin``); raise ValueError if bad."""
        return self.state.out_of_band(no, change)

    def add_faults(self, data: Any) -> list[FaultRule]:
        """Add on-demand fault rules from their JSON form; raise ValueError on a bad one."""
        regions = [region.code for region in self.catalog.regions]
        self.faults.rules += parse_rules(data, self.actions, regions)
        return self.faults.rules

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_admin/"):
            await serve_admin(self, scope, receive, send)
        else:
            await self._api(scope, receive, send)

    async def _answer(
        self,
        send: Send,
        request: _Request,
        status: int,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        """Answer an API call after the configured latency, counting and logging the status."""
        await self._delay()
        key = str(status)
        self.counters.by_status[key] = self.counters.by_status.get(key, 0) + 1
        request.log["status"] = status
        await send_json(send, status, body, (*headers, self._date()))

    def _date(self) -> tuple[bytes, bytes]:
        """Return the Date header of an answer: NCP's clock, as its gateway's answers carry it."""
        return (b"date", email.utils.formatdate(self.wall_clock(), usegmt=True).encode())

    async def _delay(self) -> None:
        cfg = self.config
        seconds = cfg.latency
        if cfg.latency_jitter:
            seconds += self._jitter.uniform(0, cfg.latency_jitter)
        if seconds > 0:
            await self.sleep(seconds)

    async def _receive(self, scope: Scope, receive: Receive) -> _Request:
        """Read one API call: its route, merged parameters and body; count and log it."""
        path: str = scope["path"]
        prefix = next((p for p in (API_PREFIX, VPC_PREFIX) if path.startswith(p)), "")
        action = path[len(prefix) :] if prefix else path
        counters = self.counters
        counters.requests += 1
        counters.by_action[action] = counters.by_action.get(action, 0) + 1
        body = await read_body(receive, MAX_BODY_BYTES)
        headers: dict[bytes, bytes] = dict(scope["headers"])
        query = scope.get("query_string", b"")
        params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and ctype == b"application/x-www-form-urlencoded":
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        raw_path: bytes = scope.get("raw_path") or path.encode()
        uri = (raw_path + b"?" + query if query else raw_path).decode("latin-1")
        method: str = scope["method"]
        log = self.calls.add(action, method, params)
        return _Request(method, action, prefix, uri, headers, params, body is None, log)

    def _admit(self, request: _Request) -> None:
        """Pass the gateway (throttle, size, signature) and find the route, or raise."""
        self.gateway.throttle()
        if request.too_large:
            raise ApiError.gateway(413, "430", "Request Entity Too Large")
        self.gateway.authenticate(request.headers, request.method, request.uri)
        api = VPC_PREFIX if request.action in VPC_ACTIONS else API_PREFIX
        if (
            request.method not in ("GET", "POST")
            or request.prefix != api
            or request.action not in self.actions
        ):
            path = request.prefix + request.action
            raise ApiError.gateway(404, "300", "Not Found Exception", f"no such API: {path}")

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await self._receive(scope, receive)
        try:
            self._admit(request)
            await self._run(request, receive, send)
        except ApiError as error:
            await self._answer(send, request, error.status, encode(error.body), error.headers)

    async def _run(self, request: _Request, receive: Receive, send: Send) -> None:
        """Play the fault due, if any, around the action; answer (errors raise ApiError)."""
        action, params = request.action, request.params
        creating = None
        if action == CREATE:
            creating = validate_create(params, self.catalog, self.state.resources.nic_taken)
        drawn = self.faults.draw() if creating is not None else None
        region = params.get("regionCode") or self.catalog.default_region.code
        rule = self.faults.match(action, params, region)
        fault = rule.fault if rule is not None else drawn
        if fault == "fail_before":
            self._played(request, rule, fault)
            raise ApiError.gateway(503, "500", "Endpoint Error", details=None)
        if creating is not None:
            delay = self.config.late_commit_seconds if fault == "late_commit" else 0.0
            answer = self.state.create(creating, commit_delay=delay, boots=fault != "never_ready")
        else:
            answer = self.handlers[action](params)
        self._played(request, rule, fault)
        await self._play(fault, encode(answer), request, receive, send)

    def _played(self, request: _Request, rule: FaultRule | None, fault: str | None) -> None:
        if rule is not None:
            self.faults.consume(rule)
        self.faults.count(fault)
        request.log["fault"] = fault

    async def _play(
        self, fault: str | None, body: bytes, request: _Request, receive: Receive, send: Send
    ) -> None:
        """Answer a call that was done, as the fault (or None) says."""
        if fault in ("fail_after", "late_commit"):
            raise ApiError.gateway(504, "510", "Endpoint Timeout", details=None)
        if fault == "error_500":
            raise ApiError.gateway(500, "900", "Unexpected Error", details=None)
        if fault == "bad_body":
            body = body[: len(body) // 2]
        elif fault == "drop_after":
            await self._drop(body, request, send)
            return
        elif fault == "slow":
            try:
                await asyncio.wait_for(until_disconnect(receive), self.config.slow_seconds)
            except TimeoutError:
                pass
            else:
                return  # the client gave up; nobody is left to answer
        await self._answer(send, request, 200, body)

    async def _drop(self, body: bytes, request: _Request, send: Send) -> None:
        """Promise the whole body, send half, and return: the server must close the connection."""
        await self._delay()
        request.log["status"] = 200
        length = (b"content-length", str(len(body)).encode())
        headers = [*JSON_HEADERS, length, self._date()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = body[: len(body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
