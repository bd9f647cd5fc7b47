"""Keeping the fleet at its inventory: refusals that clear, drift refreshed, actions applied.

Each test plays one way a nightly rollout left NCP unlike its inventory (issue "Scheduled
rollouts that keep the fleet at its inventory") on the simulator over loopback HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.ledger import State
from fleet.plan.changes import Action, plan_changes
from fleet.plan.refresh import start_stopped
from fleet.plan.survey import survey
from fleet.planned import PlannedServer
from fleet.reshape.resize import Pace, destroy, replace, resize
from fleet.simulator import running_simulator
from fleet.watch.readiness import wait_running
from tests.support.engine import (
    OWNER,
    QUICK,
    assert_each_once,
    client_for,
    open_ledger,
    roll_out,
    specs,
    stop_out_of_band,
    terminate_out_of_band,
    until_server,
)
from tests.support.simulator import servers_by_name, sim_config

pytestmark = pytest.mark.anyio


async def test_a_quota_refusal_clears_on_the_next_run_once_the_quota_allows(
    tmp_path: Path,
) -> None:
    """Refused for the account's server limit, sent again unasked once it is raised."""
    plan = specs(5)
    (bad,) = specs(1, "bad")
    refused = bad.__class__(
        bad.name, bad.file, bad.line, tuple(p for p in bad.params if p[0] != "serverSpecCode")
    )
    with running_simulator(sim_config(max_servers=3)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "quota", [*plan, refused])
            failed = {r.name: r.error_code for r in book.sync.records("quota") if r.error_code}
            assert sorted(failed.values()) == ["1015009", "1015009", "900003"]
            sim.configure(max_servers=100)  # the quota is raised
            _, found = await roll_out(client, book, "quota", [*plan, refused])
        state = sim.state()
    # Sent at once, the creates reach NCP in any order: the quota refused whichever came last.
    assert sorted(found.delta.retried) == sorted(n for n, c in failed.items() if c == "1015009")
    assert found.skipped_failed == ("bad-001",)  # refused for the row itself: stays failed
    records = book.sync.records("quota")
    assert_each_once(state, [r for r in records if r.name != "bad-001"], n=5)
    assert next(r for r in records if r.name == "bad-001").state == State.FAILED


async def test_servers_terminated_or_stopped_out_of_band_are_recreated_and_started(
    tmp_path: Path,
) -> None:
    """Gone twice by number: created again under its name; stopped: started; both in the plan."""
    plan = specs(4)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "drift", plan)
            await wait_running(client, book, "drift", interval=0.1, time_limit=30)
            numbers = {r.name: str(r.instance_no) for r in book.sync.records("drift")}
            await terminate_out_of_band(client, numbers["web-002"])
            await stop_out_of_band(client, numbers["web-003"])
            looked = await survey(client, book, "drift", plan, owner=None, pause=0.1)
            assert looked.gone == ("web-002",)
            assert [s.name for s in looked.stopped] == ["web-003"]
            assert [s.name for s in looked.to_create] == ["web-002"]  # the plan shows it
            _, found = await roll_out(client, book, "drift", plan)
            assert found.gone == ("web-002",) and found.delta.renewed == ("web-002",)
            assert await start_stopped(client, book, "drift", found.stopped) == ["web-003"]
            report = await wait_running(client, book, "drift", interval=0.1, time_limit=30)
            assert sorted(report.running) == [s.name for s in plan]
            again = await survey(client, book, "drift", plan, owner=OWNER, pause=0.1)
        state = sim.state()
    assert again.to_create == () and again.gone == () and again.stopped == ()
    records = book.sync.records("drift")
    assert_each_once(state, records, n=4, exact=True)
    web2 = [i for i in book.sync.instances("drift") if i.name == "web-002"]
    assert sorted(i.instance_no for i in web2) == sorted(
        [numbers["web-002"], next(str(r.instance_no) for r in records if r.name == "web-002")]
    )  # both in the history


