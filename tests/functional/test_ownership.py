"""Ownership as a fact: the create marker, one clock, fenced writes, proof before destruction.

Each test plays one way a rollout took servers it could not prove it made, or judged absence on
a clock or a listing it should not have trusted (issue "Own what we make"), on the simulator
over loopback HTTP and on both ledger backends where the ledger matters.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fleet.create.engine import Provisioner, marked
from fleet.errors import LeaseLost
from fleet.ledger import AsyncLedger, Found, Ledger, State
from fleet.ledger.leases import this_process
from fleet.ledger.schema import leases
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.ownership import Ground, Marker
from fleet.plan.survey import survey
from fleet.simulator import running_simulator
from fleet.teardown import teardown, teardown_targets
from tests.support.clock import FakeClock
from tests.support.engine import (
    FAST,
    OWNER,
    QUICK,
    assert_each_once,
    client_for,
    open_ledger,
    roll_out,
    specs,
)
from tests.support.simulator import servers_by_name, sim_config

pytestmark = pytest.mark.anyio


async def descriptions(client: NcpClient) -> dict[str, list[str]]:
    """The serverDescription of each server, as NCP lists them."""
    out: dict[str, list[str]] = {}
    for s in await client.list_servers():
        out.setdefault(s.name, []).append(str(s.raw["serverDescription"]))
    return out


async def test_every_create_carries_the_marker_after_the_users_description(
    tmp_path: Path,
) -> None:
    """The user's description is kept as written; the rollout's marker follows it, one per send."""
    (plain,) = specs(1)
    params = tuple((k, "web-002" if k == "serverName" else v) for k, v in plain.params)
    described = plain.__class__(
        "web-002", plain.file, 3, (*params, ("serverDescription", "front end, team A"))
    )
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            worker, _ = await roll_out(client, book, "mark", [plain, described])
            found = await descriptions(client)
        state = sim.state()
    own = book.sync.ownership("mark", window=60)
    first, second = found["web-001"][0], found["web-002"][0]
    assert first == f"fleet-{own.marker}-{worker.run}-1"
    assert second == f"front end, team A fleet-{own.marker}-{worker.run}-1"
    assert Marker.parse(second) == Marker(str(own.marker), worker.run, 1)
    assert_each_once(state, book.sync.records("mark"), n=2)


async def test_teardown_leaves_another_rollouts_servers_under_our_names(tmp_path: Path) -> None:
    """Killed with claims made ahead; another rollout makes those names: teardown leaves them."""
    ours, claimed = specs(2), specs(3, start=3)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db", "first")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "first", ours)
            await survey(client, book, "first", ours + claimed, owner=OWNER)
            book.sync.claim_many("first", claimed, OWNER, "0badc0de")  # killed before sending
            other = open_ledger(tmp_path / "other.db")
            await roll_out(client, other, "second", claimed)  # a copied inventory, same VPC
            scope = await teardown_targets(client, book, "first")
            assert sorted(t.name for t in scope.targets) == ["web-001", "web-002"]
            assert sorted(a.name for a in scope.left) == ["web-003", "web-004", "web-005"]
            assert {a.reason for a in scope.left} == {Ground.OTHER_MARKER.value}
            await teardown(client, book, "first", scope.targets, QUICK)
        state = sim.state()
    assert sorted(servers_by_name(state)) == ["web-003", "web-004", "web-005"]
    assert_each_once(state, other.sync.records("second"), n=3)


async def test_a_rerun_never_takes_another_rollouts_servers_for_its_own(tmp_path: Path) -> None:
    """Those names reused by another rollout are not reconciled by a rerun, nor sent twice."""
    claimed = specs(3)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db", "first")
        async with client_for(sim.url) as client:
            await survey(client, book, "first", claimed, owner=OWNER)
            book.sync.claim_many("first", claimed, OWNER, "0badc0de")  # killed before sending
            other = open_ledger(tmp_path / "other.db")
            await roll_out(client, other, "second", claimed)
            worker, found = await roll_out(client, book, "first", claimed)
        state = sim.state()
    assert found.reconciled == ()
    assert {n: len(nos) for n, nos in servers_by_name(state).items()} == dict.fromkeys(
        ["web-001", "web-002", "web-003"], 1
    )
    for record in book.sync.records("first"):
        assert record.state == State.FAILED and record.instance_no is None
        assert record.error_code == "fleet-name-taken"
    assert worker.progress.failed == 3


async def test_a_rerun_on_a_clock_ahead_does_not_judge_absence_early(ledger_url: str) -> None:
    """Killed under a lagging list; the rerun's clock is ahead: nothing twice, nothing lost."""
    plan = specs(4)
    lag, window, skew = 2.0, 2.5, 2.0  # the 40 s lag and 30 s skew, scaled down
    with running_simulator(sim_config(list_lag=lag)) as sim:
        book = AsyncLedger(Ledger(ledger_url))
        book.sync.acquire("skew", OWNER, "first run", ttl=600)
        async with client_for(sim.url) as client:
            await survey(client, book, "skew", plan, owner=OWNER)
            marker = book.sync.ownership("skew", window=window, new_marker="k3v9x2m7q1").marker
            assert marker is not None
            for spec in plan:  # each claimed and sent; the answers die with the process
                attempt = book.sync.claim("skew", spec, OWNER, "5f3a9c2e")
                await client.create_server(marked(spec.params, Marker(marker, "5f3a9c2e", attempt)))
            ahead = lambda: time.time() + skew  # noqa: E731 (the rerun's machine)
            options = FAST.model_copy(update={"settle": window, "settle_poll": 0.1})
            rerun = Provisioner(client, book, "skew", OWNER, options, clock=ahead)
            await rerun.provision(plan)
        state = sim.state()
    assert_each_once(state, book.sync.records("skew"), n=4, exact=True)


