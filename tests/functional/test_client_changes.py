"""The client's start and spec change against the simulator over loopback HTTP."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from fleet.errors import AmbiguousError, PermanentError
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.simulator import RunningSimulator, running_simulator
from fleet.states import Operation, ServerStatus
from tests.functional.fleetkit import client_for, sim_config, specs

pytestmark = pytest.mark.anyio

QUICK = {"start_seconds": 0.2, "change_seconds": 0.2}


async def until(
    client: NcpClient, no: str, status: ServerStatus, op: Operation = Operation.NULL
) -> ServerInstance:
    """Poll the server until it has that status and operation (a guard, not a timing check)."""
    with anyio.fail_after(30):
        while True:
            found = await client.get_servers([no])
            if found and (found[0].status, found[0].operation) == (status, op):
                return found[0]
            await anyio.sleep(0.05)


async def stopped_server(client: NcpClient, description: str = "") -> str:
    """Create one KVM server (25495367, s2-g3), wait for RUN, stop it; return its number."""
    params: Any = specs(1)[0].params
    if description:
        params = (*params, ("serverDescription", description))
    (server,) = (await client.create_server(params)).servers
    await until(client, server.instance_no, ServerStatus.RUN)
    await client.stop_servers([server.instance_no])
    await until(client, server.instance_no, ServerStatus.NSTOP)
    return server.instance_no


async def act(client: NcpClient, action: str, no: str) -> None:
    """Send one start, or one change to s4-g3, through the client's own method."""
    if action == "startServerInstances":
        await client.start_servers([no])
    else:
        await client.change_spec(no, spec_code="s4-g3")


def sent(sim: RunningSimulator, action: str) -> int:
    """Return how many calls of an action the simulator received."""
    return len(sim.calls(action))


async def test_change_spec_then_start_keeps_the_number_and_lists_the_codes() -> None:
    """A stopped server changes spec in place (op CHNG), lists the new codes, and starts to RUN."""
    with running_simulator(sim_config(**QUICK)) as sim:
        async with client_for(sim.url) as client:
            no = await stopped_server(client, "web tier")
            before = (await client.get_servers([no]))[0]
            changing = await client.change_spec(no, spec_code="s4-g3")
            after = await until(client, no, ServerStatus.NSTOP)
            starting = await client.start_servers([no])
            running = await until(client, no, ServerStatus.RUN)
    assert (before.spec_code, before.product_code) == ("s2-g3", "SVR.VSVR.STAND.C002.M008.G003")
    assert (before.image_no, before.image_product_code) == ("25495367", "")
    assert before.description == "web tier"
    assert (changing.instance_no, changing.operation) == (no, Operation.CHNG)
    assert (after.spec_code, after.product_code) == ("s4-g3", "SVR.VSVR.STAND.C004.M016.G003")
    assert after.image_no == "25495367"
    assert [(s.instance_no, s.operation) for s in starting] == [(no, Operation.START)]
    assert (running.instance_no, running.spec_code) == (no, "s4-g3")


async def test_change_spec_by_product_code_for_a_xen_server() -> None:
    """A XEN server changes by serverProductCode; the listing shows the matching spec code too."""
    with running_simulator(sim_config(**QUICK)) as sim:
        async with client_for(sim.url) as client:
            xen = dict(specs(1)[0].params)
            xen.update(serverImageNo="16187005", serverSpecCode="s2-g2-s50")
            (server,) = (await client.create_server(list(xen.items()))).servers
            no = server.instance_no
            await until(client, no, ServerStatus.RUN)
            await client.stop_servers([no])
            await until(client, no, ServerStatus.NSTOP)
            bigger = "SVR.VSVR.STAND.C004.M016.NET.SSD.B050.G002"
            await client.change_spec(no, product_code=bigger)
            after = await until(client, no, ServerStatus.NSTOP)
    assert (after.spec_code, after.product_code) == ("s4-g2-s50", bigger)
    assert after.image_product_code == "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050"


@pytest.mark.parametrize("codes", [{}, {"spec_code": "s4-g3", "product_code": "SVR.X"}])
async def test_change_spec_takes_exactly_one_code(codes: dict[str, str]) -> None:
    """Neither code or both is the caller's mistake: ValueError, and nothing is sent."""
    with running_simulator(sim_config()) as sim:
        async with client_for(sim.url) as client:
            with pytest.raises(ValueError, match="exactly one"):
                await client.change_spec("10000001", **codes)
        assert sent(sim, "changeServerInstanceSpec") == 0


@pytest.mark.parametrize("action", ["changeServerInstanceSpec", "startServerInstances"])
async def test_refusals_on_a_running_server_are_permanent_and_sent_once(action: str) -> None:
    """A change or start of a running server is NCP's 400 refusal: permanent, not sent again."""
    with running_simulator(sim_config(**QUICK)) as sim:
        async with client_for(sim.url) as client:
            (server,) = (await client.create_server(specs(1)[0].params)).servers
            no = server.instance_no
            await until(client, no, ServerStatus.RUN)
            with pytest.raises(PermanentError) as caught:
                await act(client, action, no)
            listed = (await client.get_servers([no]))[0]
        assert (caught.value.status, caught.value.code) == (400, "900010")
        assert sent(sim, action) == 1
    assert (listed.status, listed.spec_code) == (ServerStatus.RUN, "s2-g3")


@pytest.mark.parametrize("action", ["changeServerInstanceSpec", "startServerInstances"])
async def test_ambiguous_change_or_start_is_not_sent_again(action: str) -> None:
    """A 504 after the simulator acted is ambiguous: raised after one call, never resent blind."""
    with running_simulator(sim_config(**QUICK)) as sim:
        async with client_for(sim.url) as client:
            no = await stopped_server(client)
            sim.faults({"action": action, "fault": "fail_after"})
            with pytest.raises(AmbiguousError):
                await act(client, action, no)
            assert sent(sim, action) == 1
            # It did act: a blind second call would meet a server in operation CHNG or START.
            listed = (await client.get_servers([no]))[0]
    assert listed.operation in (Operation.CHNG, Operation.START)


async def test_change_refused_before_processing_is_retried() -> None:
    """A 503 Endpoint Error means not processed: the client sends the change again, once more."""
    with running_simulator(sim_config(**QUICK)) as sim:
        async with client_for(sim.url) as client:
            no = await stopped_server(client)
            sim.faults({"action": "changeServerInstanceSpec", "fault": "fail_before"})
            changing = await client.change_spec(no, spec_code="s4-g3")
            after = await until(client, no, ServerStatus.NSTOP)
        assert sent(sim, "changeServerInstanceSpec") == 2
    assert (changing.operation, after.spec_code) == (Operation.CHNG, "s4-g3")