async def test_a_server_not_listed_yet_is_never_taken_for_gone(tmp_path: Path) -> None:
    """Recorded from its create's answer, not listed yet (a lagging list): not recreated."""
    plan = specs(2)
    with running_simulator(sim_config(list_lag=1.0)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "lag", plan)
            found = await survey(client, book, "lag", plan, owner=OWNER, pause=0.1)
        state = sim.state()
    assert found.gone == () and found.to_create == ()
    assert_each_once(state, book.sync.records("lag"), n=2, exact=True)


def with_image(spec: PlannedServer, image: str) -> PlannedServer:
    """The same server from an edited row: another image."""
    params = tuple((k, image if k == "serverImageNo" else v) for k, v in spec.params)
    return PlannedServer(spec.name, spec.file, spec.line, params)


async def test_a_lowered_count_and_a_removed_row_are_destroyed_only_when_asked(
    tmp_path: Path,
) -> None:
    """The plan shows destroy for servers gone from the inventory; only --prune takes them."""
    plan = specs(4) + specs(2, "old")
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "prune", plan)
            now = plan[:2]  # count 4 -> 2, and the "old" row removed
            found = await survey(client, book, "prune", now, owner=OWNER, pause=0.1)
            records = book.sync.records("prune")
            changes = plan_changes(now, records, found)
            assert [(c.name, c.action) for c in changes] == [
                (n, Action.DESTROY) for n in ("old-001", "old-002", "web-003", "web-004")
            ]
            assert len(servers_by_name(sim.state())) == 6  # nothing taken without --prune
            report = await destroy(client, book, "prune", changes, QUICK)
            assert sorted(report.terminated) == ["old-001", "old-002", "web-003", "web-004"]
            after = await survey(client, book, "prune", now, owner=OWNER, pause=0.1)
            left = plan_changes(now, book.sync.records("prune"), after)
        state = sim.state()
    assert left == []
    assert sorted(servers_by_name(state)) == ["web-001", "web-002"]


async def test_an_image_change_replaces_under_the_same_name_new_before_old(
    tmp_path: Path,
) -> None:
    """Replaced: a new number under the same name, running before the old one goes; both kept."""
    plan = specs(2)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            worker, _ = await roll_out(client, book, "swap", plan)
            await wait_running(client, book, "swap", interval=0.1, time_limit=30)
            old = {r.name: str(r.instance_no) for r in book.sync.records("swap")}
            edited = [with_image(plan[0], "23214590"), plan[1]]
            found = await survey(client, book, "swap", edited, owner=OWNER, pause=0.1)
            changes = plan_changes(edited, book.sync.records("swap"), found)
            (change,) = changes
            assert (change.name, change.action) == ("web-001", Action.REPLACE)
            assert change.fields == (("serverImageNo", "25495367", "23214590"),)
            done = await replace(worker, changes, edited, QUICK, Pace(interval=0.1, time_limit=30))
            assert done.done == ["web-001"] and not done.failed
            after = await survey(client, book, "swap", edited, owner=OWNER, pause=0.1)
            assert plan_changes(edited, book.sync.records("swap"), after) == []
        state = sim.state()
    new = book.sync.record("swap", "web-001")
    assert new is not None and new.instance_no != old["web-001"]
    assert servers_by_name(state) == {"web-001": [new.instance_no], "web-002": [old["web-002"]]}
    history = {i.instance_no: i.role for i in book.sync.instances("swap") if i.name == "web-001"}
    assert history == {old["web-001"]: "replaced", str(new.instance_no): "primary"}


def with_spec(spec: PlannedServer, code: str) -> PlannedServer:
    """The same server from an edited row: another server spec."""
    params = tuple((k, code if k == "serverSpecCode" else v) for k, v in spec.params)
    return PlannedServer(spec.name, spec.file, spec.line, params)


