"""A server's life in the library, on the simulator over loopback: NCP's clock, names, gone.

The engine-level cases of the issue "One life per server": a rerun on a machine whose clock
stepped, two rollouts of one ledger sending the same names at once (SQLite and PostgreSQL), and
waiting for servers NCP has not listed yet.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fleet.create.engine import Provisioner
from fleet.errors import RolloutError
from fleet.ledger import AsyncLedger, Ledger
from fleet.plan.survey import survey
from fleet.simulator import running_simulator
from fleet.watch.readiness import wait_running
from tests.support.clock import FakeClock
from tests.support.engine import (
    FAST,
    OWNER,
    assert_each_once,
    client_for,
    open_ledger,
    roll_out,
    specs,
    until_server,
)
from tests.support.simulator import servers_by_name, sim_config

pytestmark = pytest.mark.anyio


async def test_a_rerun_after_the_machines_clock_stepped_ahead_judges_by_ncps_clock(
    tmp_path: Path,
) -> None:
    """Killed under a lagging list; the clock then steps 30 s ahead (SQLite): nothing twice."""
    plan = specs(4)
    lag, window, step = 2.0, 3.0, 30.0  # the 40 s lag, scaled down; its 30 s step
    path = tmp_path / "l.db"
    with running_simulator(sim_config(list_lag=lag)) as sim:
        # Every create is made, and its answer lost: the rows stay in flight, to be looked up.
        sim.faults({"action": "createServerInstances", "fault": "fail_after", "times": 4})
        book = open_ledger(path, "skew")
        async with client_for(sim.url) as client:
            await survey(client, book, "skew", plan, owner=OWNER)
            options = FAST.model_copy(update={"settle": window, "settle_poll": 30.0})
            first = asyncio.create_task(
                Provisioner(client, book, "skew", OWNER, options).provision(plan)
            )
            for _ in range(3000):  # until every create was sent and answered ambiguously
                if sum(r.ambiguous_sends for r in book.sync.records("skew")) == 4:
                    break
                await asyncio.sleep(0.01)
            first.cancel()  # killed before any look-up could find them
            with pytest.raises(asyncio.CancelledError):
                await first
        book.close()
        book.sync.close()
        # The machine's clock steps ahead: the ledger (SQLite: this host's clock) and the engine.
        ahead = lambda: time.time() + step  # noqa: E731
        rebooted = AsyncLedger(Ledger(path, clock=ahead))
        rebooted.sync.acquire("skew", OWNER, "the rerun", ttl=600)
        async with client_for(sim.url) as client:
            options = FAST.model_copy(update={"settle": window, "settle_poll": 0.1})
            rerun = Provisioner(client, rebooted, "skew", OWNER, options, clock=ahead)
            await rerun.provision(plan)
        await asyncio.sleep(lag)  # everything NCP made is listed by now
        state = sim.state()
    assert_each_once(state, rebooted.sync.records("skew"), n=4, exact=True)


async def test_two_rollouts_of_one_ledger_never_both_send_a_name(ledger_url: str) -> None:
    """Two rollouts, same names, one ledger, at once under a lag: one creates, the other stops."""
    plan = specs(6)
    with running_simulator(sim_config(list_lag=1.0)) as sim:
        books = {name: AsyncLedger(Ledger(ledger_url)) for name in ("first", "second")}
        for name, book in books.items():
            book.sync.acquire(name, OWNER, name, ttl=600)
        async with client_for(sim.url) as client:

            async def rollout(name: str) -> str:
                try:
                    await roll_out(client, books[name], name, plan)
                except RolloutError as refused:
                    return str(refused)
                return "created"

            outcomes = await asyncio.gather(rollout("first"), rollout("second"))
        await asyncio.sleep(1.2)  # past the lag
        on_ncp = servers_by_name(sim.state())
    assert sorted(o == "created" for o in outcomes) == [False, True], outcomes
    refusal = next(o for o in outcomes if o != "created")
    assert "claimed by rollout" in refusal
    assert {n: len(nos) for n, nos in on_ncp.items()} == {s.name: 1 for s in plan}


async def test_waiting_for_run_never_takes_a_server_not_listed_yet_for_gone(
    tmp_path: Path,
) -> None:
    """Answered with a number, listed only 1.5 s later: waited for, then RUN, never 'gone'."""
    plan = specs(3)
    with running_simulator(sim_config(list_lag=1.5)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "late", plan)
            report = await wait_running(client, book, "late", interval=0.1, time_limit=30)
        state = sim.state()
    assert sorted(report.running) == [s.name for s in plan] and not report.failed
    assert_each_once(state, book.sync.records("late"), n=3, exact=True)


async def test_waiting_for_run_says_what_it_waits_for_and_each_failure(tmp_path: Path) -> None:
    """A stuck server: a line every 30 s naming it, and the line when time runs out."""
    plan = specs(2)
    clock = FakeClock(0.0)
    said: list[str] = []
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "stuck", plan)
            numbers = {r.name: str(r.instance_no) for r in book.sync.records("stuck")}
            sim.server(numbers["web-002"], "hold", status="CREAT", operation="SETUP")
            await until_server(client, numbers["web-001"], lambda s: bool(s) and s[0].ready)

            async def tick(seconds: float) -> None:
                clock.advance(seconds)
                await asyncio.sleep(0.05)  # the real simulator moves on meanwhile

            report = await wait_running(
                client, book, "stuck", interval=10.0, time_limit=65.0, clock=clock,
                sleep=tick, tell=said.append,
            )  # fmt: skip
    assert report.timed_out == {"web-002": "CREAT"}
    # At 0, 30 and 60 s of the wait: never a silent one.
    assert said == ["1 of 2 running; waiting for 1: web-002 (CREAT)"] * 3
