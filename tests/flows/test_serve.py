"""fleet serve: schedules need a real Prefect API; with one, both flows are served."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "inventories" / "demo.csv")


def test_serve_without_a_prefect_server_says_what_to_start(tmp_path: Path) -> None:
    """Without PREFECT_API_URL, serve exits 2 and names the server to start."""
    # A process of its own: in this one, the session's test server may be configured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path)  # an empty profile: no API URL there either
    result = subprocess.run(
        [sys.executable, "-m", "flows", "serve", DEMO, "--cron", "0 3 * * *"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "prefect server start" in result.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_serve_registers_a_scheduled_provision_and_a_teardown(tmp_path: Path) -> None:
    """A served rollout shows up as two deployments, the provision one on its cron schedule."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.asyncutils import run_coro_as_sync

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows", "serve", DEMO, "--cron", "0 3 * * *", "--name", "nightly"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    async def deployments() -> dict[str, object]:
        async with get_client() as client:
            found: dict[str, object] = {}
            for name in ("provision-fleet/nightly", "teardown-fleet/nightly"):
                with contextlib.suppress(ObjectNotFound):  # not registered yet
                    found[name] = await client.read_deployment_by_name(name)
            return found

    try:
        found: dict[str, object] = {}
        deadline = time.monotonic() + 90
        while len(found) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            found = run_coro_as_sync(deployments())
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0]
    assert len(found) == 2, output[-3000:]
    provision = found["provision-fleet/nightly"]
    crons = [s.schedule.cron for s in provision.schedules]  # type: ignore[attr-defined]
    assert crons == ["0 3 * * *"]
    assert provision.parameters["inventories"] == [DEMO]  # type: ignore[attr-defined]
