"""The provisioning engine against the simulator over loopback HTTP, faults and all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.errors import ErrorKind, LedgerError, RolloutError
from fleet.ledger import Ledger, State
from fleet.plan.survey import survey
from fleet.planned import PlannedServer
from fleet.simulator import running_simulator
from tests.support.engine import (
    FAST,
    OWNER,
    assert_each_once,
    client_for,
    engine,
    open_ledger,
    roll_out,
    specs,
)
from tests.support.simulator import sim_config

pytestmark = pytest.mark.anyio


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
        book = open_ledger(tmp_path / "ledger.db")
        # Faster than the gateway allows, and a timeout shorter than the slow answers.
        async with client_for(sim.url, rate=400, timeout=0.5) as client:
            worker, found = await roll_out(client, book, "faults", plan)
            assert len(found.to_create) == 80
            throttled = client.stats.throttled
        state = sim.state()
    faults = state["counters"]["faults"]
    assert all(faults[k] > 0 for k in ("fail_before", "fail_after", "drop_after", "slow")), faults
    assert throttled > 0
    assert_each_once(state, book.sync.records("faults"), n=80)
    assert worker.progress.created == 80 and worker.progress.failed == 0


async def test_permanent_errors_are_recorded_and_do_not_stop_the_others(tmp_path: Path) -> None:
    """A server NCP refuses is recorded with NCP's code and message; the rest are created."""
    good = specs(5)
    (bad,) = specs(1, prefix="bad")
    # serverImageNo without serverSpecCode: NCP refuses the pairing.
    bad = PlannedServer(
        bad.name, bad.file, bad.line, tuple(p for p in bad.params if p[0] != "serverSpecCode")
    )
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "mixed", [*good, bad])
    failed = book.sync.record("mixed", "bad-001")
    assert failed is not None
    assert (failed.state, failed.error_kind, failed.http_status) == (
        State.FAILED,
        ErrorKind.PERMANENT,
        400,
    )
    assert failed.error_code == "900003" and "serverSpecCode" in (failed.error_message or "")
    assert failed.attempts == 1
    others = [r.state for r in book.sync.records("mixed") if r.name != "bad-001"]
    assert others == [State.CREATED] * 5


async def test_rerun_reconciles_in_flight_servers_and_creates_only_the_rest(
    tmp_path: Path,
) -> None:
    """After a stop mid-way, a rerun finds in-flight servers by name and sends only the missing."""
    plan = specs(6)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            worker, _ = await roll_out(client, book, "resume", plan[:2])  # created, recorded
            await survey(client, book, "resume", plan, owner=OWNER)
            # Sent, but the answer lost with the process: it exists, the ledger says in flight.
            book.sync.claim("resume", plan[2], OWNER)
            await client.create_server(plan[2].params)
            # Marked in flight, then the process died before sending.
            book.sync.claim("resume", plan[3], OWNER)
            calls_before = sim.state()["counters"]["by_action"].get("createServerInstances", 0)
            found = await survey(client, book, "resume", plan, owner=OWNER)
            assert found.done == (plan[0].name, plan[1].name)
            assert found.reconciled == (plan[2].name,)
            assert [s.name for s in found.unsettled] == [plan[3].name]
            assert [s.name for s in found.to_create] == [p.name for p in plan[4:]]
            await worker.provision(found.work)
        state = sim.state()
    # web-004 was looked up until the settle window passed, then sent: 3 creates in all.
    assert state["counters"]["by_action"]["createServerInstances"] - calls_before == 3
    assert_each_once(state, book.sync.records("resume"), n=6)


async def test_existing_names_that_are_not_ours_stop_the_rollout_unless_adopted(
    tmp_path: Path,
) -> None:
    """A name already taken in the VPC by someone else is an error, or adopted when asked."""
    plan = specs(3)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db", "owned")
        async with client_for(sim.url) as client:
            await client.create_server(plan[1].params)  # someone else's server
            with pytest.raises(RolloutError, match="web-002") as caught:
                await survey(client, book, "owned", plan, owner=OWNER)
            assert "--adopt-existing" in str(caught.value)
            dry = await survey(client, book, "owned", plan, owner=None)
            assert dry.conflicts and dry.conflicts[0][0] == "web-002"
            found = await survey(client, book, "owned", plan, owner=OWNER, adopt_existing=True)
            assert found.adopted == ("web-002",)
            await engine(client, book, "owned").provision(found.work)
        state = sim.state()
    assert_each_once(state, book.sync.records("owned"), n=3)
    adopted = book.sync.record("owned", "web-002")
    assert adopted is not None and adopted.adopted


