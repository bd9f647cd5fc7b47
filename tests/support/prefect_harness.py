"""Prefect and fleet as a user runs them: one test API server a session, commands in processes.

The fixture ``prefect_server``: a fresh Prefect API with its own database, shared by every flow
test (each costs ~10 s to start).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fleet.simulator import RunningSimulator, running_simulator
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.simulator import sim_config

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
# No test leaves a shared local Prefect server running behind it (flows/cli/localserver.py): a fleet
# process with no API of its own gets Prefect's temporary one. test_localserver lifts this.
os.environ.setdefault("FLEET_PREFECT_SERVER", "temporary")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A fresh Prefect API with its own database, shared by every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def inventory(path: Path, name: str, count: int, vpc: str = "75001") -> str:
    """Write a one-row inventory making ``count`` servers named name-001..."""
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo\n"
        f"{name},{count},25495367,s2-g3,{vpc},75101\n"
    )
    return str(path)


@contextmanager
def keyed_simulator(
    monkeypatch: pytest.MonkeyPatch, **config: object
) -> Iterator[RunningSimulator]:
    """Run a simulator (``sim_config(**config)``) with its keys in this process's environment.

    As a worker's would be: the flows and commands read them from there.
    """
    monkeypatch.setenv("NCLOUD_ACCESS_KEY", SIM_ACCESS)
    monkeypatch.setenv("NCLOUD_SECRET_KEY", SIM_SECRET)
    with running_simulator(sim_config(**config)) as running:
        yield running


def fleet_env(**extra: str) -> dict[str, str]:
    """The environment of a fleet process: the simulator's keys, the session's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "NCLOUD_ACCESS_KEY": SIM_ACCESS, "NCLOUD_SECRET_KEY": SIM_SECRET}
    env["PYTHONPATH"] = str(ROOT)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env.update(extra)
    return env


def start(args: list[str], cwd: Path, **extra: str) -> subprocess.Popen[str]:
    """Start ``fleet ARGS`` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "flows", *args],
        cwd=cwd,
        env=fleet_env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``fleet ARGS`` to the end in its own process (3 minutes at most)."""
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=cwd,
        env=fleet_env(**extra),
        capture_output=True,
        text=True,
        timeout=180,
    )