class SkippingList(NcpClient):
    """A client whose VPC listings skip one server, as a termination between two pages does."""

    skipped = "web-001"

    async def list_servers(self, **filters: object) -> list[ServerInstance]:  # type: ignore[override]
        found = await super().list_servers(**filters)  # type: ignore[arg-type]
        if filters.get("name") or filters.get("instance_nos"):
            return found  # a filtered read is whole
        return [s for s in found if s.name != self.skipped]


async def test_a_server_skipped_by_one_listing_is_not_taken_for_absent(tmp_path: Path) -> None:
    """Ambiguous creates looked up by a paged listing that misses one: it is read by name."""
    plan = specs(5)
    with running_simulator(sim_config()) as sim:
        # web-001 is made, its answer lost; the others' creates are answered 504 and commit
        # long after the test: at the window, five names are pending and looked up by listing.
        sim.configure(late_commit_seconds=60)
        sim.faults(
            {"action": "createServerInstances", "fault": "drop_after", "serverName": "web-001"},
            *(
                {"action": "createServerInstances", "fault": "late_commit", "serverName": s.name}
                for s in plan[1:]
            ),
        )
        book = open_ledger(tmp_path / "l.db")
        plain = client_for(sim.url)
        skipping = SkippingList(plain._credentials, sim.url, retry=plain.retry)
        async with plain, skipping:
            worker, _ = await roll_out(skipping, book, "skip", plan)
        state = sim.state()
    assert worker.ambiguous == 5  # a dropped connection and four 504s: every kind counted
    record = book.sync.record("skip", "web-001")
    assert record is not None and record.state == State.CREATED
    assert servers_by_name(state)["web-001"] == [record.instance_no]  # found, not sent again


async def test_the_failure_budget_is_checked_at_the_send(tmp_path: Path) -> None:
    """With 3 failures allowed and every name refused, creates stop at the 4th refusal."""
    refused = [
        s.__class__(s.name, s.file, s.line, tuple(p for p in s.params if p[0] != "serverSpecCode"))
        for s in specs(50)
    ]
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db", "budget")
        # Paced: each create leaves 50 ms after the last, while 16 workers wait for their turn.
        async with client_for(sim.url, rate=20, burst=1) as client:
            found = await survey(client, book, "budget", refused, owner=OWNER)
            worker = Provisioner(client, book, "budget", OWNER, FAST)
            await worker.provision(found.work, stop=lambda: worker.progress.failed > 3)
        sent = len(sim.calls("createServerInstances"))
    # The 4th refusal spends the budget; at most the one create already on the wire follows.
    assert 4 <= sent <= 5, sent
    records = book.sync.records("budget")
    assert sum(r.state == State.FAILED for r in records) == sent
    assert sum(r.state == State.PLANNED for r in records) == 50 - sent


