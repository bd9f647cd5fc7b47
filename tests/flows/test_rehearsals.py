"""A rehearsal's rollout is inspected and cleaned up like a real one, while its simulator runs.

A `--simulator` rehearsal records where its simulator listens, with its throwaway keys; status
--refresh, teardown and export of the rollout reach it there. Once the simulator stopped, its
servers went with it, and each of those commands says so in one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.options import ProvisionOptions
from fleet.simulator import REHEARSAL_LEDGER
from flows.cli.app import app
from flows.cli.rehearsal import SIMULATORS, rehearsal
from tests.support.prefect_harness import inventory
from tests.support.schemas import conforms

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

runner = CliRunner()
FAST = ["--poll-interval", "0.2"]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory, and no NCP keys anywhere but what a rehearsal records."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ncloud/configure
    for key in ("NCLOUD_ACCESS_KEY", "NCLOUD_SECRET_KEY", "NCLOUD_API_GW", "FLEET_LEDGER"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_status_export_and_teardown_reach_a_running_rehearsal(here: Path) -> None:
    """While its simulator runs, a rehearsal rollout is refreshed, exported and torn down."""
    path = inventory(here / "reh.csv", "reh", 2)
    with rehearsal(ProvisionOptions(), "reh") as opts:  # what --simulator starts, held open
        assert opts.endpoint is not None
        made = runner.invoke(
            app, ["provision", path, "--endpoint", opts.endpoint, "--ledger", str(REHEARSAL_LEDGER),
                  "--wait", *FAST],
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        assert list(SIMULATORS.glob("*.json"))  # where it listens, while it runs
        with pytest.MonkeyPatch.context() as keyless:  # another shell: none of its keys
            keyless.delenv("NCLOUD_ACCESS_KEY")
            keyless.delenv("NCLOUD_SECRET_KEY")
            _inspect_and_take_down(opts.endpoint)
    assert not list(SIMULATORS.glob("*.json"))  # stopped: its record went with it


def _inspect_and_take_down(endpoint: str) -> None:
    live = runner.invoke(app, ["status", "reh", "--refresh"])
    assert live.exit_code == 0, live.output
    assert "live (read from NCP now): 2 running" in live.stdout
    exported = runner.invoke(app, ["export", "reh", "--format", "json"])
    assert exported.exit_code == 0, exported.output
    assert [h["name"] for h in conforms("export", exported.stdout)["servers"]] == [
        "reh-001",
        "reh-002",
    ]
    down = runner.invoke(app, ["teardown", "--rollout", "reh", "--simulator", "--yes", *FAST])
    assert down.exit_code == 0, down.output
    assert "reh: 2 terminated" in down.stdout


def test_once_its_simulator_stopped_a_rehearsal_says_so_in_one_line(here: Path) -> None:
    """After `provision --simulator` ends, refresh, export and teardown exit 2 with one line."""
    path = inventory(here / "gone.csv", "gone", 2)
    made = runner.invoke(app, ["provision", path, "--simulator", "--wait", *FAST])
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["status", "gone", "--simulator"])  # the ledger still says so
    assert shown.exit_code == 0 and "gone-002" in shown.stdout
    for args in (
        ["status", "gone", "--refresh"],
        ["export", "gone"],
        ["teardown", "--rollout", "gone", "--simulator", "--yes"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        said = result.stderr.splitlines()  # which ledger it read, then the one error line
        errors = [line for line in said if line.startswith("error:")]
        assert errors == said[-1:], said
        assert errors[0].startswith("error: rollout 'gone' was rehearsed against the simulator at")
        assert "which is no longer running: its servers went with it" in errors[0]
