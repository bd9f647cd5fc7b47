"""The rate a staged run leaves in the ledger, and the big rollout that starts from it.

As an operator runs them: one ledger, a staged rollout that waits for its servers, then a large
one, through the flow on the session's Prefect server, against a simulator (in its own process,
so that it does not share the client's core) whose gateway allows GATEWAY calls/s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.options import ProvisionOptions
from fleet.report.summary import RolloutSummary
from fleet.simulator import RunningSimulator, running_simulator
from flows.provision import provision_fleet
from flows.runtime import fingerprint
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.prefect_harness import inventory
from tests.support.simulator import sim_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

GATEWAY = 100.0  # calls/s: R
BIG = 1_000


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A 100 calls/s gateway (a bucket of 10) whose servers boot in 5 s, keys in the env."""
    monkeypatch.setenv("NCLOUD_ACCESS_KEY", SIM_ACCESS)
    monkeypatch.setenv("NCLOUD_SECRET_KEY", SIM_SECRET)
    config = sim_config(rate=GATEWAY, burst=10, latency=0.02, create_seconds=2.0, setup_seconds=3.0)
    with running_simulator(config, process=True) as running:
        yield running


def two_rows(path: Path, count: int) -> str:
    """Write an inventory of ``count`` servers in two rows (a row makes 999 at most)."""
    rows = [f"{name},{count // 2},25495367,s2-g3,75001,75101" for name in ("web", "app")]
    head = "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo"
    path.write_text("\n".join([head, *rows]) + "\n")
    return str(path)


def share_of_r(ledger: Path, rollout: str) -> float:
    """The rollout's creates per second as a share of R, from its own first and last stamps."""
    stamps = created_stamps(ledger, rollout)
    assert len(stamps) == BIG
    return (BIG / GATEWAY) / (stamps[-1] - stamps[0])


def created_stamps(ledger: Path, rollout: str) -> list[float]:
    """The times the ledger recorded each server of the rollout created, in order."""
    with Ledger(ledger) as book:
        stamps = [r.created_at for r in book.records(rollout)]
    return sorted(datetime.fromisoformat(stamp).timestamp() for stamp in stamps if stamp)


async def test_a_big_rollout_after_a_staged_one_goes_at_the_gateways_rate(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A staged run remembers R or nothing; the 1,000 servers after it are created at >= 0.9 R."""
    ledger = tmp_path / "l.db"
    common = {"endpoint": sim.url, "ledger": str(ledger), "poll_interval": 1.0}
    # A burst as large as the calls in flight: each wave opens with more calls than the
    # gateway's bucket holds, and is throttled; between waves, a look every second.
    waves = {"canary": "2", "waves": "50%,100%", "wait": True, "burst": 16}
    staged = await provision_fleet(
        inventories=[inventory(tmp_path / "staged.csv", "staged", 30)],
        options=ProvisionOptions(**common, **waves),
        return_state=True,
    )
    assert staged.is_completed(), staged.message
    first = await staged.aresult()
    assert isinstance(first, RolloutSummary) and first.counts.running == 30
    with Ledger(ledger) as book:
        remembered = book.known_rate(sim.url, fingerprint(SIM_ACCESS))
    # Within a factor of two of the gateway's, or nothing (a staged run may not measure it).
    assert remembered is None or GATEWAY / 2 <= remembered <= 2 * GATEWAY, first.rate_line

    big = await provision_fleet(
        inventories=[two_rows(tmp_path / "big.csv", BIG)],
        options=ProvisionOptions(**common),
        return_state=True,
    )
    assert big.is_completed(), big.message
    second = await big.aresult()
    assert isinstance(second, RolloutSummary) and second.counts.made == BIG
    # Its own pace, from its own stamps: BIG creates at R take BIG / R seconds, first to last.
    share = share_of_r(ledger, "big")
    assert share >= 0.9, (share, first.rate_line, second.rate_line)


async def test_a_low_rate_remembered_is_left_behind_at_once(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A figure a fifth of the gateway's (as older runs left) still lets 1,000 go at >= 0.9 R."""
    ledger = tmp_path / "l.db"
    with Ledger(ledger) as book:
        book.remember_rate(sim.url, fingerprint(SIM_ACCESS), GATEWAY / 5)
    big = await provision_fleet(
        inventories=[two_rows(tmp_path / "big.csv", BIG)],
        options=ProvisionOptions(endpoint=sim.url, ledger=str(ledger)),
        return_state=True,
    )
    assert big.is_completed(), big.message
    summary = await big.aresult()
    assert isinstance(summary, RolloutSummary) and summary.counts.made == BIG
    share = share_of_r(ledger, "big")
    assert share >= 0.9, (share, summary.rate_line)
