"""The client against the simulator over real loopback HTTP: signing, paging, errors, faults."""

from __future__ import annotations

import pytest

from fleet.config import Credentials
from fleet.errors import AmbiguousError, PermanentError
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.simulator import running_simulator
from tests.functional.fleetkit import client_for, sim_config, specs

pytestmark = pytest.mark.anyio


async def test_reads_every_page_and_matches_names_exactly() -> None:
    """With pages capped at 7, 21 servers take 3 calls; 'web-001' does not find 'aweb-001'."""
    with running_simulator(sim_config(max_page_size=7, page_size=7)) as sim:
        async with client_for(sim.url) as client:
            for spec in specs(20, prefix="web", start=1):
                await client.create_server(spec.params)
            # A name that contains another, as NCP's filter may match substrings.
            await client.create_server(specs(1, prefix="aweb")[0].params)  # aweb-001
            before = sim.state()["counters"]["by_action"].get("getServerInstanceList", 0)
            everything = await client.list_servers(vpc_no="75001")
            pages = sim.state()["counters"]["by_action"]["getServerInstanceList"] - before
            exact = await client.find_by_name("web-001")
            numbers = [s.instance_no for s in everything[:12]]
            batch = await client.get_servers(numbers)
    assert len(everything) == 21
    assert pages == 3
    assert [s.name for s in exact] == ["web-001"]
    assert sorted(s.instance_no for s in batch) == sorted(numbers)


@pytest.mark.parametrize(
    ("fault", "client_timeout"),
    [("fail_after", 5.0), ("drop_after", 5.0), ("slow", 0.3)],
)
async def test_faults_after_creating_are_ambiguous(fault: str, client_timeout: float) -> None:
    """A 504, a dropped connection and a too-slow answer all say: it may exist, look first."""
    with running_simulator(sim_config(**{fault: 1.0, "slow_seconds": 2.0})) as sim:
        async with client_for(sim.url, timeout=client_timeout) as client:
            with pytest.raises(AmbiguousError):
                await client.create_server(specs(1)[0].params)
        assert len(sim.state()["servers"]) == 1  # it did exist: a blind retry would duplicate


async def test_fail_before_is_retried_until_it_goes_through() -> None:
    """503 Endpoint Error happens before creating: the client sends again, one server results."""
    with running_simulator(sim_config(fail_before=0.6, seed=3)) as sim:
        async with client_for(sim.url) as client:
            result = await client.create_server(specs(1)[0].params)
        state = sim.state()
    assert state["counters"]["faults"]["fail_before"] >= 1
    assert [s["serverInstanceNo"] for s in state["servers"]] == [result.servers[0].instance_no]


async def test_wrong_secret_is_a_permanent_authentication_error() -> None:
    """A bad key is refused with 401 200 and not retried."""
    with running_simulator(sim_config()) as sim:
        client = NcpClient(
            Credentials("sim-access", "wrong-secret", "test"),
            sim.url,
            retry=RetryPolicy(base=0.01, cap=0.01),
        )
        async with client:
            with pytest.raises(PermanentError) as caught:
                await client.list_servers()
        assert (caught.value.status, caught.value.code) == (401, "200")
        assert "wrong-secret" not in str(caught.value)
        assert sim.state()["counters"]["requests"] == 1
