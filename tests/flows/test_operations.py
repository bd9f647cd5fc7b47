"""Exactly once as operators run it: two runs at once, a kill and a rerun, the wrong endpoint.

Each test runs ``fleet`` in processes of its own against the simulator over loopback, sharing
nothing but the ledger and the simulator, as a cron run and a manual run would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger import Binding, Ledger, State
from fleet.planned import PlannedServer
from fleet.simulator import RunningSimulator, running_simulator
from tests.support.prefect_harness import inventory, run, start
from tests.support.simulator import servers_by_name, sim_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A simulator limited to 25 calls/s, so a rollout of 60 takes a few seconds."""
    with running_simulator(sim_config(rate=25, burst=5)) as running:
        yield running


def test_two_runs_of_one_rollout_at_once_create_nothing_twice(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """The lease admits one run; a second exits 2 naming it; a third queues and finds all done."""
    path = inventory(tmp_path / "twin.csv", "twin", 60)
    # 60 creates at 5/s: the first run holds the rollout for 12 s once it sends.
    common = ["provision", path, "--endpoint", sim.url, "--ledger", "ledger.db", "--rate", "5"]
    first = start(common, tmp_path)
    # The others start once the first is sending: three processes started at once reach the
    # lease in any order (a queued one first, and both others are refused), which is right
    # but not the story this test tells.
    deadline = time.monotonic() + 120
    while sim.state()["counters"]["created"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = start(common, tmp_path)
    queued = start([*common, "--wait-for-lease"], tmp_path)
    outs = [p.communicate(timeout=240) for p in (first, second, queued)]
    codes = sorted([first.returncode, second.returncode, queued.returncode])
    runs = zip((first, second, queued), outs, strict=True)
    refused = next(err for p, (_, err) in runs if p.returncode == 2)
    assert codes == [0, 0, 2], outs
    assert "is being run by" in refused and "pid" in refused and "since" in refused
    assert "nothing was sent" in refused
    on_ncp = servers_by_name(sim.state())
    assert len(on_ncp) == 60 and all(len(v) == 1 for v in on_ncp.values())
    assert sim.state()["counters"]["created"] == 60


def test_a_kill_and_an_immediate_rerun_under_a_lagging_list_create_nothing_twice(
    tmp_path: Path,
) -> None:
    """Killed mid-rollout while NCP lists servers 8-10 s late; rerun at once: each server once."""
    config = sim_config(rate=40, burst=5, list_lag=8.0, list_lag_jitter=2.0, latency=0.05)
    config = config.__class__(**{**config.__dict__, "slow": 0.1, "slow_seconds": 1.0})
    path = inventory(tmp_path / "lag.csv", "lag", 120)
    args = [
        "provision",
        path,
        "--endpoint",
        "",
        "--ledger",
        "ledger.db",
        "--rate",
        "30",
        "--settle",
        "12",
        "--lease-ttl",
        "6",
        "--request-timeout",
        "0.6",
    ]
    with running_simulator(config) as sim:
        args[3] = sim.url
        victim = start(args, tmp_path)
        deadline = time.monotonic() + 120
        while sim.state()["counters"]["created"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        with Ledger(tmp_path / "ledger.db") as book:
            flying = [r.name for r in book.records("lag") if r.state == State.IN_FLIGHT]
        assert flying, "the kill should leave creates whose answers were never recorded"
        rerun = run([*args, "--wait-for-lease"], tmp_path)
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
        time.sleep(10.5)  # everything NCP made is listed by now
        on_ncp = servers_by_name(sim.state())
    with Ledger(tmp_path / "ledger.db") as book:
        records = book.records("lag")
    twice = {k: v for k, v in on_ncp.items() if len(v) > 1}
    assert len(records) == 120 and not twice, twice
    assert {r.name: [r.instance_no] for r in records} == on_ncp


def test_a_rehearsal_never_touches_a_ledger_of_real_rollouts(tmp_path: Path) -> None:
    """--simulator with --ledger pointing at a real ledger exits 2 and leaves every row alone."""
    spec = PlannedServer("real-001", "real.csv", 2, (("vpcNo", "1"), ("serverName", "real-001")))
    with Ledger(tmp_path / "real.db") as book:
        book.acquire("real", "someone", "an operator", ttl=1)
        book.plan("real", [spec], owner="someone")
        book.bind(Binding("real", "https://ncloud.apigw.ntruss.com", "key-1", rehearsal=False))
        book.release("real", "someone")
    path = inventory(tmp_path / "real.csv", "real", 1)
    result = run(["provision", path, "--simulator", "--ledger", "real.db"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds real rollouts (real)" in result.stderr
    with Ledger(tmp_path / "real.db") as book:
        assert [r.name for r in book.records("real")] == ["real-001"]


def test_a_teardown_pointed_at_another_endpoint_changes_nothing(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A rollout made at one endpoint is not torn down (nor marked) from another: exit 2."""
    path = inventory(tmp_path / "home.csv", "home", 3)
    made = run(["provision", path, "--endpoint", sim.url, "--ledger", "l.db"], tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    with running_simulator(sim_config()) as elsewhere:
        result = run(
            [
                "teardown",
                "--rollout",
                "home",
                "--endpoint",
                elsewhere.url,
                "--ledger",
                "l.db",
                "--yes",
            ],
            tmp_path,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "lives at" in result.stderr and "--rebind" in result.stderr
    assert len(sim.state()["servers"]) == 3
    with Ledger(tmp_path / "l.db") as book:
        assert {r.state for r in book.records("home")} == {State.CREATED}


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--rollout", "x"],
        ["plan", "INVENTORY", "--endpoint", "URL"],
        ["provision", "INVENTORY", "--endpoint", "URL"],
        ["teardown", "--rollout", "x", "--endpoint", "URL", "--yes"],
    ],
)
def test_a_corrupt_ledger_is_a_clear_error_in_every_command(
    sim: RunningSimulator, tmp_path: Path, command: list[str]
) -> None:
    """A damaged ledger file stops every command with exit 2 and its path: no traceback."""
    (tmp_path / "bad.db").write_bytes(b"\x00garbage, not a database\x00" * 200)
    path = inventory(tmp_path / "x.csv", "x", 1)
    args = [path if a == "INVENTORY" else sim.url if a == "URL" else a for a in command]
    result = run([*args, "--ledger", "bad.db"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "bad.db" in result.stderr and "Traceback" not in result.stderr
    assert sim.state()["counters"]["by_action"].get("createServerInstances", 0) == 0


def test_keys_whose_secret_holds_a_percent_sign_work(tmp_path: Path) -> None:
    """~/.ncloud/configure is read as written: a '%' in a profile's secret is part of it."""
    secret = "s3cr%t-%(name)s-100%"
    config = sim_config(secret_key=secret)
    home = tmp_path / "home"
    (home / ".ncloud").mkdir(parents=True)
    (home / ".ncloud" / "configure").write_text(
        f"[work]\nncloud_access_key_id = {config.access_key}\nncloud_secret_access_key = {secret}\n"
    )
    path = inventory(tmp_path / "pct.csv", "pct", 2)
    with running_simulator(config) as sim:
        result = run(
            ["provision", path, "--endpoint", sim.url, "--ledger", "l.db", "--profile", "work"],
            tmp_path,
            HOME=str(home),
            NCLOUD_ACCESS_KEY="",
            NCLOUD_SECRET_KEY="",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(sim.state()["servers"]) == 2
    assert secret not in result.stdout + result.stderr