async def test_a_changed_inventory_is_reported_not_ignored(tmp_path: Path) -> None:
    """Servers created with other parameters than the inventory now has are listed as changed."""
    plan = specs(2)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "changes", plan)
            changed = [
                PlannedServer(s.name, s.file, s.line, (*s.params, ("loginKeyName", "ops-key")))
                for s in plan
            ]
            found = await survey(client, book, "changes", changed, owner=OWNER)
    assert found.delta.changed == ("web-001", "web-002")
    assert found.work == ()


async def test_provisioning_the_same_servers_again_sends_nothing_twice(tmp_path: Path) -> None:
    """A retried chunk (same servers, no survey) skips created ones, settles in-flight ones."""
    plan = specs(4)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            worker, _ = await roll_out(client, book, "again", plan[:2])
            await survey(client, book, "again", plan, owner=OWNER)
            # The third went out and landed, but its answer was lost with the task.
            book.sync.claim("again", plan[2], OWNER)
            await client.create_server(plan[2].params)
            await worker.provision(plan)
        state = sim.state()
    assert state["counters"]["created"] == 4
    assert_each_once(state, book.sync.records("again"), n=4)


async def test_an_outcome_the_ledger_could_not_keep_fails_the_run_and_a_rerun_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outcome written unawaited and lost fails the run; the rerun finds its server by name."""
    plan = specs(6)
    record_created = Ledger.record_created

    def flaky(self: Ledger, rollout: str, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "web-003" and kwargs.get("origin", "answer") == "answer":
            raise LedgerError("ledger test.db: disk I/O error")
        record_created(self, rollout, name, *args, **kwargs)

    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        async with client_for(sim.url) as client:
            monkeypatch.setattr(Ledger, "record_created", flaky)
            with pytest.raises(LedgerError, match="disk I/O"):
                await roll_out(client, book, "lost", plan)
            assert book.sync.record("lost", "web-003").state == State.IN_FLIGHT  # type: ignore[union-attr]
            monkeypatch.setattr(Ledger, "record_created", record_created)
            await roll_out(client, book, "lost", plan, FAST)
        state = sim.state()
    assert state["counters"]["created"] == 6
    assert_each_once(state, book.sync.records("lost"), n=6)


async def test_a_server_whose_look_ups_keep_failing_keeps_ncps_answer_to_them(
    tmp_path: Path,
) -> None:
    """Left in flight when every look-up failed: its row says why, with NCP's code and message."""
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            worker = engine(client, book, "blind")
            found = await survey(client, book, "blind", specs(1), owner=OWNER)
            sim.faults(
                {"action": "createServerInstances", "fault": "drop_after", "serverName": "web-001"},
                {"action": "getServerInstanceList", "fault": "fail_before", "times": 1000},
            )
            await worker.provision(found.work)
    assert worker.progress.unknown == 1
    record = book.sync.record("blind", "web-001")
    assert record is not None and record.state == State.IN_FLIGHT
    assert record.error_message is not None and record.error_message.startswith("look-up failed")
    assert record.error_code is not None


async def test_the_engine_says_it_has_nothing_left_to_send_before_its_look_ups_end(
    tmp_path: Path,
) -> None:
    """A lost answer's look-up does not hold the run's sending slot: drained comes first."""
    with running_simulator(sim_config()) as sim:
        sim.faults(
            {"action": "createServerInstances", "fault": "drop_after", "serverName": "web-001"}
        )
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            worker = engine(client, book, "drain")
            found = await survey(client, book, "drain", specs(3), owner=OWNER)
            told: list[int] = []

            def drained() -> None:
                told.append(worker.progress.done)

            await worker.provision(found.work, drained=drained)
    assert len(told) == 1  # once
    assert told[0] < 3  # web-001's lost answer was still to be looked up
    assert worker.progress.created == 3 and worker.ambiguous == 1
