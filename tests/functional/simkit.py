"""Helpers for the simulator's tests: fake clocks, signed calls over loopback, answer readers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fleet.ncp.signing import signed_headers
from fleet.simulator import ADMIN_FIELDS, RunningSimulator, SimulatorConfig, running_simulator

ACCESS = "AKSIMTEST000000000001"
SECRET = "SKsimtest0123456789abcdefghijklmnopqrst"
BASE = SimulatorConfig(
    access_key=ACCESS,
    secret_key=SECRET,
    create_seconds=10,
    setup_seconds=20,
    stop_seconds=5,
    start_seconds=5,
    terminate_seconds=5,
    page_size=10,
    max_page_size=15,
    slow_seconds=5,
    late_commit_seconds=20,
    seed=7,
)
VALID: dict[str, str] = {
    "vpcNo": "1001",
    "subnetNo": "2002",
    "networkInterfaceList.1.networkInterfaceOrder": "0",
    "networkInterfaceList.1.accessControlGroupNoList.1": "111",
    "serverImageNo": "16187005",
    "serverSpecCode": "s2-g2-s50",
    "serverName": "web",
}
# The same call elsewhere in the built-in catalog: another KR VPC, and a VPC in JPN.
DEMO_VPC: dict[str, str] = {
    "vpcNo": "75001",
    "subnetNo": "75101",
    "networkInterfaceList.1.accessControlGroupNoList.1": "75201",
}
IN_JPN: dict[str, str] = {
    "regionCode": "JPN",
    "vpcNo": "3001",
    "subnetNo": "3101",
    "networkInterfaceList.1.accessControlGroupNoList.1": "3201",
}
NOON_KST_2024 = 1_704_078_000.0  # 2024-01-01T12:00:00+0900


class FakeClock:
    """A clock the tests step by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward."""
        self.now += seconds


# The fake monotonic and wall clocks every simulator test module runs its simulator on.
CLOCK = FakeClock(1000.0)
WALL = FakeClock(NOON_KST_2024)


@contextlib.contextmanager
def threaded(clock: FakeClock, wall: FakeClock) -> Iterator[RunningSimulator]:
    """Run a threaded simulator with the base settings on fake monotonic and wall clocks."""
    with running_simulator(BASE, clock=clock, wall_clock=wall) as simulator:
        yield simulator


def fresh(server: RunningSimulator, wall: FakeClock) -> RunningSimulator:
    """Put a module's simulator back to the base settings, with no servers, calls or rules."""
    server.configure(**{name: getattr(BASE, name) for name in ADMIN_FIELDS})
    server.reset()
    wall.now = NOON_KST_2024
    return server


def call(
    client: httpx.Client,
    sim: RunningSimulator,
    action: str,
    params: Mapping[str, str] | None = None,
    *,
    wall: Callable[[], float],
    method: str = "POST",
    access: str = ACCESS,
    secret: str = SECRET,
    skew_ms: int = 0,
    timeout: float | None = None,
    api: str = "vserver",
) -> httpx.Response:
    """Send one signed call timestamped on ``wall``: POST sends params as a body, GET as query."""
    params = dict(params or {})
    query = "responseFormatType=json"
    if method == "GET":
        query = urlencode({**params, "responseFormatType": "json"})
    uri = f"/{api}/v2/{action}?{query}"
    headers = signed_headers(method, uri, int(wall() * 1000) + skew_ms, access, secret)
    content = None
    if method == "POST":
        headers["content-type"] = "application/x-www-form-urlencoded"
        content = urlencode(params)
    return client.request(
        method,
        sim.url + uri,
        headers=headers,
        content=content,
        timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
    )


def body_of(response: httpx.Response, action: str) -> dict[str, Any]:
    """Return the ``<action>Response`` object of a successful answer."""
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()[f"{action}Response"]
    return result


def server_error(response: httpx.Response) -> str:
    """Return the returnCode of a Server API error answer."""
    assert response.status_code == 400, response.text
    code: str = response.json()["responseError"]["returnCode"]
    return code


def gateway_error(response: httpx.Response) -> tuple[int, str]:
    """Return (HTTP status, errorCode) of a gateway error answer."""
    code: str = response.json()["error"]["errorCode"]
    return response.status_code, code


@dataclass
class Api:
    """A test's view of one simulator: signed calls on the test's wall clock, and its admin."""

    client: httpx.Client
    sim: RunningSimulator
    wall: Callable[[], float]

    def call(
        self, action: str, params: Mapping[str, str] | None = None, **options: Any
    ) -> httpx.Response:
        """Send one signed call (options as ``call``)."""
        return call(self.client, self.sim, action, params, wall=self.wall, **options)

    def ok(self, action: str, params: Mapping[str, str] | None = None, **options: Any) -> Any:
        """Send one call that must succeed; return its ``<action>Response`` object."""
        return body_of(self.call(action, params, **options), action)

    def create(self, **changes: str) -> list[dict[str, Any]]:
        """Create servers from VALID with changes; return the serverInstanceList."""
        servers: list[dict[str, Any]] = self.ok("createServerInstances", {**VALID, **changes})[
            "serverInstanceList"
        ]
        return servers

    def status(self, no: str, **params: str) -> tuple[str, str]:
        """Return (status, operation) of one server, read with getServerInstanceDetail."""
        body = self.ok("getServerInstanceDetail", {"serverInstanceNo": no, **params})
        server = body["serverInstanceList"][0]
        return server["serverInstanceStatus"]["code"], server["serverInstanceOperation"]["code"]


@contextlib.contextmanager
def api_on(server: RunningSimulator, wall: FakeClock) -> Iterator[Api]:
    """Give a test the module's simulator, fresh, and an HTTP client."""
    with httpx.Client(timeout=5) as http:
        yield Api(http, fresh(server, wall), wall)


# The fixtures ``server`` and ``api``: a test module takes them by importing these functions.


@pytest.fixture(name="server", scope="module")
def server_fixture() -> Iterator[RunningSimulator]:
    """Run one threaded simulator on the fake clocks for the whole module."""
    with threaded(CLOCK, WALL) as simulator:
        yield simulator


@pytest.fixture(name="api")
def api_fixture(server: RunningSimulator) -> Iterator[Api]:
    """Give each test the module's simulator with the base settings and nothing in it."""
    with api_on(server, WALL) as fresh_api:
        yield fresh_api
