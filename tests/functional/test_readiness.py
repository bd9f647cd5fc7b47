"""Waiting for RUN, against the simulator over loopback HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet.errors import ErrorKind
from fleet.simulator import running_simulator
from fleet.states import ServerStatus
from fleet.watch.readiness import wait_running
from tests.support.engine import client_for, open_ledger, roll_out, specs
from tests.support.simulator import sim_config

pytestmark = pytest.mark.anyio


async def test_wait_polls_in_batches_until_every_server_runs(tmp_path: Path) -> None:
    """Created servers are polled a batch per call until RUN, with the seconds each took."""
    plan = specs(150)
    started = time.monotonic()
    with running_simulator(sim_config(create_seconds=0.3, setup_seconds=0.3)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "w", plan)
            lists_before = sim.state()["counters"]["by_action"]["getServerInstanceList"]
            report = await wait_running(client, book, "w", interval=0.2, time_limit=30)
            polls = sim.state()["counters"]["by_action"]["getServerInstanceList"] - lists_before
    elapsed = time.monotonic() - started
    assert len(report.running) == 150
    assert not report.failed
    assert not report.timed_out
    records = book.sync.records("w")
    assert {r.server_status for r in records} == {ServerStatus.RUN}
    # Counted from the send: never less than the simulator's 0.6 s to RUN, never more than the
    # test took (no wall-clock guess, so a slow machine cannot fail it).
    assert all(r.run_seconds is not None and 0.59 <= r.run_seconds <= elapsed for r in records)
    # 150 servers in batches of 100, each batch paged 100 at a time: a few calls a round,
    # never one per server.
    assert polls < 40


async def test_wait_records_timeouts_with_the_last_status(tmp_path: Path) -> None:
    """A server that is not RUN in time is a failure carrying the status NCP reported."""
    plan = specs(2)
    with running_simulator(sim_config(create_seconds=60)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "slow", plan)
            report = await wait_running(client, book, "slow", interval=0.1, time_limit=0.3)
    assert report.timed_out == {"web-001": "INIT", "web-002": "INIT"}
    r = book.sync.record("slow", "web-001")
    assert r is not None
    assert (r.error_kind, r.error_code) == (ErrorKind.TIMEOUT, "INIT")
    assert "not RUN after" in (r.error_message or "")
