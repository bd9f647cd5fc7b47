"""A local NCP VPC Server API, as a pure ASGI application (no sockets here; see ``server``).

Requests go through the same stages as at NCP, in this order:

1. the gateway's token bucket (``rate``/``burst``): when empty, answer 429 and do nothing else;
2. the gateway's authentication (signature v2 over the raw path and query, 5-minute clock window);
3. the route: ``GET`` or ``POST /vserver/v2/<action>``, parameters from the query string and an
   ``application/x-www-form-urlencoded`` body, merged (the body wins on a clash);
4. the Server API, whose state (``SimulatorState``) computes every server's lifecycle lazily from an
   injected monotonic clock: INIT -> CREAT (op SETUP) -> RUN; RUN (op SHTDN) -> NSTOP;
   NSTOP (op START) -> RUN; NSTOP (op TERMT) -> gone.

Answers are always JSON, whatever ``responseFormatType`` says (NCP's XML default is not simulated).
Every answer, errors included, waits ``latency`` (+ up to ``latency_jitter``) seconds first.

Gateway errors, ``{"error": {"errorCode", "message", "details"}}``:

| HTTP | errorCode | message | when |
|---|---|---|---|
| 401 | 200 | Authentication Failed | missing/unknown key, bad signature, timestamp off by > 5 min |
| 404 | 300 | Not Found Exception | unknown path, action or method |
| 413 | 430 | Request Entity Too Large | body over 1 MiB |
| 429 | 410 | Throttle Limited | token bucket empty (``Retry-After`` if configured) |
| 503 | 500 | Endpoint Error | injected ``fail_before`` on a create: nothing created |
| 504 | 510 | Endpoint Timeout | injected ``fail_after`` on a create: the servers WERE created |

Server API errors, HTTP 400, ``{"responseError": {"returnCode", "returnMessage"}}``. Only 1100031 is
NCP's own code; the 9000xx codes are the simulator's (NCP publishes no list: classify by status):

| returnCode | meaning |
|---|---|
| 900001 | a required parameter is missing |
| 900002 | a parameter value is malformed or out of range (types, booleans, counts, paging) |
| 900003 | an invalid parameter combination (image choice, image/spec pairs) |
| 900004 | invalid serverName |
| 900010 | the server's status does not allow the operation (e.g. stop a stopped server) |
| 900011 | termination protection is on |
| 900012 | no such server instance |
| 1100031 | the server's operation is SETUP: wait for operation NULL, then retry |
| 1015009 | the account's server limit (``max_servers``) would be exceeded (NCP's code) |

Faults (``fail_before``, ``fail_after``, ``drop_after``, ``slow``) apply only to creates that
passed validation: one draw from the seeded RNG per such create, so a run is repeatable given the
seed and the order of requests. ``drop_after`` creates the servers, sends the headers with the full
Content-Length and half of the body, then returns without finishing: uvicorn closes the connection,
and the client sees a transport error (httpx ``RemoteProtocolError``), never an HTTP status.
``slow`` creates, then answers only after ``slow_seconds`` (abandoned if the client hangs up).

Admin endpoints, loopback clients only and never authenticated or throttled: ``GET /_admin/state``,
``POST /_admin/config`` (a JSON object of ``ADMIN_FIELDS``), ``POST /_admin/reset``.
Counters: ``requests`` and ``by_action`` count every API call received (throttled and rejected ones
included), ``by_status`` counts answers per HTTP status, ``created`` counts servers created.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import parse_qsl

from fleet.parameters import (
    FEE_SYSTEM_TYPE_CODES,
    IMAGE_CHOICES,
    LISTS,
    MAX_CREATE_SERIAL,
    MAX_DESCRIPTION_BYTES,
    MAX_NICS,
    SCALARS,
    ListField,
    Type,
    valid_server_name,
)
from fleet.signing import sign

__all__ = [
    "ADMIN_FIELDS",
    "FAULT_KINDS",
    "ApiError",
    "Clock",
    "CreateRequest",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorState",
    "TokenBucket",
]

Clock = Callable[[], float]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIX: Final = "/vserver/v2/"
FAULT_KINDS: Final = ("fail_before", "fail_after", "drop_after", "slow")
MAX_BODY_BYTES: Final = 1 << 20
TIMESTAMP_WINDOW_MS: Final = 5 * 60 * 1000
FIRST_INSTANCE_NO: Final = 10000001
MAX_CREATE_COUNT: Final = 20

MISSING_PARAMETER: Final = "900001"
INVALID_PARAMETER: Final = "900002"
INVALID_COMBINATION: Final = "900003"
INVALID_SERVER_NAME: Final = "900004"
WRONG_STATE: Final = "900010"
TERMINATION_PROTECTED: Final = "900011"
NOT_FOUND: Final = "900012"
SETUP_IN_PROGRESS: Final = "1100031"
PRODUCT_LIMIT: Final = "1015009"  # NCP's own code for an account's product limit

_KST = timezone(timedelta(hours=9))
_DIGITS = re.compile(r"[0-9]+")
_GONE = ""  # the status of a terminated server, which no list shows


def _random_access_key() -> str:
    return "SIM" + secrets.token_hex(10).upper()


def _random_secret_key() -> str:
    return secrets.token_urlsafe(30)


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulator behaves: keys, gateway limits, latency, lifecycle timings and faults."""

    access_key: str = field(default_factory=_random_access_key)
    secret_key: str = field(default_factory=_random_secret_key, repr=False)
    rate: float | None = None  # gateway token-bucket refill, calls/s; None = unlimited
    burst: float | None = None  # bucket size; None = max(1, rate)
    retry_after: bool = False  # send Retry-After (whole seconds) on 429
    latency: float = 0.0
    latency_jitter: float = 0.0  # up to this much more, uniformly drawn
    create_seconds: float = 2.0  # INIT -> CREAT (op SETUP)
    setup_seconds: float = 3.0  # CREAT -> RUN
    stop_seconds: float = 2.0  # RUN (op SHTDN) -> NSTOP
    start_seconds: float = 2.0  # NSTOP (op START) -> RUN
    terminate_seconds: float = 2.0  # NSTOP (op TERMT) -> gone
    page_size: int = 10
    max_page_size: int = 100
    fail_before: float = 0.0
    fail_after: float = 0.0
    drop_after: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 30.0
    seed: int | None = None
    max_servers: int | None = None  # the account's server limit; None = no limit

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.access_key or not self.secret_key:
            problems.append("access_key and secret_key must not be empty")
        if self.rate is not None and not self.rate > 0:
            problems.append("rate must be positive or None")
        if self.burst is not None and not self.burst >= 1:
            problems.append("burst must be at least 1 or None")
        for name in (
            "latency",
            "latency_jitter",
            "create_seconds",
            "setup_seconds",
            "stop_seconds",
            "start_seconds",
            "terminate_seconds",
            "slow_seconds",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                problems.append(f"{name} must be a finite number >= 0")
        if self.max_servers is not None and self.max_servers < 0:
            problems.append("max_servers must be >= 0 or None")
        if not 1 <= self.page_size <= self.max_page_size:
            problems.append("need 1 <= page_size <= max_page_size")
        fractions = [getattr(self, kind) for kind in FAULT_KINDS]
        if any(not 0 <= f <= 1 for f in fractions) or sum(fractions) > 1 + 1e-9:
            problems.append("fault fractions must each be in [0, 1] and sum to at most 1")
        if problems:
            raise ValueError("; ".join(problems))

    def public(self) -> dict[str, Any]:
        """Return the settings without the secret key, for the admin state."""
        settings = asdict(self)
        del settings["secret_key"]
        return settings

    @property
    def bucket_size(self) -> float:
        """Return the token bucket's size."""
        if self.burst is not None:
            return self.burst
        return max(1.0, self.rate or 1.0)


# Fields POST /_admin/config may change, with the JSON types each accepts (None where optional).
_NUMBER = (int, float)
ADMIN_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "rate": (*_NUMBER, type(None)),
    "burst": (*_NUMBER, type(None)),
    "retry_after": (bool,),
    "latency": _NUMBER,
    "latency_jitter": _NUMBER,
    "create_seconds": _NUMBER,
    "setup_seconds": _NUMBER,
    "stop_seconds": _NUMBER,
    "start_seconds": _NUMBER,
    "terminate_seconds": _NUMBER,
    "page_size": (int,),
    "max_page_size": (int,),
    "fail_before": _NUMBER,
    "fail_after": _NUMBER,
    "drop_after": _NUMBER,
    "slow": _NUMBER,
    "slow_seconds": _NUMBER,
    "max_servers": (int, type(None)),
    "seed": (int, type(None)),
}


