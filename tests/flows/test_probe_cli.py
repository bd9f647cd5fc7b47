"""`fleet probe` as a user runs it (document, exit codes, a kill, a rerun), and its profile read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from typer.testing import CliRunner

from fleet.ledger import Binding
from fleet.options import ProvisionOptions, RunOptions
from fleet.probe import Profile, Throttle, write_profile
from fleet.simulator import RunningSimulator
from flows.cli.app import app
from flows.cli.probing import with_profile
from flows.runtime import _known_rate
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.prefect_harness import inventory, keyed_simulator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "probe-profile.schema.json").read_text())
runner = CliRunner()
# A quick probe: no rate measurement (its own tests run on a fake clock), short waits.
QUICK = ["--no-rate-probe", "--poll-interval", "0.1", "--lag-limit", "2", "--time-limit", "30"]


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningSimulator]:
    """A simulator with quick lifecycles and its keys in the environment, in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    lifecycle = {"create_seconds": 0.3, "setup_seconds": 0.6, "list_lag": 0.3}
    with keyed_simulator(monkeypatch, **lifecycle, duplicate_names="refused") as running:
        yield running


def test_json_prints_the_profile_it_writes(sim: RunningSimulator) -> None:
    """--json: stdout is the profile written to --output, valid by the schema; no secret shown."""
    result = runner.invoke(app, ["probe", "--endpoint", sim.url, "--json", *QUICK])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == json.loads(Path(".fleet/probe-profile.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["clock_offset_s"] is not None and document["list_lag_s"] is None
    assert "needs --create" in document["notes"]["list_lag_s"]
    assert SIM_SECRET not in result.stdout + result.stderr


def test_a_create_probe_prints_its_table_and_exits_0(sim: RunningSimulator, tmp_path: Path):
    """--create: every figure measured (rate aside, not asked), one server made and removed."""
    row = inventory(tmp_path / "web.csv", "web", 3)
    result = runner.invoke(app, ["probe", "--endpoint", sim.url, "--create", row, *QUICK])
    assert result.exit_code == 0, result.stderr
    assert "list_lag_s" in result.stdout and "refused" in result.stdout
    assert "removing: 1 gone" in result.stderr  # progress, while it waits
    assert not sim.state()["servers"] and sim.state()["counters"]["created"] == 1


def test_something_not_measured_exits_1(sim: RunningSimulator, tmp_path: Path) -> None:
    """A row NCP refuses: nothing made, the create figures null, exit 1 naming them."""
    row = inventory(tmp_path / "bad.csv", "web", 1, vpc="99999")
    result = runner.invoke(app, ["probe", "--endpoint", sim.url, "--create", row, *QUICK])
    assert result.exit_code == 1, result.stderr
    assert "not measured: list_lag_s, boot_s" in result.stderr
    assert sim.state()["counters"]["created"] == 0


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        ([], {"NCLOUD_SECRET_KEY": "wrong-secret-key"}, "refused the keys"),
        (["--create", str(ROOT / "inventories" / "broken.csv")], {}, "problem(s) found"),
        (["--max-reads", "5"], {}, "--max-reads"),
        (["--site", "moon"], {}, "unknown site"),
    ],
)
def test_bad_keys_or_configuration_exit_2(sim, monkeypatch, args, env, said) -> None:
    """Keys refused, an invalid row, a bad option: exit 2, said on stderr, nothing created."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["probe", "--endpoint", sim.url, *QUICK, *args])
    assert result.exit_code == 2, result.output
    assert said in result.stderr and "wrong-secret-key" not in result.output
    assert sim.state()["counters"]["created"] == 0


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "NCLOUD_ACCESS_KEY": SIM_ACCESS,
        "NCLOUD_SECRET_KEY": SIM_SECRET,
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.slow
def test_killed_mid_probe_the_next_probe_removes_what_it_left(sim, tmp_path) -> None:
    """SIGKILL once a server exists; the next probe (read-only) removes it: none left, 2 at most."""
    row = inventory(tmp_path / "web.csv", "web", 1)
    probe = [sys.executable, "-m", "flows", "probe", "--endpoint", sim.url, *QUICK]
    victim = subprocess.Popen(
        [*probe, "--create", row], cwd=tmp_path, env=_env(), stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while not sim.state()["servers"]:
        assert victim.poll() is None, "the probe ended before it created anything"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert json.loads((tmp_path / ".fleet" / "probe-intent.json").read_text())["names"]
    again = subprocess.run(
        [*probe, "--json"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    state = sim.state()
    assert not state["servers"] and state["counters"]["created"] <= 2
    assert len(json.loads(again.stdout)["removed"]) == state["counters"]["created"]
    assert not (tmp_path / ".fleet" / "probe-intent.json").exists()


MEASURED = Profile(
    measured_at="2024-01-01T03:00:00Z",
    endpoint="https://ncloud.apigw.ntruss.com",
    rate_per_s=42.0,
    burst=4,
    throttle=Throttle(429, "420", None),
    list_lag_s=12.0,
    boot_s=55.0,
    name_filter=None,
)


@pytest.mark.slow
def test_the_simulator_takes_a_profile_and_flags_win_over_it(tmp_path: Path) -> None:
    """`fleet simulator --profile FILE --rate 7`: the profile's figures, but the rate given."""
    write_profile(MEASURED, tmp_path / "p.json")
    argv = [sys.executable, "-m", "fleet.simulator", "--profile", str(tmp_path / "p.json")]
    child = subprocess.Popen([*argv, "--rate", "7"], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(3)]
        url = lines[0].split()[-1]
        config = httpx.get(f"{url}/_admin/state", timeout=10).json()["config"]
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert "behaving as measured" in lines[1]
    assert (config["rate"], config["burst"], config["list_lag"]) == (7.0, 4.0, 12.0)
    assert config["create_seconds"] + config["setup_seconds"] == pytest.approx(55.0)
    assert (config["throttle_code"], config["retry_after"]) == ("420", False)
    assert config["name_filter"] == "substring"  # not measured: left as it was