async def test_a_run_that_lost_its_lease_writes_nothing(ledger_url: str) -> None:
    """A stalled run whose lease was taken over cannot record, fail or mark anything."""
    plan = specs(2)
    clock = FakeClock(1000.0)
    stale = Ledger(ledger_url, clock=clock)
    fresh = Ledger(ledger_url, clock=clock)
    try:
        stale.acquire("fence", "stale-run", "stalled run", ttl=60)
        stale.plan("fence", plan, owner="stale-run")
        stale.claim("fence", plan[0], "stale-run")
        clock.advance(120)  # stalled past its lease: another run takes the rollout over
        fresh.acquire("fence", "fresh-run", "next run", ttl=60)
        found = Found("9001", "", "75001", "INIT", None, {})
        writes = [
            lambda: stale.record_created("fence", "web-001", [found], request_id=None),
            lambda: stale.note_error("fence", "web-001", State.FAILED, "late"),  # type: ignore[arg-type]
            lambda: stale.move("fence", ["9001"], State.TERMINATING),
            lambda: stale.unclaim("fence", "web-001", 1),
        ]
        for write in writes:
            with pytest.raises(LeaseLost):
                write()
        record = fresh.record("fence", "web-001")
        assert record is not None and record.state == State.IN_FLIGHT
        assert fresh.instances("fence") == []
    finally:
        stale.close()
        fresh.close()


def _hold_as(ledger: Ledger, rollout: str, process: str) -> None:
    with ledger.db.transaction() as conn:
        conn.execute(leases.update().where(leases.c.rollout == rollout).values(process=process))


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(ledger_url: str) -> None:
    """A crashed run on this host does not hold its rollout for the lease's time to live."""
    with Ledger(ledger_url) as first, Ledger(ledger_url) as second:
        first.acquire("crash", "dead-run", "crashed run", ttl=600)
        host, boot, namespace, _, _ = this_process().split("|")
        _hold_as(first, "crash", f"{host}|{boot}|{namespace}|4194999|12345")  # no such process
        assert second.acquire("crash", "next-run", "next run", ttl=600).owner == "next-run"


def test_a_lease_held_elsewhere_waits_for_its_expiry(ledger_url: str) -> None:
    """A holder on another host (or a live process here) is never taken over early."""
    from fleet.errors import LeaseHeld

    with Ledger(ledger_url) as first, Ledger(ledger_url) as second:
        first.acquire("held", "live-run", "live run", ttl=600)
        with pytest.raises(LeaseHeld):
            second.acquire("held", "next-run", "next run", ttl=600)  # this very process
        _hold_as(first, "held", "otherhost|boot|pid:[1]|4194999|12345")
        with pytest.raises(LeaseHeld):
            second.acquire("held", "next-run", "next run", ttl=600)


def test_the_ledger_clock_is_the_databases(ledger_url: str) -> None:
    """Lease expiry and stamps follow the database's clock, whatever this process's says."""
    with Ledger(ledger_url) as book:
        assert abs(book.now() - time.time()) < 5  # the same machine here: the same time
        lease = book.acquire("clock", "run", "a run", ttl=60)
        assert abs(lease.expires_at - (book.now() + 60)) < 5


async def test_a_row_sent_before_markers_settles_as_before(tmp_path: Path) -> None:
    """An in-flight row from an older fleet (no marker) is reconciled by name, as it was then."""
    (spec,) = specs(1)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db", "old")
        async with client_for(sim.url) as client:
            await survey(client, book, "old", [spec], owner=OWNER)
            book.sync.claim("old", spec, OWNER)  # an older fleet's claim: no run, no marker
            await client.create_server(spec.params)  # its create, without a marker
            await asyncio.sleep(0.1)
            found = await survey(client, book, "old", [spec], owner=OWNER)
        state = sim.state()
    assert found.reconciled == ("web-001",)
    assert_each_once(state, book.sync.records("old"), n=1)
