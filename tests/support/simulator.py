"""The simulator in tests: its settings, signed calls over loopback, answer readers, fixtures.

The fixtures: ``module_simulator``, one threaded simulator per test module on the module's fake
clocks ``sim_clock`` (monotonic) and ``sim_wall`` (wall); ``api``, that simulator fresh for each
test with an HTTP client.
"""

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
from tests.support.clock import FakeClock
from tests.support.keys import BASE_ACCESS, BASE_SECRET, SIM_ACCESS, SIM_SECRET

# The settings of the simulator's own tests: slow lifecycles, stepped by hand on fake clocks.
BASE = SimulatorConfig(
    access_key=BASE_ACCESS,
    secret_key=BASE_SECRET,
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
    access: str = BASE_ACCESS,
    secret: str = BASE_SECRET,
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
    """A test's view of one simulator: signed calls on its wall clock, its clocks, its admin."""

    client: httpx.Client
    sim: RunningSimulator
    clock: FakeClock
    wall: FakeClock

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
def api_on(server: RunningSimulator, clock: FakeClock, wall: FakeClock) -> Iterator[Api]:
    """Give a test a simulator running on these clocks, fresh, and an HTTP client."""
    with httpx.Client(timeout=5) as http:
        yield Api(http, fresh(server, wall), clock, wall)


@pytest.fixture(scope="module")
def sim_clock() -> FakeClock:
    """The monotonic clock of the module's simulator: servers move through states as it goes."""
    return FakeClock(1000.0)


@pytest.fixture(scope="module")
def sim_wall() -> FakeClock:
    """The wall clock of the module's simulator (signature timestamps, createDate)."""
    return FakeClock(NOON_KST_2024)


@pytest.fixture(scope="module")
def module_simulator(sim_clock: FakeClock, sim_wall: FakeClock) -> Iterator[RunningSimulator]:
    """Run one threaded simulator on the module's fake clocks for the whole module."""
    with threaded(sim_clock, sim_wall) as simulator:
        yield simulator


@pytest.fixture
def api(
    module_simulator: RunningSimulator, sim_clock: FakeClock, sim_wall: FakeClock
) -> Iterator[Api]:
    """Give each test the module's simulator with the base settings and nothing in it."""
    with api_on(module_simulator, sim_clock, sim_wall) as fresh_api:
        yield fresh_api


def sim_config(**overrides: object) -> SimulatorConfig:
    """A simulator for the engine and fleet's commands: their keys, fast lifecycles."""
    base: dict[str, object] = {
        "access_key": SIM_ACCESS,
        "secret_key": SIM_SECRET,
        "create_seconds": 0.2,
        "setup_seconds": 0.2,
        "stop_seconds": 0.2,
        "terminate_seconds": 0.2,
        "seed": 11,
    }
    base.update(overrides)
    return SimulatorConfig(**base)  # type: ignore[arg-type]


def servers_by_name(state: dict[str, object]) -> dict[str, list[str]]:
    """The simulator's servers, name -> instance numbers."""
    out: dict[str, list[str]] = {}
    for s in state["servers"]:  # type: ignore[attr-defined]
        out.setdefault(s["serverName"], []).append(s["serverInstanceNo"])
    return out