async def test_a_spec_change_is_resized_in_place_and_a_refused_one_reported(
    tmp_path: Path,
) -> None:
    """Same product type: stopped, changed, started, same number. Another type: NCP says no."""
    plan = specs(2)
    with running_simulator(sim_config(start_seconds=0.2, change_seconds=0.2)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "size", plan)
            await wait_running(client, book, "size", interval=0.1, time_limit=30)
            old = {r.name: str(r.instance_no) for r in book.sync.records("size")}
            edited = [with_spec(plan[0], "s4-g3"), with_spec(plan[1], "c8-g3")]
            found = await survey(client, book, "size", edited, owner=OWNER, pause=0.1)
            changes = plan_changes(edited, book.sync.records("size"), found)
            assert [(c.name, c.action, c.fields) for c in changes] == [
                ("web-001", Action.RESIZE, (("serverSpecCode", "s2-g3", "s4-g3"),)),
                ("web-002", Action.RESIZE, (("serverSpecCode", "s2-g3", "c8-g3"),)),
            ]
            pace = Pace(interval=0.1, time_limit=30)
            done = await resize(client, book, "size", changes, edited, pace)
            assert done.done == ["web-001"] and list(done.failed) == ["web-002"]
            report = await wait_running(client, book, "size", interval=0.1, time_limit=30)
            assert sorted(report.running) == ["web-001", "web-002"]  # both run again
            live = {s.name: s.spec_code for s in await client.list_servers()}
            after = await survey(client, book, "size", edited, owner=OWNER, pause=0.1)
            left = plan_changes(edited, book.sync.records("size"), after)
    assert live == {"web-001": "s4-g3", "web-002": "s2-g3"}
    assert {r.name: str(r.instance_no) for r in book.sync.records("size")} == old
    assert [(c.name, c.action) for c in left] == [("web-002", Action.RESIZE)]


async def test_a_spec_changed_by_hand_is_drift_resized_back(tmp_path: Path) -> None:
    """The console changed a server's spec: the plan resizes it back to the inventory's."""
    plan = specs(1)
    with running_simulator(sim_config(start_seconds=0.2, change_seconds=0.2)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "hand", plan)
            await wait_running(client, book, "hand", interval=0.1, time_limit=30)
            (record,) = book.sync.records("hand")
            number = str(record.instance_no)
            await stop_out_of_band(client, number)
            await client.change_spec(number, spec_code="s4-g3")
            await until_server(client, number, lambda s: s[0].operation == "NULL")
            await client.start_servers([number])
            found = await survey(client, book, "hand", plan, owner=OWNER, pause=0.1)
            changes = plan_changes(plan, book.sync.records("hand"), found)
    assert [(c.name, c.action, c.fields) for c in changes] == [
        ("web-001", Action.RESIZE, (("serverSpecCode", "s4-g3", "s2-g3"),))
    ]


async def test_prune_never_takes_an_adopted_server(tmp_path: Path) -> None:
    """A server fleet adopted but never made, removed from the inventory, is not destroyed."""
    (theirs,) = specs(1, "theirs")
    ours = specs(1)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db", "adopt")
        async with client_for(sim.url) as client:
            await client.create_server(theirs.params)  # made by someone else, then adopted
            await survey(client, book, "adopt", [theirs, *ours], owner=OWNER, adopt_existing=True)
            await roll_out(client, book, "adopt", [theirs, *ours])
            found = await survey(client, book, "adopt", [], owner=OWNER, pause=0.1)
            changes = plan_changes([], book.sync.records("adopt"), found)
            assert {(c.name, c.action) for c in changes} == {
                ("theirs-001", Action.DESTROY),
                ("web-001", Action.DESTROY),
            }
            report = await destroy(client, book, "adopt", changes, QUICK)
        state = sim.state()
    assert report.terminated == ["web-001"]
    assert sorted(servers_by_name(state)) == ["theirs-001"]
