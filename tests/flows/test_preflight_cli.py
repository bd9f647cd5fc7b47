"""Preflight and side resources at the command line: plan, provision and teardown, as run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.simulator import RunningSimulator
from flows.cli.app import app
from tests.support.prefect_harness import keyed_simulator

ROOT = Path(__file__).resolve().parents[2]
BAD = str(ROOT / "inventories" / "bad-references.csv")
DEMO = str(ROOT / "inventories" / "demo.csv")
runner = CliRunner()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningSimulator]:
    """A simulator with its keys in the environment; the command runs in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    with keyed_simulator(monkeypatch) as running:
        yield running


def creates(sim: RunningSimulator) -> int:
    """Return how many creates reached the simulator."""
    counted: int = sim.state()["counters"]["by_action"].get("createServerInstances", 0)
    return counted


def test_plan_names_every_bad_reference_and_creates_nothing(sim: RunningSimulator) -> None:
    """Plan exits 2 with one FILE:LINE: COLUMN: line per problem; nothing is created."""
    result = runner.invoke(app, ["plan", BAD, "--endpoint", sim.url])
    assert result.exit_code == 2, result.output
    assert f"{BAD}:8: serverImageNo: no such server image in region KR (found '99999999')" in (
        result.output
    )
    assert f"{BAD}:22: networkInterfaceList.2.networkInterfaceNo: in use by server" in (
        result.output
    )
    assert "11 problem(s) found; nothing was sent." in result.output
    assert creates(sim) == 0


def test_plan_checks_a_good_inventory_and_no_preflight_skips_it(sim: RunningSimulator) -> None:
    """A good inventory passes with its read calls counted; --no-preflight warns and reads none."""
    checked = runner.invoke(app, ["plan", DEMO, "--endpoint", sim.url])
    assert checked.exit_code == 3, checked.output  # a good inventory, 16 to create
    assert "preflight: 9 distinct references of 4 rows checked with 7 read calls" in (
        checked.output
    )
    sim.reset()
    skipped = runner.invoke(app, ["plan", BAD, "--endpoint", sim.url, "--no-preflight"])
    assert skipped.exit_code == 3, skipped.output
    assert "warning: preflight skipped (--no-preflight)" in skipped.output
    assert {c["action"] for c in sim.calls()} == {"getServerInstanceList"}


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_provision_stops_at_a_bad_reference_before_any_create(sim: RunningSimulator) -> None:
    """Provision on a wrong inventory exits 2 listing every problem, with zero creates."""
    result = runner.invoke(app, ["provision", BAD, "--endpoint", sim.url])
    assert result.exit_code == 2, result.output
    assert "11 problem(s) found; nothing was sent." in result.output
    assert creates(sim) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_staged_rollout_stops_at_a_bad_reference_before_its_canary(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """With a canary, a spec that does not fit the image is named in the plan: no canary made."""
    path = tmp_path / "staged.csv"
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo\n"
        "app,10,25495367,s2-g3,75001,75101\n"
        "bad,10,25495367,s2-g2-s50,75001,75101\n"
    )
    result = runner.invoke(app, ["provision", str(path), "--endpoint", sim.url, "--canary", "4"])
    assert result.exit_code == 2, result.output
    assert f"{path}:3: serverSpecCode: does not run server image 25495367" in result.output
    assert creates(sim) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_teardown_lists_and_returns_public_ips_and_disks(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """--dry-run lists the public IPs and disks; teardown --yes leaves nothing billed."""
    path = tmp_path / "pub.csv"
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo,"
        "associateWithPublicIp,blockStorageMappingList.1.order,"
        "blockStorageMappingList.1.blockStorageSize\n"
        "pub,2,25495367,s2-g3,75001,75101,true,1,20\n"
    )
    made = runner.invoke(app, ["provision", str(path), "--endpoint", sim.url])
    assert made.exit_code == 0, made.output
    assert len(sim.state()["public_ips"]) == len(sim.state()["block_storages"]) == 2
    listed = runner.invoke(
        app, ["teardown", "--rollout", "pub", "--endpoint", sim.url, "--dry-run"]
    )
    assert listed.exit_code == 0, listed.output
    assert "4 public IPs and disks to return" in listed.output
    assert len(sim.state()["public_ips"]) == 2  # a dry run changes nothing
    gone = runner.invoke(
        app,
        ["teardown", "--rollout", "pub", "--endpoint", sim.url, "--yes", "--poll-interval", "0.2"],
    )
    assert gone.exit_code == 0, gone.output
    assert "4 public IPs and disks returned" in gone.output
    state = sim.state()
    assert state["servers"] == state["public_ips"] == state["block_storages"] == []