def test_provision_takes_defaults_from_a_profile_and_says_so(tmp_path, monkeypatch, capsys):
    """Settle, start rate and poll from the profile; a flag given wins; it says so on stderr."""
    monkeypatch.chdir(tmp_path)
    write_profile(MEASURED, tmp_path / ".fleet" / "probe-profile.json")
    values = with_profile({"settle": 90.0}, None, simulator=False)  # measured at this endpoint
    assert values == {"settle": 90.0, "start_rate": 42.0, "poll_interval": 5.5}
    said = capsys.readouterr().err
    assert "--settle given" in said and "start_rate 42 (from rate_per_s 42)" in said
    ProvisionOptions(**values)  # all valid options
    elsewhere = {"endpoint": "http://127.0.0.1:9"}
    assert with_profile(elsewhere, None, simulator=False) == elsewhere  # measured elsewhere
    assert with_profile({}, None, simulator=True) == {}  # a rehearsal's simulator is new
    named = with_profile(elsewhere, tmp_path / ".fleet" / "probe-profile.json", simulator=True)
    assert named["settle"] == 42.0  # named: taken wherever it was measured


class _Remembers:
    def __init__(self, rate: float | None) -> None:
        self.rate = rate

    async def known_rate(self, endpoint: str, account: str) -> float | None:
        return self.rate


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("remembered", "options", "starts"),
    [
        (None, RunOptions(start_rate=42.0), 42.0),  # nothing remembered: the profile's
        (55.0, RunOptions(start_rate=42.0), 55.0),  # a run's own measure outranks it
        (None, RunOptions(rate=30.0, start_rate=42.0), None),  # a named rate: no discovery
    ],
)
async def test_auto_rate_starts_at_the_remembered_rate_else_the_given_one(
    remembered, options, starts
):
    """--start-rate (a profile's rate) is where --rate auto starts when no run remembered one."""
    binding = Binding("web", "https://x", "key-1", False)
    ledger: Any = _Remembers(remembered)  # the one method _known_rate reads
    assert await _known_rate(ledger, binding, options) == starts
