"""Waiting for RUN and tearing a rollout down, against the simulator over loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.lifecycle import teardown, teardown_targets, wait_running
from fleet.provisioner import Provisioner
from fleet.simulator import running_simulator
from tests.functional.fleetkit import client_for, roll_out, sim_config, specs

pytestmark = pytest.mark.anyio


async def test_wait_polls_in_batches_until_every_server_runs(tmp_path: Path) -> None:
    """Created servers are polled a batch per call until RUN, with the seconds each took."""
    plan = specs(150)
    with running_simulator(sim_config(create_seconds=0.3, setup_seconds=0.3)) as sim:
        book = Ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "w", plan)
            lists_before = sim.state()["counters"]["by_action"]["getServerInstanceList"]
            report = await wait_running(client, book, "w", interval=0.2, time_limit=30)
            polls = sim.state()["counters"]["by_action"]["getServerInstanceList"] - lists_before
    assert len(report.running) == 150
    assert not report.failed
    assert not report.timed_out
    records = book.records("w")
    assert {r.server_status for r in records} == {"RUN"}
    assert all(r.run_seconds is not None and 0.5 <= r.run_seconds < 10 for r in records)
    # 150 servers in batches of 100, each batch paged 100 at a time: a few calls a round,
    # never one per server.
    assert polls < 40


async def test_wait_records_timeouts_with_the_last_status(tmp_path: Path) -> None:
    """A server that is not RUN in time is a failure carrying the status NCP reported."""
    plan = specs(2)
    with running_simulator(sim_config(create_seconds=60)) as sim:
        book = Ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "slow", plan)
            report = await wait_running(client, book, "slow", interval=0.1, time_limit=0.3)
    assert report.timed_out == {"web-001": "INIT", "web-002": "INIT"}
    r = book.record("slow", "web-001")
    assert r is not None
    assert (r.error_kind, r.error_code) == ("timeout", "INIT")
    assert "not RUN after" in (r.error_message or "")


async def test_teardown_stops_terminates_and_finds_lost_creates(tmp_path: Path) -> None:
    """Recorded servers and a lost create go; a server never sent under a planned name stays."""
    plan = specs(5)
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            engine = Provisioner(client, book, "t", settle_seconds=0)
            pre = await engine.preflight(plan)
            await engine.provision(pre.to_create[:4])
            # Sent, created, answer lost: in flight in the ledger, with no number.
            book.mark_in_flight("t", plan[4].name)
            await client.create_server(plan[4].params)
            # Someone else's server with a planned name this rollout never sent: not ours.
            (stranger,) = specs(1, prefix="web", start=6)
            book.plan("t", [stranger])
            await client.create_server(stranger.params)
            await wait_running(client, book, "t", interval=0.1, time_limit=30)
            targets = await teardown_targets(client, book, "t")
            assert sorted(t.name for t in targets) == [s.name for s in plan]
            assert [t.recorded for t in targets].count(False) == 1
            report = await teardown(client, book, "t", targets, interval=0.1, time_limit=30)
        state = sim.state()
    assert sorted(report.terminated) == [s.name for s in plan]
    assert [s["serverName"] for s in state["servers"]] == ["web-006"]
    records = [r for r in book.records("t") if r.name != "web-006"]
    assert {r.teardown for r in records} == {"terminated"}
    assert all(r.instance_no and r.terminated_at for r in records)


async def test_teardown_leaves_protected_servers_unless_asked(tmp_path: Path) -> None:
    """Termination protection is respected, and lifted only with lift_protection."""
    plan = specs(2)
    protected = [
        type(s)(s.name, s.file, s.line, (*s.params, ("isProtectServerTermination", "true")))
        for s in plan
    ]
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "p", protected)
            targets = await teardown_targets(client, book, "p")
            first = await teardown(client, book, "p", targets, interval=0.1, time_limit=30)
            assert sorted(first.protected) == ["web-001", "web-002"]
            assert len(sim.state()["servers"]) == 2
            targets = await teardown_targets(client, book, "p")
            second = await teardown(
                client, book, "p", targets, lift_protection=True, interval=0.1, time_limit=30
            )
        state = sim.state()
    assert sorted(second.terminated) == ["web-001", "web-002"]
    assert state["servers"] == []


async def test_teardown_rerun_after_a_crash_picks_up_where_it_stopped(tmp_path: Path) -> None:
    """Servers already gone are not touched again; the rest are finished."""
    plan = specs(3)
    with running_simulator(sim_config()) as sim:
        book = Ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "c", plan)
            await wait_running(client, book, "c", interval=0.1, time_limit=30)
            targets = await teardown_targets(client, book, "c")
            # The first run only gets as far as stopping (time limit hit mid-way).
            await teardown(client, book, "c", targets[:1], interval=0.1, time_limit=30)
            await client.stop_servers([t.instance_no for t in targets[1:]])
            again = await teardown_targets(client, book, "c")
            assert [t.name for t in again] == ["web-002", "web-003"]
            report = await teardown(client, book, "c", again, interval=0.1, time_limit=30)
        state = sim.state()
    assert sorted(report.terminated) == ["web-002", "web-003"]
    assert state["servers"] == []
