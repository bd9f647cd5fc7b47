"""The engine in tests: servers to create, a client and a ledger on a simulator, a rollout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from fleet.config import Credentials
from fleet.create.engine import Provisioner
from fleet.ledger import AsyncLedger, Ledger, Record
from fleet.ncp.client import NcpClient, RetryPolicy, ServerInstance
from fleet.ncp.ratelimit import AdaptiveRateLimiter
from fleet.options import ProvisionOptions, TeardownOptions
from fleet.plan.survey import Survey, survey
from fleet.planned import PlannedServer
from fleet.states import ServerStatus
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.simulator import servers_by_name

OWNER = "test-run"
# Quick settling for tests: trust 'not listed' 0.3 s after a send, look every 0.05 s.
FAST = ProvisionOptions(settle=0.3, settle_poll=0.05, concurrency=16)
# Quick teardowns for tests: poll every 0.1 s, for 30 s at most.
QUICK = TeardownOptions(poll_interval=0.1, time_limit=30)


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
) -> list[PlannedServer]:
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
        out.append(PlannedServer(name, "inventories/test.csv", i + 1, params))
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
        Credentials(SIM_ACCESS, SIM_SECRET, "test"),
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
        assert r.state.kept, (r.name, r.state, r.error_message)
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
    plan: list[PlannedServer],
    options: ProvisionOptions = FAST,
) -> tuple[Provisioner, Survey]:
    """Survey and create a rollout's servers; return the engine used and the survey."""
    worker = engine(client, book, rollout, options)
    found = await survey(client, book, rollout, plan, owner=OWNER)
    await worker.provision(found.work)
    return worker, found


async def until_server(
    client: NcpClient, no: str, done: Callable[[list[ServerInstance]], bool]
) -> None:
    """Read one server by number until ``done`` holds for what NCP lists (10 s at most)."""
    for _ in range(200):
        if done(await client.get_servers([no])):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"server {no} never got there")


async def stop_out_of_band(client: NcpClient, no: str) -> None:
    """Stop a server as the console would, and wait until it is stopped."""
    await client.stop_servers([no])
    await until_server(client, no, lambda s: bool(s) and s[0].status == ServerStatus.NSTOP)


async def terminate_out_of_band(client: NcpClient, no: str) -> None:
    """Terminate a server as another tool would, and wait until NCP no longer lists it."""
    await stop_out_of_band(client, no)
    await client.terminate_servers([no])
    await until_server(client, no, lambda s: not s)
