"""What the quick commands show an operator: an inventory's expansion, a plan's every name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.simulator import RunningSimulator
from flows.cli.app import app
from tests.support.prefect_harness import ROOT, keyed_simulator

DEMO = str(ROOT / "inventories" / "demo.csv")
runner = CliRunner()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningSimulator]:
    """A simulator with its keys in the environment; the command runs in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    with keyed_simulator(monkeypatch) as running:
        yield running


def test_validate_shows_each_rows_expansion() -> None:
    """Validate prints, per row, its first and last names, its count, region and VPC."""
    result = runner.invoke(app, ["validate", DEMO])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "demo.csv:" in line]
    assert len(rows) == 4
    web = next(line for line in rows if "demo-web-001" in line).split("│")
    cells = [cell.strip() for cell in web if cell.strip()]
    assert cells[1:] == ["demo-web-001", "demo-web-006", "6", "default", "75001"]


def test_plan_cuts_long_name_lists_and_full_shows_every_name(sim: RunningSimulator) -> None:
    """Plan cuts a long list and says how to see it; --full lists every name."""
    cut = runner.invoke(app, ["plan", DEMO, "--endpoint", sim.url, "--ledger", "l.db"])
    assert cut.exit_code == 3, cut.output  # changes pending: 16 to create
    assert "(--full shows all)" in cut.stdout
    assert "demo-worker-015" not in cut.stdout
    full = runner.invoke(app, ["plan", DEMO, "--endpoint", sim.url, "--ledger", "l.db", "--full"])
    assert full.exit_code == 3, full.output
    for name in ("demo-web-001", "demo-api-004", "demo-worker-015", "demo-bastion"):
        assert name in full.stdout
    assert "--full shows all" not in full.stdout
