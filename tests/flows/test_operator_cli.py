"""What an operator reads, as run in a process of its own: clean stops, honest counts, documents.

Each test runs ``fleet`` as a user does (its own process, the simulator over loopback, the
session's Prefect API) and reads what it printed and the files it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.simulator import RunningSimulator, running_simulator
from tests.flows.opskit import ROOT, inventory, run
from tests.functional.fleetkit import sim_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

BAD = str(ROOT / "inventories" / "bad-references.csv")


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A plain simulator, no faults."""
    with running_simulator(sim_config()) as running:
        yield running


def test_a_preflight_stop_prints_its_problems_and_no_traceback(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A bad reference stops provision with exit 2, its FILE:LINE problems, and no traceback."""
    done = run(["provision", BAD, "--endpoint", sim.url], tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{BAD}:8: serverImageNo: no such server image" in done.stderr
    assert "11 problem(s) found; nothing was sent." in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "Finished in state Failed(" in done.stderr  # the flow run ends Failed, with the reason


def test_a_held_lease_stops_with_the_holder_and_no_traceback(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Another run's lease stops provision with exit 2 naming the holder, and no traceback."""
    path = inventory(tmp_path / "held.csv", "held", 2)
    with Ledger(str(tmp_path / "ledger.db")) as book:
        book.acquire("held", "someone", "cron on ops-1", 600)
    done = run(["provision", path, "--endpoint", sim.url, "--ledger", "ledger.db"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cron on ops-1" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
