"""Tearing a rollout down, against the simulator over loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger import State
from fleet.plan.survey import survey
from fleet.planned import PlannedServer
from fleet.simulator import running_simulator
from fleet.teardown import teardown, teardown_targets
from fleet.watch.readiness import wait_running
from tests.support.engine import OWNER, QUICK, client_for, open_ledger, roll_out, specs
from tests.support.simulator import sim_config

pytestmark = pytest.mark.anyio


async def test_teardown_stops_terminates_and_finds_lost_creates(tmp_path: Path) -> None:
    """Recorded servers and a lost create go; a server never sent under a planned name stays."""
    plan = specs(5)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "t", plan[:4])
            (stranger,) = specs(1, prefix="web", start=6)
            await survey(client, book, "t", [*plan, stranger], owner=OWNER)
            # Sent, created, answer lost: in flight in the ledger, with no number.
            book.sync.claim("t", plan[4], OWNER)
            await client.create_server(plan[4].params)
            # Someone else's server with a planned name this rollout never sent: not ours.
            await client.create_server(stranger.params)
            await wait_running(client, book, "t", interval=0.1, time_limit=30)
            targets = (await teardown_targets(client, book, "t")).targets
            assert sorted(t.name for t in targets) == [s.name for s in plan]
            assert [t.recorded for t in targets].count(False) == 1
            report = await teardown(client, book, "t", targets, QUICK)
        state = sim.state()
    assert sorted(report.terminated) == [s.name for s in plan]
    assert [s["serverName"] for s in state["servers"]] == ["web-006"]
    records = [r for r in book.sync.records("t") if r.name != "web-006"]
    assert {r.state for r in records} == {State.TERMINATED}
    assert all(r.instance_no and r.terminated_at for r in records)


async def test_teardown_leaves_protected_servers_unless_asked(tmp_path: Path) -> None:
    """Termination protection is respected, and lifted only with lift_protection."""
    protected = [
        PlannedServer(s.name, s.file, s.line, (*s.params, ("isProtectServerTermination", "true")))
        for s in specs(2)
    ]
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "p", protected)
            targets = (await teardown_targets(client, book, "p")).targets
            first = await teardown(client, book, "p", targets, QUICK)
            assert sorted(first.protected) == ["web-001", "web-002"]
            assert len(sim.state()["servers"]) == 2
            targets = (await teardown_targets(client, book, "p")).targets
            lifting = QUICK.model_copy(update={"lift_protection": True})
            second = await teardown(client, book, "p", targets, lifting)
        state = sim.state()
    assert sorted(second.terminated) == ["web-001", "web-002"]
    assert state["servers"] == []


async def test_teardown_rerun_after_a_crash_picks_up_where_it_stopped(tmp_path: Path) -> None:
    """Servers already gone are not touched again; the rest are finished."""
    plan = specs(3)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "c", plan)
            await wait_running(client, book, "c", interval=0.1, time_limit=30)
            targets = (await teardown_targets(client, book, "c")).targets
            # The first run only gets as far as one server; the others were being stopped.
            await teardown(client, book, "c", targets[:1], QUICK)
            await client.stop_servers([t.instance_no for t in targets[1:]])
            again = (await teardown_targets(client, book, "c")).targets
            assert [t.name for t in again] == ["web-002", "web-003"]
            report = await teardown(client, book, "c", again, QUICK)
        state = sim.state()
    assert sorted(report.terminated) == ["web-002", "web-003"]
    assert state["servers"] == []