class ApiError(Exception):
    """An answer other than success: the HTTP status and the NCP-shaped JSON body."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers

    @classmethod
    def gateway(cls, status: int, code: str, message: str, details: str | None = "") -> ApiError:
        """Return an API Gateway error (``error`` body); ``details=None`` leaves the field out."""
        error: dict[str, str] = {"errorCode": code, "message": message}
        if details is not None:
            error["details"] = details
        return cls(status, {"error": error})

    @classmethod
    def server(cls, code: str, message: str) -> ApiError:
        """Return a Server API error (``responseError`` body, HTTP 400)."""
        return cls(400, {"responseError": {"returnCode": code, "returnMessage": message}})


class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate`` per second, on an injected clock."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self) -> float:
        """Take one token and return 0, or return the seconds until one will be available."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


# ---------------------------------------------------------------------------------------------
# Server API state


_STATUS_NAMES: Final = {
    ("INIT", "NULL"): "init",
    ("CREAT", "SETUP"): "creating",
    ("RUN", "NULL"): "running",
    ("RUN", "SHTDN"): "shutting down",
    ("NSTOP", "NULL"): "stopped",
    ("NSTOP", "START"): "booting",
    ("NSTOP", "TERMT"): "terminating",
}


@dataclass(slots=True)
class _Server:
    """One simulated server; ``timeline`` holds (monotonic time, status, operation) steps."""

    no: int
    name: str
    description: str
    vpc_no: str
    subnet_no: str
    protect: bool
    created_wall: float
    timeline: list[tuple[float, str, str]]
    request: dict[str, str]  # image, spec and other echoed parameters

    def at(self, now: float) -> tuple[str, str]:
        """Return (status, operation) at monotonic time ``now``."""
        current = self.timeline[0]
        for step in self.timeline:
            if step[0] > now:
                break
            current = step
        return current[1], current[2]


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A validated createServerInstances call."""

    count: int
    start_no: int
    name: str | None
    description: str
    vpc_no: str
    subnet_no: str
    protect: bool
    echo: dict[str, str]


def _is_digits(value: str) -> bool:
    return _DIGITS.fullmatch(value) is not None


def _valid_value(kind: Type, value: str) -> bool:
    if kind is Type.BOOL:
        return value in ("true", "false")
    if kind in (Type.INT, Type.NUM):
        return _is_digits(value)
    if kind is Type.NUMS:
        return all(_is_digits(v) for v in value.split())
    return True


def _collect_list(
    params: Mapping[str, str], spec: ListField, problems: list[tuple[str, str]]
) -> dict[int, dict[str, str]]:
    """Gather ``name.N.field[.M]`` parameters into items by N, checking names and types."""
    items: dict[int, dict[str, str]] = {}
    prefix = spec.name + "."
    for key, value in params.items():
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix) :].split(".")
        if len(parts) not in (2, 3) or not _is_digits(parts[0]) or int(parts[0]) < 1:
            problems.append((INVALID_PARAMETER, f"{key}: not a parameter of {spec.name}"))
            continue
        index, name = int(parts[0]), parts[1]
        kind = spec.fields.get(name)
        nested = len(parts) == 3
        if kind is None or nested != (kind is Type.NUMS):
            problems.append((INVALID_PARAMETER, f"{key}: not a parameter of {spec.name}"))
            continue
        if nested and (not _is_digits(parts[2]) or int(parts[2]) < 1):
            problems.append((INVALID_PARAMETER, f"{key}: list index must be 1 or more"))
            continue
        if not _valid_value(kind, value):
            problems.append((INVALID_PARAMETER, f"{key}: not a valid {kind} value: {value!r}"))
            continue
        item = items.setdefault(index, {})
        item[name] = f"{item[name]} {value}" if nested and name in item else value
    if spec.required:
        for index, item in sorted(items.items()):
            if spec.required not in item:
                problems.append(
                    (MISSING_PARAMETER, f"{spec.name}.{index}.{spec.required} is required")
                )
    return items


def _int_param(
    params: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: list[tuple[str, str]],
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _is_digits(raw) or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        problems.append((INVALID_PARAMETER, f"{name} must be an integer {bounds}: {raw!r}"))
        return default
    return int(raw)


def _index_list(params: Mapping[str, str], name: str, problems: list[tuple[str, str]]) -> list[str]:
    """Return the values of a flat 1-based list parameter ``name.N`` in index order."""
    prefix = name + "."
    found: list[tuple[int, str]] = []
    for key, value in params.items():
        if key.startswith(prefix):
            index = key[len(prefix) :]
            if not _is_digits(index) or int(index) < 1 or not _is_digits(value):
                problems.append((INVALID_PARAMETER, f"{key}: not a valid entry: {value!r}"))
            else:
                found.append((int(index), value))
    return [value for _, value in sorted(found)]


def _raise_first(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ApiError.server(problems[0][0], "; ".join(message for _, message in problems))


class SimulatorState:
    """The servers of one simulated account and the Server API actions on them (pure, no I/O)."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        self._servers: dict[int, _Server] = {}
        self._next_no = FIRST_INSTANCE_NO
        self.created = 0
        self.actions: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
            "getServerInstanceList": self.get_server_instance_list,
            "getServerInstanceDetail": self.get_server_instance_detail,
            "stopServerInstances": self.stop_server_instances,
            "startServerInstances": self.start_server_instances,
            "terminateServerInstances": self.terminate_server_instances,
            "setProtectServerTermination": self.set_protect_server_termination,
        }

    def clear(self) -> None:
        """Forget every server (instance numbers keep increasing, so none is ever reused)."""
        self._servers.clear()
        self.created = 0

    # -- reading -------------------------------------------------------------------------------

    def _live(self, now: float) -> list[tuple[_Server, str, str]]:
        """Return the servers not yet gone with their (status, op), dropping the gone ones."""
        live: list[tuple[_Server, str, str]] = []
        gone: list[int] = []
        for server in self._servers.values():
            status, op = server.at(now)
            if status == _GONE:
                gone.append(server.no)
            else:
                live.append((server, status, op))
        for no in gone:
            del self._servers[no]
        return live

    def _find(self, no: str, now: float) -> tuple[_Server, str, str]:
        server = self._servers.get(int(no)) if _is_digits(no) else None
        if server is not None:
            status, op = server.at(now)
            if status != _GONE:
                return server, status, op
        raise ApiError.server(NOT_FOUND, f"server instance not found: {no}")

    def servers(self) -> list[dict[str, Any]]:
        """Return a short record of every live server, for the admin state."""
        return [
            {
                "serverInstanceNo": str(server.no),
                "serverName": server.name,
                "status": status,
                "operation": op,
                "vpcNo": server.vpc_no,
                "subnetNo": server.subnet_no,
                "isProtectServerTermination": server.protect,
                "created_at": server.created_wall,
            }
            for server, status, op in self._live(self.clock())
        ]

    def _describe(self, server: _Server, status: str, op: str) -> dict[str, Any]:
        created = datetime.fromtimestamp(server.created_wall, tz=_KST).strftime(
            "%Y-%m-%dT%H:%M:%S%z"
        )
        echo = server.request
        return {
            "serverInstanceNo": str(server.no),
            "serverName": server.name,
            "serverDescription": server.description,
            "cpuCount": 2,
            "memorySize": 8589934592,
            "platformType": {"code": "UBS64", "codeName": "Ubuntu Server 64 Bit"},
            "loginKeyName": echo.get("loginKeyName", ""),
            "publicIpInstanceNo": "",
            "publicIp": "",
            "serverInstanceStatus": {"code": status, "codeName": f"서버 {status} 상태"},
            "serverInstanceOperation": {"code": op, "codeName": f"서버 {op} OP"},
            "serverInstanceStatusName": _STATUS_NAMES.get((status, op), status.lower()),
            "createDate": created,
            "uptime": created,
            "serverImageProductCode": echo.get("serverImageProductCode", ""),
            "serverProductCode": echo.get("serverProductCode", ""),
            "isProtectServerTermination": server.protect,
            "zoneCode": "KR-1",
            "regionCode": echo.get("regionCode", "KR"),
            "vpcNo": server.vpc_no,
            "subnetNo": server.subnet_no,
            "networkInterfaceNoList": [],
            "initScriptNo": echo.get("initScriptNo", ""),
            "serverInstanceType": {"code": "STAND", "codeName": "Standard"},
            "baseBlockStorageDiskType": {"code": "NET", "codeName": "네트웍 스토리지"},
            "baseBlockStorageDiskDetailType": {"code": "SSD", "codeName": "SSD"},
            "placementGroupNo": echo.get("placementGroupNo", ""),
            "placementGroupName": "",
            "memberServerImageInstanceNo": echo.get("memberServerImageInstanceNo", ""),
            "hypervisorType": {"code": "KVM", "codeName": "KVM"},
            "serverImageNo": echo.get("serverImageNo", ""),
            "serverSpecCode": echo.get("serverSpecCode", ""),
            "eventList": [],
        }

    @staticmethod
    def _response(
        action: str, instances: list[dict[str, Any]], total: int | None = None
    ) -> dict[str, Any]:
        return {
            f"{action}Response": {
                "totalRows": len(instances) if total is None else total,
                "serverInstanceList": instances,
                "requestId": str(uuid.uuid4()),
                "returnCode": "0",
                "returnMessage": "success",
            }
        }

    def get_server_instance_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getServerInstanceList: filters, then one page ordered by instance number."""
        problems: list[tuple[str, str]] = []
        nos = _index_list(params, "serverInstanceNoList", problems)
        page_no = _int_param(params, "pageNo", 1, 1, None, problems)
        page_size = _int_param(params, "pageSize", self.config.page_size, 1, None, problems)
        _raise_first(problems)
        page_size = min(page_size, self.config.max_page_size)
        vpc = params.get("vpcNo")
        name = params.get("serverName")
        status_code = params.get("serverInstanceStatusCode")
        wanted = {int(no) for no in nos} if nos else None
        matches = [
            (server, status, op)
            for server, status, op in self._live(self.clock())
            if (wanted is None or server.no in wanted)
            and (not vpc or server.vpc_no == vpc)
            and (not name or name in server.name)
            and (not status_code or status == status_code)
        ]
        start = (page_no - 1) * page_size
        page = [self._describe(*row) for row in matches[start : start + page_size]]
        return self._response("getServerInstanceList", page, total=len(matches))

    def get_server_instance_detail(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getServerInstanceDetail for one serverInstanceNo."""
        no = params.get("serverInstanceNo")
        if not no:
            raise ApiError.server(MISSING_PARAMETER, "serverInstanceNo is required")
        row = self._find(no, self.clock())
        return self._response("getServerInstanceDetail", [self._describe(*row)])

    # -- creating ------------------------------------------------------------------------------

    def validate_create(self, params: Mapping[str, str]) -> CreateRequest:
        """Check a createServerInstances call as NCP would; raise ApiError naming every problem."""
        p = {key: value for key, value in params.items() if value != ""}
        problems: list[tuple[str, str]] = []
        for name in ("vpcNo", "subnetNo"):
            if name not in p:
                problems.append((MISSING_PARAMETER, f"{name} is required"))
        for name, kind in SCALARS.items():
            if name in p and not _valid_value(kind, p[name]):
                problems.append((INVALID_PARAMETER, f"{name}: not a valid {kind} value"))
        nics = _collect_list(p, LISTS["networkInterfaceList"], problems)
        _collect_list(p, LISTS["blockStorageMappingList"], problems)
        _collect_list(p, LISTS["blockDevicePartitionList"], problems)
        if not nics:
            problems.append(
                (MISSING_PARAMETER, "networkInterfaceList.N.networkInterfaceOrder is required")
            )
        elif len(nics) > MAX_NICS:
            problems.append((INVALID_PARAMETER, f"at most {MAX_NICS} network interfaces"))
        else:
            orders = [int(item.get("networkInterfaceOrder", "0")) for item in nics.values()]
            if len(set(orders)) != len(orders) or 0 not in orders or max(orders) >= MAX_NICS:
                problems.append(
                    (
                        INVALID_PARAMETER,
                        f"networkInterfaceOrder must be distinct, below {MAX_NICS}, and include 0",
                    )
                )

        images = [name for name in IMAGE_CHOICES if name in p]
        if len(images) != 1:
            problems.append(
                (INVALID_COMBINATION, f"exactly one of {', '.join(IMAGE_CHOICES)} is required")
            )
        if "serverSpecCode" in p and "serverProductCode" in p:
            problems.append(
                (INVALID_COMBINATION, "serverSpecCode and serverProductCode exclude each other")
            )
        if "serverImageNo" in p and "serverSpecCode" not in p:
            problems.append((INVALID_COMBINATION, "serverImageNo needs serverSpecCode"))
        if "serverImageNo" in p and "serverProductCode" in p:
            problems.append(
                (
                    INVALID_COMBINATION,
                    "serverImageNo pairs with serverSpecCode, not serverProductCode",
                )
            )
        if "serverImageProductCode" in p and "serverSpecCode" in p:
            problems.append(
                (INVALID_COMBINATION, "serverImageProductCode pairs with serverProductCode")
            )

        server_name = p.get("serverName")
        if server_name is not None and not valid_server_name(server_name):
            problems.append((INVALID_SERVER_NAME, f"invalid serverName: {server_name!r}"))
        count = _int_param(p, "serverCreateCount", 1, 1, MAX_CREATE_COUNT, problems)
        start_no = _int_param(p, "serverCreateStartNo", 1, 0, MAX_CREATE_SERIAL, problems)
        if count + start_no > MAX_CREATE_SERIAL and "serverCreateStartNo" in p:
            problems.append(
                (
                    INVALID_PARAMETER,
                    f"serverCreateCount + serverCreateStartNo must be <= {MAX_CREATE_SERIAL}",
                )
            )
        description = p.get("serverDescription", "")
        if len(description.encode()) > MAX_DESCRIPTION_BYTES:
            problems.append(
                (INVALID_PARAMETER, f"serverDescription over {MAX_DESCRIPTION_BYTES} bytes")
            )
        login_key = p.get("loginKeyName")
        if login_key is not None and not 3 <= len(login_key) <= 30:
            problems.append((INVALID_PARAMETER, "loginKeyName must be 3-30 characters"))
        fee = p.get("feeSystemTypeCode")
        if fee is not None and fee not in FEE_SYSTEM_TYPE_CODES:
            problems.append((INVALID_PARAMETER, f"unknown feeSystemTypeCode: {fee!r}"))
        _raise_first(problems)
        echo = {key: value for key, value in p.items() if key in SCALARS}
        return CreateRequest(
            count=count,
            start_no=start_no,
            name=server_name,
            description=description,
            vpc_no=p["vpcNo"],
            subnet_no=p["subnetNo"],
            protect=p.get("isProtectServerTermination") == "true",
            echo=echo,
        )

    def create(self, request: CreateRequest) -> dict[str, Any]:
        """Create the servers of a validated call (status INIT) and answer like NCP."""
        now = self.clock()
        wall = self.wall_clock()
        cfg = self.config
        if cfg.max_servers is not None:
            live = len(self._live(now))
            if live + request.count > cfg.max_servers:
                raise ApiError.server(
                    PRODUCT_LIMIT,
                    f"the account's server limit ({cfg.max_servers}) would be exceeded",
                )
        timeline = [
            (now, "INIT", "NULL"),
            (now + cfg.create_seconds, "CREAT", "SETUP"),
            (now + cfg.create_seconds + cfg.setup_seconds, "RUN", "NULL"),
        ]
        made: list[dict[str, Any]] = []
        for i in range(request.count):
            no = self._next_no
            self._next_no += 1
            if request.name is None:
                name = f"s{no:x}"
            elif request.count > 1:
                name = f"{request.name}-{request.start_no + i:03d}"
            else:
                name = request.name
            server = _Server(
                no=no,
                name=name,
                description=request.description,
                vpc_no=request.vpc_no,
                subnet_no=request.subnet_no,
                protect=request.protect,
                created_wall=wall,
                timeline=list(timeline),
                request=request.echo,
            )
            self._servers[no] = server
            self.created += 1
            made.append(self._describe(server, "INIT", "NULL"))
        return self._response("createServerInstances", made)

    # -- changing ------------------------------------------------------------------------------

    def _targets(self, params: Mapping[str, str]) -> list[tuple[_Server, str, str]]:
        problems: list[tuple[str, str]] = []
        nos = _index_list(params, "serverInstanceNoList", problems)
        if not nos and not problems:
            problems.append((MISSING_PARAMETER, "serverInstanceNoList.N is required"))
        _raise_first(problems)
        now = self.clock()
        return [self._find(no, now) for no in nos]

    @staticmethod
    def _check(
        rows: list[tuple[_Server, str, str]],
        wanted_status: str,
        verb: str,
        *,
        protect: bool = False,
    ) -> None:
        """Refuse the whole call unless every server may take it (NCP changes none on error)."""
        for server, status, op in rows:
            if op == "SETUP":
                raise ApiError.server(
                    SETUP_IN_PROGRESS, f"server {server.no}: operation SETUP in progress"
                )
            if protect and server.protect:
                raise ApiError.server(
                    TERMINATION_PROTECTED, f"server {server.no}: termination protection is on"
                )
            if status != wanted_status or op != "NULL":
                raise ApiError.server(
                    WRONG_STATE, f"server {server.no}: cannot {verb} in status {status} op {op}"
                )

    def _change(
        self,
        action: str,
        rows: list[tuple[_Server, str, str]],
        now_step: tuple[str, str],
        then: str,
        seconds: float,
    ) -> dict[str, Any]:
        now = self.clock()
        for server, _, _ in rows:
            server.timeline = [(now, *now_step), (now + seconds, then, "NULL")]
        return self._response(action, [self._describe(s, *now_step) for s, _, _ in rows])

    def stop_server_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Stop RUN servers: op SHTDN for stop_seconds, then NSTOP."""
        rows = self._targets(params)
        self._check(rows, "RUN", "stop")
        return self._change(
            "stopServerInstances", rows, ("RUN", "SHTDN"), "NSTOP", self.config.stop_seconds
        )

    def start_server_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Start NSTOP servers: op START for start_seconds, then RUN."""
        rows = self._targets(params)
        self._check(rows, "NSTOP", "start")
        return self._change(
            "startServerInstances", rows, ("NSTOP", "START"), "RUN", self.config.start_seconds
        )

    def terminate_server_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Terminate NSTOP, unprotected servers: op TERMT for terminate_seconds, then gone."""
        rows = self._targets(params)
        self._check(rows, "NSTOP", "terminate", protect=True)
        return self._change(
            "terminateServerInstances",
            rows,
            ("NSTOP", "TERMT"),
            _GONE,
            self.config.terminate_seconds,
        )

    def set_protect_server_termination(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Turn termination protection of one server on or off."""
        no = params.get("serverInstanceNo")
        flag = params.get("isProtectServerTermination")
        problems: list[tuple[str, str]] = []
        if not no:
            problems.append((MISSING_PARAMETER, "serverInstanceNo is required"))
        if not flag:
            problems.append((MISSING_PARAMETER, "isProtectServerTermination is required"))
        elif flag not in ("true", "false"):
            problems.append((INVALID_PARAMETER, "isProtectServerTermination must be true/false"))
        _raise_first(problems)
        server, status, op = self._find(no or "", self.clock())
        server.protect = flag == "true"
        return self._response("setProtectServerTermination", [self._describe(server, status, op)])


