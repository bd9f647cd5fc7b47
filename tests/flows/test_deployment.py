"""Deployed and run by a process worker, as on a schedule: the flow loads from source and works."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.simulator import RunningSimulator, running_simulator
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.simulator import servers_by_name, sim_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(sim_config()) as running:
        yield running


def test_deployment_runs_on_a_process_worker(sim: RunningSimulator, tmp_path: Path) -> None:
    """A deployment of provision-fleet on a process pool is picked up by a worker and completes.

    The keys reach the flow through the worker's environment, never through a parameter.
    """
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.asyncutils import run_coro_as_sync

    from flows.provision import provision_fleet

    async def make_pool() -> None:
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name="fleet-test", type="process"))

    run_coro_as_sync(make_pool())
    ledger = tmp_path / "ledger.db"
    provision_fleet.from_source(  # type: ignore[union-attr]  # the sync form, here
        source=str(ROOT), entrypoint="flows/provision.py:provision_fleet"
    ).deploy(
        name="rehearsal",
        work_pool_name="fleet-test",
        parameters={
            "inventories": [str(ROOT / "inventories" / "demo.csv")],
            "rollout": "deployed",
            "options": {"endpoint": sim.url, "ledger": str(ledger), "rate": 100},
        },
        print_next_steps=False,
    )
    flow_run = run_deployment("provision-fleet/rehearsal", timeout=0)
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "NCLOUD_ACCESS_KEY": SIM_ACCESS,
        "NCLOUD_SECRET_KEY": SIM_SECRET,
    }
    worker = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "fleet-test", "--run-once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]

    async def final_state() -> object:
        async with get_client() as client:
            return (await client.read_flow_run(flow_run.id)).state  # type: ignore[union-attr]

    state = run_coro_as_sync(final_state())
    assert state is not None
    assert state.is_completed(), (state, worker.stderr[-2000:])  # type: ignore[attr-defined]
    on_ncp = servers_by_name(sim.state())
    assert len(on_ncp) == 16
    assert all(len(v) == 1 for v in on_ncp.values())
    assert SIM_SECRET not in str(flow_run.parameters)
