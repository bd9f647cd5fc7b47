"""One local Prefect server, started by the first one-off command and found by the next ones."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fleet.simulator import RunningSimulator
from flows.cli import localserver
from tests.support.prefect_harness import ROOT, inventory, keyed_simulator

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A Prefect home of its own, whose shared server is stopped after the test whatever happens."""
    prefect_home = tmp_path / "prefect"
    yield prefect_home
    localserver.stop(prefect_home)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A simulator with its keys in the environment."""
    with keyed_simulator(monkeypatch) as running:
        yield running


def _fleet(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``fleet ARGS`` as on a machine with no Prefect API configured."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "FLEET_PREFECT_SERVER")
    }
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_commands_share_one_local_server_whose_ui_keeps_their_runs(
    sim: RunningSimulator, tmp_path: Path, home: Path
) -> None:
    """Two provisions start one server between them; it keeps both runs; --stop stops it."""
    server = None
    for name in ("first", "second"):
        path = inventory(tmp_path / f"{name}.csv", name, 2)
        done = _fleet(["provision", path, "--endpoint", sim.url], tmp_path, home)
        assert done.returncode == 0, done.stderr
        server = server or localserver.found(home)
        assert server is not None and server.healthy()
    assert server is not None and localserver.found(home) == server  # the second found it
    runs = httpx.post(f"{server.url}/flow_runs/filter", json={}, timeout=10).json()
    assert sorted(r["parameters"]["rollout"] for r in runs) == ["first", "second"]
    assert f"View at {server.ui}" in done.stderr  # the command names its run's page in the UI

    shown = _fleet(["server"], tmp_path, home)
    assert shown.returncode == 0 and server.ui in shown.stdout
    stopped = _fleet(["server", "--stop"], tmp_path, home)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert localserver.found(home) is None and not server.alive()
