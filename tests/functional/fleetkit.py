"""Helpers for functional tests: servers to create, and a client and a ledger for a simulator."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fleet.config import Credentials
from fleet.ledger import AsyncLedger, Ledger, Record, State
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.ncp.ratelimit import AdaptiveRateLimiter
from fleet.options import ProvisionOptions, TeardownOptions
from fleet.provisioner import Provisioner
from fleet.simulator import SimulatorConfig
from fleet.spec import ServerSpec
from fleet.survey import Survey, survey

ACCESS = "sim-access"
SECRET = "sim-secret-0123456789"
OWNER = "test-run"
# Quick settling for tests: trust 'not listed' 0.3 s after a send, look every 0.05 s.
FAST = ProvisionOptions(settle=0.3, settle_poll=0.05, concurrency=16)
# Quick teardowns for tests: poll every 0.1 s; gone after 3 reads without the server.
QUICK = TeardownOptions(poll_interval=0.1, time_limit=30, gone_after=3)


def sim_config(**overrides: object) -> SimulatorConfig:
    """A simulator with the test keys and fast lifecycles."""
    base: dict[str, object] = {
        "access_key": ACCESS,
        "secret_key": SECRET,
        "create_seconds": 0.2,
        "setup_seconds": 0.2,
        "stop_seconds": 0.2,
        "terminate_seconds": 0.2,
        "seed": 11,
    }
    base.update(overrides)
    return SimulatorConfig(**base)  # type: ignore[arg-type]


# Where the simulator's default catalog has a VPC and a subnet, per region.
NETWORKS = {"": ("75001", "75101"), "KR": ("75001", "75101"), "JPN": ("3001", "3101")}


def specs(
    n: int,
    prefix: str = "web",
    vpc: str | None = None,
    *,
    start: int = 1,
    region: str = "",
    subnet: str | None = None,
) -> list[ServerSpec]:
    """Return n valid servers named prefix-001..., as an inventory would expand them."""
    vpc = vpc or NETWORKS[region][0]
    subnet = subnet or NETWORKS[region][1]
    out = []
    for i in range(start, start + n):
        name = f"{prefix}-{i:03d}"
        params: tuple[tuple[str, str], ...] = (
            ("serverImageNo", "25495367"),
            ("serverSpecCode", "s2-g3"),
            ("vpcNo", vpc),
            ("subnetNo", subnet),
            ("serverCreateCount", "1"),
            ("serverName", name),
            ("networkInterfaceList.1.networkInterfaceOrder", "0"),
        )
        if region:
            params = (("regionCode", region), *params)
        out.append(ServerSpec(name, "inventories/test.csv", i + 1, params))
    return out


def client_for(
    url: str,
    *,
    rate: float = 500,
    burst: int = 10,
    concurrency: int = 16,
    timeout: float = 5.0,
    retry: RetryPolicy | None = None,
) -> NcpClient:
    """A client on the simulator with quick retries (tests must not idle in back-off)."""
    return NcpClient(
        Credentials(ACCESS, SECRET, "test"),
        url,
        limiter=AdaptiveRateLimiter(rate, burst, max_in_flight=concurrency),
        timeout=timeout,
        retry=retry or RetryPolicy(max_attempts=8, base=0.01, cap=0.1, deadline=60),
    )


def open_ledger(path: str | Path, rollout: str | None = None) -> AsyncLedger:
    """A ledger for async tests, holding ``rollout``'s lease for OWNER when named."""
    book = AsyncLedger(Ledger(path))
    if rollout is not None:
        book.sync.acquire(rollout, OWNER, "test run", ttl=600)
    return book


def servers_by_name(state: dict[str, object]) -> dict[str, list[str]]:
    """The simulator's servers, name -> instance numbers."""
    out: dict[str, list[str]] = {}
    for s in state["servers"]:  # type: ignore[attr-defined]
        out.setdefault(s["serverName"], []).append(s["serverInstanceNo"])
    return out


def assert_each_once(
    state: dict[str, object],
    records: Sequence[Record],
    *,
    n: int | None = None,
    exact: bool = False,
) -> None:
    """Every server of the records exists once on NCP, created in the ledger with that number.

    ``n``: the records must be that many. ``exact``: NCP holds no other server either.
    """
    on_ncp = servers_by_name(state)
    if n is not None:
        assert len(records) == n
    for r in records:
        assert r.state == State.CREATED, (r.name, r.state, r.error_message)
        assert on_ncp.get(r.name) == [r.instance_no], (r.name, on_ncp.get(r.name))
    if exact:
        assert set(on_ncp) == {r.name for r in records}


def engine(
    client: NcpClient, book: AsyncLedger, rollout: str, options: ProvisionOptions = FAST
) -> Provisioner:
    """An engine for the rollout, under OWNER's lease."""
    book.sync.acquire(rollout, OWNER, "test run", ttl=600)
    return Provisioner(client, book, rollout, OWNER, options)


async def roll_out(
    client: NcpClient,
    book: AsyncLedger,
    rollout: str,
    plan: list[ServerSpec],
    options: ProvisionOptions = FAST,
) -> tuple[Provisioner, Survey]:
    """Survey and create a rollout's servers; return the engine used and the survey."""
    worker = engine(client, book, rollout, options)
    found = await survey(client, book, rollout, plan, owner=OWNER)
    await worker.provision(found.work)
    return worker, found