# ---------------------------------------------------------------------------------------------
# The ASGI application: gateway, routing, faults, admin


@dataclass(slots=True)
class _Counters:
    requests: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    auth_failed: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))


_JSON_HEADERS: Final = ((b"content-type", b"application/json;charset=UTF-8"),)
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class SimulatorApp:
    """The simulator as an ASGI 3 application (gateway, Server API, faults and admin)."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        wall_clock: Clock = time.time,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.wall_clock = wall_clock
        self.clock = clock
        self.sleep = sleep
        self.state = SimulatorState(self.config, clock=clock, wall_clock=wall_clock)
        self.counters = _Counters()
        self._jitter = random.Random()
        self._reset_gateway()

    def _reset_gateway(self) -> None:
        cfg = self.config
        self._bucket = (
            TokenBucket(cfg.rate, cfg.bucket_size, self.clock) if cfg.rate is not None else None
        )
        self._faults = random.Random(cfg.seed)

    def snapshot(self) -> dict[str, Any]:
        """Return the counters, the public config and the live servers (GET /_admin/state)."""
        c = self.counters
        return {
            "counters": {
                "requests": c.requests,
                "by_action": dict(c.by_action),
                "by_status": dict(c.by_status),
                "throttled": c.throttled,
                "auth_failed": c.auth_failed,
                "created": self.state.created,
                "faults": dict(c.faults),
            },
            "config": self.config.public(),
            "servers": self.state.servers(),
        }

    def reconfigure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply run-time changes (ADMIN_FIELDS only); raise ValueError on a bad one."""
        for key, value in changes.items():
            types = ADMIN_FIELDS.get(key)
            if types is None:
                raise ValueError(f"not a run-time setting: {key}")
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise ValueError(f"{key}: wrong type {type(value).__name__}")
        new = replace(self.config, **changes)
        self.config = new
        self.state.config = new
        if {"rate", "burst"} & changes.keys():
            self._bucket = (
                TokenBucket(new.rate, new.bucket_size, self.clock) if new.rate is not None else None
            )
        if "seed" in changes:
            self._faults = random.Random(new.seed)
        return new

    def reset(self) -> None:
        """Forget every server and counter; refill the bucket and reseed the fault RNG."""
        self.state.clear()
        self.counters = _Counters()
        self._reset_gateway()

    def draw_fault(self) -> str | None:
        """Draw the fault (or None) for one valid create from the seeded RNG."""
        u = self._faults.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(self.config, kind)
            if u < edge:
                return kind
        return None

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_admin/"):
            await self._admin(scope, receive, send)
        else:
            await self._api(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        """Return the request body, or None when it is over MAX_BODY_BYTES or the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _answer(
        self,
        send: Send,
        status: int,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        *,
        api: bool = True,
    ) -> None:
        if api:
            await self._delay()
            key = str(status)
            self.counters.by_status[key] = self.counters.by_status.get(key, 0) + 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _delay(self) -> None:
        cfg = self.config
        seconds = cfg.latency
        if cfg.latency_jitter:
            seconds += self._jitter.uniform(0, cfg.latency_jitter)
        if seconds > 0:
            await self.sleep(seconds)

    def _throttle(self) -> None:
        if self._bucket is None:
            return
        wait = self._bucket.take()
        if wait > 0:
            self.counters.throttled += 1
            error = ApiError.gateway(429, "410", "Throttle Limited")
            if self.config.retry_after:
                error.headers = ((b"retry-after", str(max(1, math.ceil(wait))).encode()),)
            raise error

    def _authenticate(self, scope: Scope, method: str) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        ts = headers.get(b"x-ncp-apigw-timestamp", b"").decode("latin-1")
        key = headers.get(b"x-ncp-iam-access-key", b"").decode("latin-1")
        signature = headers.get(b"x-ncp-apigw-signature-v2", b"").decode("latin-1")
        details = ""
        cfg = self.config
        if not (ts and key and signature):
            details = "missing x-ncp-apigw-timestamp, x-ncp-iam-access-key or signature header"
        elif not _is_digits(ts):
            details = "x-ncp-apigw-timestamp is not epoch milliseconds"
        elif abs(int(ts) - int(self.wall_clock() * 1000)) > TIMESTAMP_WINDOW_MS:
            details = "timestamp is more than 5 minutes from the gateway's clock"
        elif not hmac.compare_digest(key.encode(), cfg.access_key.encode()):
            details = "unknown access key"
        else:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string", b"")
            uri = (raw_path + b"?" + query if query else raw_path).decode("latin-1")
            expected = sign(method, uri, int(ts), cfg.access_key, cfg.secret_key)
            if not hmac.compare_digest(signature.encode(), expected.encode()):
                details = "signature mismatch"
        if details:
            self.counters.auth_failed += 1
            raise ApiError.gateway(401, "200", "Authentication Failed", details)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        counters = self.counters
        counters.requests += 1
        path: str = scope["path"]
        action = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path
        counters.by_action[action] = counters.by_action.get(action, 0) + 1
        body = await self._read_body(receive)
        try:
            self._throttle()
            if body is None:
                raise ApiError.gateway(413, "430", "Request Entity Too Large")
            method: str = scope["method"]
            self._authenticate(scope, method)
            if (
                method not in ("GET", "POST")
                or not path.startswith(API_PREFIX)
                or (action not in self.state.actions and action != "createServerInstances")
            ):
                raise ApiError.gateway(404, "300", "Not Found Exception", f"no such API: {path}")
            params = dict(
                parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            )
            if body:
                headers: dict[bytes, bytes] = dict(scope["headers"])
                ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
                if ctype == b"application/x-www-form-urlencoded":
                    params.update(
                        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                    )
            if action == "createServerInstances":
                await self._create(params, receive, send)
                return
            answer = self.state.actions[action](params)
        except ApiError as error:
            await self._answer(send, error.status, _encode(error.body), error.headers)
            return
        await self._answer(send, 200, _encode(answer))

    async def _create(self, params: Mapping[str, str], receive: Receive, send: Send) -> None:
        request = self.state.validate_create(params)  # ApiError goes to the caller
        fault = self.draw_fault()
        if fault is not None:
            self.counters.faults[fault] += 1
        if fault == "fail_before":
            raise ApiError.gateway(503, "500", "Endpoint Error", details=None)
        body = _encode(self.state.create(request))
        if fault == "fail_after":
            raise ApiError.gateway(504, "510", "Endpoint Timeout", details=None)
        if fault == "drop_after":
            await self._delay()
            # Promise the whole body, send half, and return: the server must close the connection,
            # which is what the client of a dropped connection sees.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
                }
            )
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            return
        if fault == "slow":
            try:
                await asyncio.wait_for(self._until_disconnect(receive), self.config.slow_seconds)
            except TimeoutError:
                pass
            else:
                return  # the client gave up; nobody is left to answer
        await self._answer(send, 200, body)

    @staticmethod
    async def _until_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        client = scope.get("client")
        route = (scope["method"], scope["path"])
        status, answer = 200, dict[str, Any]()
        if client is not None and client[0] not in _LOOPBACK:
            status, answer = 403, {"error": "admin endpoints answer loopback clients only"}
        elif route == ("GET", "/_admin/state"):
            answer = self.snapshot()
        elif route == ("POST", "/_admin/reset"):
            self.reset()
            answer = {"reset": True}
        elif route == ("POST", "/_admin/config"):
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object")
                answer = {"config": self.reconfigure(changes).public()}
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                status, answer = 400, {"error": str(error)}
        else:
            status, answer = 404, {"error": f"no admin endpoint {route[0]} {route[1]}"}
        await self._answer(send, status, _encode(answer), api=False)
