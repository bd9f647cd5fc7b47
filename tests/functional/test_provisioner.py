"""The provisioning engine against the simulator over loopback HTTP, faults and all."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import RolloutError
from fleet.inventory import ServerSpec
from fleet.ledger import Ledger, State
from fleet.provisioner import Provisioner
from fleet.simulator import running_simulator
from tests.functional.fleetkit import client_for, roll_out, servers_by_name, sim_config, specs

pytestmark = pytest.mark.anyio


def assert_exactly_once(state: dict[str, object], book: Ledger, rollout: str, n: int) -> None:
    """Every server exists once on NCP, and the ledger holds exactly that instance number."""
    on_ncp = servers_by_name(state)
    records = book.records(rollout)
    assert len(records) == n
    for r in records:
        assert r.state == State.CREATED, (r.name, r.state, r.error_message)
        assert on_ncp.get(r.name) == [r.instance_no], r.name


async def test_rollout_under_every_fault_creates_each_server_exactly_once(tmp_path: Path) -> None:
    """Under 503s, 504s, dropped connections, slow answers and 429s: no duplicate, none lost."""
    config = sim_config(
        rate=150,
        burst=5,
        fail_before=0.1,
        fail_after=0.1,
        drop_after=0.1,
        slow=0.05,
        slow_seconds=1.5,
    )
    plan = specs(80)
    with running_simulator(config) as sim:
        book = Ledger(tmp_path / "ledger.db")
        # Faster than the gateway allows, and a timeout shorter than the slow answers.
        async with client_for(sim.url, rate=400, timeout=0.5) as client:
            engine = Provisioner(client, book, "faults", settle_seconds=0)
            pre = await engine.preflight(plan)
            assert len(pre.to_create) == 80
            await engine.provision(pre.to_create)
            throttled = client.stats.throttled
        state = sim.state()
    faults = state["counters"]["faults"]
    assert all(faults[k] > 0 for k in ("fail_before", "fail_after", "drop_after", "slow")), faults
    assert throttled > 0
    assert_exactly_once(state, book, "faults", 80)
    assert engine.progress.created == 80 and engine.progress.failed == 0


async def test_permanent_errors_are_recorded_and_do_not_stop_the_others(tmp_path: Path) -> None:
    """A server NCP refuses is recorded with NCP's code and message; the rest are created."""
    good = specs(5)
    (bad,) = specs(1, prefix="bad")
    # serverImageNo without serverSpecCode: NCP refuses the pairing.
    bad = ServerSpec(
        bad.name, bad.file, bad.line, tuple(p for p in bad.params if p[0] != "serverSpecCode")
    )
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            engine = Provisioner(client, book, "mixed", settle_seconds=0)
            await engine.preflight([*good, bad])
            await engine.provision([*good, bad])
    failed = book.record("mixed", "bad-001")
    assert failed is not None
    assert (failed.state, failed.error_kind, failed.http_status) == ("failed", "permanent", 400)
    assert failed.error_code == "900003" and "serverSpecCode" in (failed.error_message or "")
    assert failed.attempts == 1
    assert [r.state for r in book.records("mixed") if r.name != "bad-001"] == ["created"] * 5


async def test_rerun_reconciles_in_flight_servers_and_creates_only_the_rest(
    tmp_path: Path,
) -> None:
    """After a stop mid-way, a rerun finds in-flight servers by name and sends only the missing."""
    plan = specs(6)
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            engine = Provisioner(client, book, "resume", settle_seconds=0)
            await engine.preflight(plan)
            await engine.provision(plan[:2])  # created and recorded
            # Sent but the answer lost with the process: it exists, the ledger says in flight.
            book.mark_in_flight("resume", plan[2].name)
            await client.create_server(plan[2].params)
            # Marked in flight, then the process died before sending.
            book.mark_in_flight("resume", plan[3].name)
            calls_before = sim.state()["counters"]["by_action"].get("createServerInstances", 0)
            pre = await Provisioner(client, book, "resume", settle_seconds=0).preflight(plan)
            assert pre.done == (plan[0].name, plan[1].name)
            assert pre.reconciled == (plan[2].name,)
            assert [s.name for s in pre.to_create] == [p.name for p in plan[3:]]
            await engine.provision(pre.to_create)
        state = sim.state()
    assert state["counters"]["by_action"]["createServerInstances"] - calls_before == 3
    assert_exactly_once(state, book, "resume", 6)


async def test_existing_names_that_are_not_ours_stop_the_rollout_unless_adopted(
    tmp_path: Path,
) -> None:
    """A name already taken in the VPC by someone else is an error, or adopted when asked."""
    plan = specs(3)
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            await client.create_server(plan[1].params)  # someone else's server
            engine = Provisioner(client, book, "owned", settle_seconds=0)
            with pytest.raises(RolloutError, match="web-002") as caught:
                await engine.preflight(plan)
            assert "--adopt-existing" in str(caught.value)
            dry = await engine.preflight(plan, dry_run=True)
            assert dry.conflicts and dry.conflicts[0][0] == "web-002"
            pre = await engine.preflight(plan, adopt_existing=True)
            assert pre.adopted == ("web-002",)
            await engine.provision(pre.to_create)
        state = sim.state()
    assert_exactly_once(state, book, "owned", 3)
    adopted = book.record("owned", "web-002")
    assert adopted is not None and adopted.adopted == 1


async def test_a_changed_inventory_is_reported_not_ignored(tmp_path: Path) -> None:
    """Servers created with other parameters than the inventory now has are listed as changed."""
    plan = specs(2)
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            engine = await roll_out(client, book, "changes", plan)
            changed = [
                ServerSpec(s.name, s.file, s.line, (*s.params, ("loginKeyName", "ops-key")))
                for s in plan
            ]
            pre = await engine.preflight(changed)
    assert pre.delta.changed == ("web-001", "web-002")
    assert pre.to_create == ()


async def test_provisioning_the_same_servers_again_sends_nothing_twice(tmp_path: Path) -> None:
    """A retried chunk (same servers, no preflight) skips created ones, looks up in-flight ones."""
    plan = specs(4)
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            engine = Provisioner(client, book, "again", settle_seconds=0)
            await engine.preflight(plan)
            await engine.provision(plan[:2])
            # The third went out and landed, but its answer was lost with the task.
            book.mark_in_flight("again", plan[2].name)
            await client.create_server(plan[2].params)
            await engine.provision(plan)
        state = sim.state()
    assert state["counters"]["created"] == 4
    assert_exactly_once(state, book, "again", 4)
