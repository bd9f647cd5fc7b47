"""A rollout killed with SIGKILL mid-way and run again: every server once, every number kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet.ledger import State
from fleet.simulator import running_simulator
from tests.support.engine import OWNER, assert_each_once, client_for, open_ledger, roll_out, specs
from tests.support.simulator import sim_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

# The victim: a plain engine run in its own process, so it can be killed at any instant.
VICTIM = """
import asyncio, sys
from tests.support.engine import client_for, open_ledger, roll_out, specs

async def main(url, ledger, n):
    book = open_ledger(ledger)
    async with client_for(url, rate=200, concurrency=16) as client:
        await roll_out(client, book, "killed", specs(n))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

N = 240


def _run_and_kill(sim: object, ledger: Path, count: int) -> int:
    """Start the victim and SIGKILL it once the simulator has created ``count`` servers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = sim.url  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-c", VICTIM, url, str(ledger), str(N)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        created = sim.state()["counters"]["created"]  # type: ignore[attr-defined]
        if created >= count or proc.poll() is not None:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return int(sim.state()["counters"]["created"])  # type: ignore[attr-defined]


async def test_sigkill_mid_rollout_then_rerun_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    """Killed twice at arbitrary moments, the rollout still ends with N servers, each once."""
    ledger = tmp_path / "ledger.db"
    # Answers arrive late (latency, and some slow ones) so that at the kill many creates have
    # landed on NCP without their answer reaching the ledger.
    config = sim_config(latency=0.05, slow=0.2, slow_seconds=0.4)
    with running_simulator(config) as sim:
        for kill_at in (60, 150):
            created = _run_and_kill(sim, ledger, kill_at)
            assert created < N, "the victim finished before it could be killed"
        book = open_ledger(ledger)
        flying = [r.name for r in book.sync.records("killed") if r.state == State.IN_FLIGHT]
        assert flying, "the kill should leave creates whose answers were never recorded"
        async with client_for(sim.url) as client:
            # The dead run's lease is released by hand here; a real rerun waits for its expiry.
            book.sync.release("killed", OWNER)
            _, found = await roll_out(client, book, "killed", specs(N))
            assert found.reconciled, "in-flight servers that landed are found by name"
        state = sim.state()
    assert_each_once(state, book.sync.records("killed"), n=N, exact=True)
    assert state["counters"]["created"] == N
