"""Exactly once in real operations: regions, a listing that lags, edited rows, odd answers.

Each test plays one way the promise broke before (issue "Exactly-once in real operations") on the
simulator over loopback HTTP, and checks what a user would: every server on NCP once, every
number in the ledger, nothing of anyone else's touched.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from fleet.ledger import AsyncLedger, Ledger, State
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.plan.survey import survey
from fleet.simulator import running_simulator
from fleet.teardown import teardown, teardown_targets
from fleet.watch.readiness import wait_running
from tests.support.engine import (
    FAST,
    OWNER,
    QUICK,
    assert_each_once,
    client_for,
    engine,
    open_ledger,
    roll_out,
    specs,
)
from tests.support.simulator import servers_by_name, sim_config

pytestmark = pytest.mark.anyio


def regions_of(state: dict[str, object]) -> Counter[str]:
    return Counter(s["regionCode"] for s in state["servers"])  # type: ignore[attr-defined]


async def test_servers_in_another_region_are_found_waited_for_and_torn_down(
    tmp_path: Path,
) -> None:
    """Half the rows in JPN: ambiguous creates settle there, wait sees RUN, teardown removes all."""
    plan = specs(6, prefix="kr") + specs(6, prefix="jp", region="JPN")
    with running_simulator(sim_config()) as sim:
        sim.faults(
            {"action": "createServerInstances", "fault": "fail_after", "serverName": "jp-002"},
            {"action": "createServerInstances", "fault": "drop_after", "serverName": "jp-004"},
        )
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "regions", plan)
            report = await wait_running(client, book, "regions", interval=0.1, time_limit=30)
            assert sorted(report.running) == sorted(s.name for s in plan) and not report.failed
            assert_each_once(sim.state(), book.sync.records("regions"))
            assert regions_of(sim.state()) == {"KR": 6, "JPN": 6}
            targets = (await teardown_targets(client, book, "regions")).targets
            down = await teardown(client, book, "regions", targets, QUICK)
        state = sim.state()
        calls = sim.calls()
    assert sorted(down.terminated) == sorted(s.name for s in plan)
    assert state["servers"] == []
    jp_numbers = {r.instance_no for r in book.sync.records("regions") if r.region == "JPN"}
    for call in calls:
        named = call["params"].get("serverName", "")
        numbered = {v for k, v in call["params"].items() if k.startswith("serverInstanceNoList")}
        if named.startswith("jp-") or numbered & jp_numbers:
            assert call["params"].get("regionCode") == "JPN", call


async def test_a_listing_that_lags_creates_nothing_twice(tmp_path: Path) -> None:
    """New servers listed 3-4 s late, ambiguous answers about: each server still made once."""
    config = sim_config(
        list_lag=3.0,
        list_lag_jitter=1.0,
        fail_after=0.08,
        drop_after=0.05,
        late_commit=0.04,
        late_commit_seconds=0.5,
        fail_before=0.05,
        seed=3,
    )
    plan = specs(120)
    with running_simulator(config) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url, timeout=2.0) as client:
            options = FAST.model_copy(update={"settle": 5.0, "settle_poll": 0.25})
            await roll_out(client, book, "lag", plan, options)
        state = sim.state()
    faults = state["counters"]["faults"]
    assert faults["fail_after"] and faults["late_commit"], faults
    assert state["counters"]["created"] == 120
    assert_each_once(state, book.sync.records("lag"))


async def test_an_unreadable_success_is_looked_up_not_refused(tmp_path: Path) -> None:
    """A 200 whose body cannot be read is ambiguous: the server is found, not created again."""
    plan = specs(3)
    with running_simulator(sim_config()) as sim:
        sim.faults(
            {"action": "createServerInstances", "fault": "bad_body", "serverName": "web-002"}
        )
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "body", plan)
        state = sim.state()
    assert state["counters"]["created"] == 3
    assert_each_once(state, book.sync.records("body"))
    row = book.sync.record("body", "web-002")
    assert row is not None and row.ambiguous_sends == 1 and row.attempts == 1


async def test_an_edited_in_flight_row_is_settled_where_it_was_sent(tmp_path: Path) -> None:
    """A server sent to one VPC and region, then moved in the inventory, is found where it went."""
    (old,) = specs(1)
    (moved,) = specs(1, region="JPN")
    (absent_old,) = specs(1, prefix="gone")
    (absent_new,) = specs(1, prefix="gone", region="JPN")
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            worker = engine(client, book, "edit")
            await survey(client, book, "edit", [old, absent_old], owner=OWNER)
            # Both sent, one landed; both answers lost with the process.
            book.sync.claim("edit", old, OWNER)
            await client.create_server(old.params)
            book.sync.claim("edit", absent_old, OWNER)
            found = await survey(client, book, "edit", [moved, absent_new], owner=OWNER)
            assert found.reconciled == ("web-001",)
            assert set(found.delta.held) == {"web-001", "gone-001"}
            await worker.provision(found.work)
        state = sim.state()
    web = book.sync.record("edit", "web-001")
    gone = book.sync.record("edit", "gone-001")
    assert web is not None and gone is not None
    # The server that exists stays recorded where it is; the inventory change is reported.
    assert (web.state, web.region, web.vpc_no) == (State.CREATED, "", "75001")
    # The one that never landed was surely absent after the window: sent with the new row.
    assert (gone.state, gone.region, gone.vpc_no) == (State.CREATED, "JPN", "3001")
    assert servers_by_name(state) == {"web-001": [web.instance_no], "gone-001": [gone.instance_no]}
    assert regions_of(state) == {"KR": 1, "JPN": 1}


async def test_a_second_server_under_one_name_is_kept_flagged_and_torn_down(
    tmp_path: Path,
) -> None:
    """If NCP lists a server later than the window, the duplicate is recorded, not lost."""
    plan = specs(2)
    with running_simulator(sim_config(list_lag=0.8)) as sim:
        sim.faults(
            {"action": "createServerInstances", "fault": "late_commit", "serverName": "web-001"}
        )
        sim.configure(late_commit_seconds=0.3)
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            # A window far shorter than the lag: the ambiguous create is sent again, wrongly.
            careless = FAST.model_copy(update={"settle": 0.2, "settle_poll": 0.05})
            await roll_out(client, book, "dup", plan, careless)
            assert len(servers_by_name(sim.state())["web-001"]) == 2
            await asyncio.sleep(1.2)  # until NCP lists the late one too
            found = await survey(client, book, "dup", plan, owner=OWNER)
            assert [name for name, _ in found.duplicates] == ["web-001"]
            row = book.sync.record("dup", "web-001")
            assert row is not None and row.duplicates == 1
            assert len([i for i in book.sync.instances("dup") if i.name == "web-001"]) == 2
            await wait_running(client, book, "dup", interval=0.1, time_limit=30)
            targets = (await teardown_targets(client, book, "dup")).targets
            assert len(targets) == 3
            await teardown(client, book, "dup", targets, QUICK)
        assert sim.state()["servers"] == []


async def test_a_refused_create_is_never_taken_for_a_lost_one(tmp_path: Path) -> None:
    """A server someone else makes later under a name NCP refused for us survives our teardown."""
    good = specs(2)
    (bad,) = specs(1, prefix="team")
    refused = bad.__class__(
        bad.name, bad.file, bad.line, tuple(p for p in bad.params if p[0] != "serverSpecCode")
    )
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "scope", [*good, refused])
            row = book.sync.record("scope", "team-001")
            assert row is not None and row.state == State.FAILED and row.attempts == 1
            await client.create_server(bad.params)  # another team's server, same name
            await wait_running(client, book, "scope", interval=0.1, time_limit=30)
            targets = (await teardown_targets(client, book, "scope")).targets
            assert sorted(t.name for t in targets) == ["web-001", "web-002"]
            await teardown(client, book, "scope", targets, QUICK)
        assert [s["serverName"] for s in sim.state()["servers"]] == ["team-001"]


async def test_a_lost_create_must_have_been_made_while_we_sent(tmp_path: Path) -> None:
    """A server under an in-flight row's name, made long before our send, is not ours."""
    (mine,) = specs(1)
    with running_simulator(sim_config()) as sim:
        # Our sends happen an hour after the other server was made.
        book = AsyncLedger(Ledger(tmp_path / "l.db", clock=lambda: time.time() + 3600))
        async with client_for(sim.url) as client:
            await client.create_server(mine.params)  # someone else's
            book.sync.acquire("window", OWNER, "test run", ttl=600)
            book.sync.plan("window", [mine], owner=OWNER)
            book.sync.claim("window", mine, OWNER)  # sent, answer lost
            assert (await teardown_targets(client, book, "window")).targets == []
            row = book.sync.record("window", "web-001")
            assert row is not None and row.state == State.IN_FLIGHT


class FlakyReads(NcpClient):
    """A client whose first status reads come back without the servers, as a lagging list."""

    blind_reads = 2

    async def get_servers(
        self, instance_nos: Sequence[str], *, region: str = ""
    ) -> list[ServerInstance]:
        found = await super().get_servers(instance_nos, region=region)
        if self.blind_reads:
            self.blind_reads -= 1
            return []
        return found


async def test_a_server_missing_from_a_few_reads_is_not_taken_for_gone(tmp_path: Path) -> None:
    """Teardown counts a server gone only after several reads in a row without it."""
    plan = specs(2)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "reads", plan)
            await wait_running(client, book, "reads", interval=0.1, time_limit=30)
        flaky = FlakyReads(client._credentials, sim.url, retry=client.retry)
        async with flaky:
            targets = (await teardown_targets(flaky, book, "reads")).targets
            report = await teardown(flaky, book, "reads", targets, QUICK)
        # Two blind reads were not enough to call them gone: they were stopped and terminated.
        assert sorted(report.terminated) == ["web-001", "web-002"]
        assert sim.state()["servers"] == []
        calls = [c["action"] for c in sim.calls()]
        assert "terminateServerInstances" in calls
