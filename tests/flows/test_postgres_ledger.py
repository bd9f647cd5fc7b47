"""A ledger that outlives the machine: fleet on a PostgreSQL ledger, as many workers run it.

Real PostgreSQL (tests/support/pgserver.py), the simulator over loopback, and fleet in processes
of its own that share nothing but the database's URL: other working directories, other
PREFECT_HOMEs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from fleet.ledger import Ledger, State
from fleet.simulator import RunningSimulator, running_simulator
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.pgserver import PASSWORD, PostgresServer
from tests.support.prefect_harness import ROOT, inventory, run, start
from tests.support.simulator import servers_by_name, sim_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A simulator limited to 20 calls/s, so a rollout takes long enough to be interrupted."""
    with running_simulator(sim_config(rate=20, burst=5)) as running:
        yield running


def leaked(text: str) -> bool:
    """Whether the database password shows in a text, as written or URL-quoted."""
    return PASSWORD in text or quote(PASSWORD, safe="") in text


def test_every_command_works_on_a_postgresql_ledger(
    sim: RunningSimulator, postgres_url: str, tmp_path: Path
) -> None:
    """provision, plan, status (from another machine too), teardown: same rollout, no password."""
    work = tmp_path / "work"
    work.mkdir()
    path = inventory(tmp_path / "pg.csv", "pg", 4)
    env = {"FLEET_LEDGER": postgres_url}
    outputs = []
    made = run(
        ["provision", path, "--endpoint", sim.url, "--wait", "--poll-interval", "0.2"], work, **env
    )
    outputs.append(made)
    assert made.returncode == 0, made.stdout + made.stderr
    planned = run(["plan", path, "--endpoint", sim.url], work, **env)
    outputs.append(planned)
    assert planned.returncode == 0 and "created by an earlier run" in planned.stdout
    # Another machine: another directory, another Prefect home, the same URL.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = run(["status", "--rollout", "pg"], elsewhere, PREFECT_HOME=str(elsewhere), **env)
    outputs.append(status)
    assert status.returncode == 0 and "pg-004" in status.stdout and "4 running" in status.stdout
    down = run(
        ["teardown", "--rollout", "pg", "--endpoint", sim.url, "--yes", "--poll-interval", "0.2"],
        work,
        **env,
    )
    outputs.append(down)
    assert down.returncode == 0, down.stdout + down.stderr
    assert sim.state()["servers"] == []
    shown = "".join(o.stdout + o.stderr for o in outputs)
    files = "".join(p.read_text("utf-8", "replace") for p in work.rglob("*") if p.is_file())
    assert not leaked(shown) and not leaked(files)
    assert "postgresql://fleet:***@" in made.stdout  # the ledger, shown redacted


def test_an_unreachable_database_stops_the_run_before_any_create(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """No database at the URL: exit 2 with a clear message, and nothing reaches NCP."""
    url = f"postgresql://fleet:{quote(PASSWORD, safe='')}@127.0.0.1:9/nowhere"
    path = inventory(tmp_path / "down.csv", "down", 2)
    result = run(["provision", path, "--endpoint", sim.url], tmp_path, FLEET_LEDGER=url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ledger postgresql://fleet:***@127.0.0.1:9/nowhere" in result.stderr
    assert "Traceback" not in result.stderr and not leaked(result.stdout + result.stderr)
    assert sim.state()["counters"]["requests"] == 0


def test_a_database_lost_mid_run_stops_sending_and_a_rerun_finishes(
    sim: RunningSimulator, postgres: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    """Cut the database mid-rollout: exit 1, no create without its mark; back: a rerun ends it."""
    database = urlsplit(postgres_url).path.lstrip("/")
    path = inventory(tmp_path / "cut.csv", "cut", 80)
    args = ["provision", path, "--endpoint", sim.url, "--rate", "15", "--settle", "1"]
    args += ["--lease-ttl", "6"]  # the lost run cannot release its lease: it expires
    victim = start(args, tmp_path, FLEET_LEDGER=postgres_url)
    deadline = time.monotonic() + 120
    while sim.state()["counters"]["created"] < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    postgres.cut_off(database)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 1, out + err
    assert "stopped part-way" in err and not leaked(out + err)
    postgres.restore(database)
    with Ledger(postgres_url) as book:
        marked = {
            r.name for r in book.records("cut") if r.state in (State.IN_FLIGHT, State.CREATED)
        }
    made = servers_by_name(sim.state())
    assert 20 <= len(made) < 80
    assert set(made) <= marked, "a create went out without its in-flight mark committed"
    rerun = run([*args, "--wait-for-lease"], tmp_path, FLEET_LEDGER=postgres_url)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    on_ncp = servers_by_name(sim.state())
    with Ledger(postgres_url) as book:
        records = book.records("cut")
    assert len(on_ncp) == 80 and all(len(v) == 1 for v in on_ncp.values())
    assert {r.name: [r.instance_no] for r in records} == on_ncp


def isolated(args: list[str], home: Path, url: str) -> subprocess.Popen[str]:
    """Start fleet in a directory of its own with a Prefect of its own: nothing shared."""
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        NCLOUD_ACCESS_KEY=SIM_ACCESS,
        NCLOUD_SECRET_KEY=SIM_SECRET,
        FLEET_LEDGER=url,
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "flows", *args],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its temporary Prefect server dies with it
    )


def test_workers_sharing_only_the_database_url_create_each_server_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two start together: one runs, one exits 2. The runner is killed; a third finishes it."""
    path = inventory(tmp_path / "many.csv", "many", 150)
    with running_simulator(sim_config(rate=12, burst=3)) as sim:
        args = [
            "provision",
            path,
            "--endpoint",
            sim.url,
            "--rate",
            "10",
            "--lease-ttl",
            "6",
            "--settle",
            "3",
        ]
        first = isolated(args, tmp_path / "a", postgres_url)
        second = isolated(args, tmp_path / "b", postgres_url)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.poll() is None and second.poll() is None:
            time.sleep(0.2)
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        _, err = loser.communicate(timeout=60)
        assert loser.returncode == 2 and "is being run by" in err, err[-2000:]
        while sim.state()["counters"]["created"] < 30 and winner.poll() is None:
            time.sleep(0.05)
        assert winner.poll() is None, "the run ended before it could be killed"
        os.killpg(winner.pid, signal.SIGKILL)
        winner.wait()
        third = isolated([*args, "--wait-for-lease"], tmp_path / "c", postgres_url)
        out, err = third.communicate(timeout=300)
        assert third.returncode == 0, out[-2000:] + err[-3000:]
        on_ncp = servers_by_name(sim.state())
    with Ledger(postgres_url) as book:
        records = book.records("many")
    assert len(on_ncp) == 150 and all(len(v) == 1 for v in on_ncp.values())
    assert {r.name: [r.instance_no] for r in records} == on_ncp
