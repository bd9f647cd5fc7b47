"""The results artifact stays small at any size; the results file keeps every server."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from fleet.options import ProvisionOptions
from fleet.report.results import FIRST_FAILURES
from fleet.simulator import RunningSimulator
from flows.provision import provision_fleet
from tests.support.prefect_harness import inventory, keyed_simulator

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

SERVERS, ALLOWED = 90, 40  # the account's server limit refuses the other 50


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A fast simulator whose keys are in the environment, as a worker's would be."""
    with keyed_simulator(monkeypatch, latency=0.0) as running:
        yield running


async def _data(key: str) -> str:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


async def test_results_artifact_holds_counts_first_failures_and_the_file_not_every_server(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """The artifact names the first failures and the results file; the file has every server."""
    sim.configure(max_servers=ALLOWED)
    path = inventory(tmp_path / "wide.csv", "wide", SERVERS)
    options = ProvisionOptions(endpoint=sim.url, ledger=str(tmp_path / "ledger.db"), rate=500)
    state = await provision_fleet(inventories=[path], options=options, return_state=True)
    assert state.is_failed()
    results = tmp_path / "results" / "wide.csv"
    with results.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["serverName"] for r in rows] == [f"wide-{i:03d}" for i in range(1, SERVERS + 1)]
    created = {r["serverName"] for r in rows if r["state"] == "created"}
    assert len(created) == ALLOWED
    text = await _data("wide-results")
    assert f"{SERVERS - ALLOWED} failed" in text and f"{ALLOWED} made, not running yet" in text
    assert str(results) in text
    assert f"Not cleanly created: {SERVERS - ALLOWED} (the first {FIRST_FAILURES})" in text
    assert f"and {SERVERS - ALLOWED - FIRST_FAILURES} more in the results file" in text
    assert text.count("| wide-") == FIRST_FAILURES  # one row per failure shown, no more
    assert not any(name in text for name in created)  # never a row per server
