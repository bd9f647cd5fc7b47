"""A chunk task that fails on the ledger is retried by Prefect, and nothing is created twice.

Before, the retried chunk raced the first attempt's workers, still running: 66 creates for 60
servers. Now a chunk's workers run in a task group: the failure cancels and awaits them all
before Prefect sees it, and the retry settles what they left in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import State

from fleet.errors import LedgerError
from fleet.ledger import AsyncLedger, Ledger, Record
from fleet.options import ProvisionOptions
from fleet.simulator import RunningSimulator
from flows.provision import provision_fleet
from tests.support.engine import assert_each_once
from tests.support.prefect_harness import inventory, keyed_simulator
from tests.support.simulator import servers_by_name

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A simulator whose answers take a little while, so many creates are on their way at once."""
    with keyed_simulator(monkeypatch, latency=0.05, latency_jitter=0.05) as running:
        yield running


def fail_once(
    monkeypatch: pytest.MonkeyPatch, method: str, at: int, error: Exception
) -> dict[str, int]:
    """Make the ``at``-th call of a Ledger method, through the async ledger, raise ``error``."""
    real = AsyncLedger._submit
    seen = {"n": 0}

    def submit(
        self: AsyncLedger, fn: Callable[..., Any], args: Any, kwargs: Any, grouped: bool
    ) -> asyncio.Future[Any]:
        if getattr(fn, "__name__", "") == method:
            seen["n"] += 1
            if seen["n"] == at:
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(error)
                return failed
        return real(self, fn, args, kwargs, grouped)

    monkeypatch.setattr(AsyncLedger, "_submit", submit)
    return seen


async def _provision(
    sim: RunningSimulator, tmp_path: Path, rollout: str, count: int, **changes: Any
) -> tuple[State[Any], dict[str, Any], list[Record]]:
    """Run the flow on ``count`` servers in chunks; return its state, the simulator's, the rows."""
    settings = {"rate": 200, "settle": 1.0, "settle_poll": 0.2, "chunk_size": count, **changes}
    options = ProvisionOptions(endpoint=sim.url, ledger=str(tmp_path / "l.db"), **settings)
    state = await provision_fleet(
        inventories=[inventory(tmp_path / f"{rollout}.csv", rollout, count)],
        options=options,
        return_state=True,
    )
    with Ledger(tmp_path / "l.db") as book:
        return state, sim.state(), book.records(rollout)


@pytest.mark.parametrize(
    "error",
    [LedgerError("ledger l.db: OperationalError: database is locked"), RuntimeError("boom")],
)
async def test_a_chunk_retried_after_an_unexpected_failure_creates_nothing_twice(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The 20th answer's write fails; the chunk is retried; 60 servers, 60 creates."""
    seen = fail_once(monkeypatch, "record_created", at=20, error=error)
    state, on_sim, records = await _provision(sim, tmp_path, "retry", 60, concurrency=16)
    assert state.is_completed(), state.message
    assert seen["n"] >= 20  # the failure did happen
    counters = on_sim["counters"]
    assert counters["created"] == 60 and len(servers_by_name(on_sim)) == 60, counters
    assert_each_once(on_sim, records, exact=True)


async def test_more_chunks_than_sending_slots_take_turns_and_create_each_once(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Ten chunks, four sending at a time: every server made once, and the run completes."""
    state, on_sim, records = await _provision(
        sim, tmp_path, "turns", 30, concurrency=4, chunk_size=3
    )
    assert state.is_completed(), state.message
    assert len(servers_by_name(on_sim)) == 30
    assert_each_once(on_sim, records, exact=True)
