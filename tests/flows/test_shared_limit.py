"""Rollouts share one rate budget through a Prefect global limit; auto still works under it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.options import ProvisionOptions
from fleet.report.summary import RolloutSummary
from fleet.simulator import RunningSimulator, running_simulator
from flows.provision import provision_fleet
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.prefect_harness import inventory, keyed_simulator
from tests.support.simulator import sim_config

# Rates measured in real time: run alone, after the rest (see the Makefile).
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.usefixtures("prefect_server"),
]

SHARED_RATE = 20.0  # calls/s for the whole account
EACH_RATE = 40.0  # what each run would do on its own


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    # The gateway allows a little more than the shared budget, far less than the runs' sum.
    with keyed_simulator(monkeypatch, rate=30, burst=20) as running:
        yield running


async def test_two_concurrent_rollouts_stay_within_the_shared_budget(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Each run alone may go 40/s; together, through the shared limit, they keep to ~20/s."""
    from prefect import get_client

    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(
            "ncp-account", limit=10, slot_decay_per_second=SHARED_RATE
        )
    runs = [
        provision_fleet(
            inventories=[inventory(tmp_path / f"{name}.csv", name, 60)],
            options=ProvisionOptions(
                endpoint=sim.url,
                ledger=str(tmp_path / f"{name}.db"),
                rate=EACH_RATE,
                burst=5,
                shared_limit="ncp-account",
            ),
            return_state=True,
        )
        for name in ("blue", "green")
    ]
    states = await asyncio.gather(*runs)
    assert all(s.is_completed() for s in states), [s.message for s in states]
    state = sim.state()
    created = sorted(s["created_at"] for s in state["servers"])  # epoch seconds
    assert len(created) == 120
    seconds = created[-1] - created[0]
    combined = (len(created) - 1) / seconds
    # Shared: about 20/s (the first blocks add a burst). Not shared, it would be ~40-80/s.
    assert combined <= SHARED_RATE * 1.25, combined
    assert state["counters"]["throttled"] == 0


async def test_auto_rate_finds_a_gateway_slower_than_the_shared_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under a generous shared limit, --rate auto still finds the gateway's own lower rate."""
    from prefect import get_client

    monkeypatch.setenv("NCLOUD_ACCESS_KEY", SIM_ACCESS)
    monkeypatch.setenv("NCLOUD_SECRET_KEY", SIM_SECRET)
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(
            "ncp-generous", limit=50, slot_decay_per_second=100.0
        )
    with running_simulator(sim_config(rate=15, burst=5)) as slow:
        summary = await provision_fleet(
            inventories=[inventory(tmp_path / "auto.csv", "auto", 150)],
            options=ProvisionOptions(
                endpoint=slow.url, ledger=str(tmp_path / "auto.db"), shared_limit="ncp-generous"
            ),
        )
        counters = slow.state()["counters"]
    assert isinstance(summary, RolloutSummary)
    assert summary.counts.made == 150 and summary.rate_asked is None  # auto, the default
    # The shared limit (100/s) never binds; the gateway's 15/s is found from its throttles.
    assert summary.rate_found == pytest.approx(15, rel=0.3), summary.rate_line
    assert counters["throttled"] <= 0.1 * counters["requests"], counters
