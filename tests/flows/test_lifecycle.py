"""A server's life after its create, as an operator meets it: teardown, replace, resize, counts.

Each test plays one case of the issue "One life per server" through the command line, on the
simulator over loopback, most of them under a lagging listing: a change killed between two of
its steps and finished by the next run, a teardown that never takes "not listed yet" for gone,
and every count read from the ledger's one state of each server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.ncp.client import ServerInstance
from fleet.options import ProvisionOptions
from fleet.report.summary import RolloutSummary
from fleet.simulator import RunningSimulator
from flows.cli.app import app
from flows.provision import provision_fleet
from tests.support.engine import client_for, specs
from tests.support.prefect_harness import keyed_simulator, start
from tests.support.schemas import conforms
from tests.support.simulator import servers_by_name

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

runner = CliRunner()
IMAGE_A, IMAGE_B = "25495367", "23214590"


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run each command in a scratch directory (its .fleet/ stays there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def lagging(monkeypatch: pytest.MonkeyPatch, chdir: Path) -> Iterator[RunningSimulator]:
    """A simulator that lists new servers 1.5 s late; servers boot and stop in a moment."""
    with keyed_simulator(
        monkeypatch, list_lag=1.5, create_seconds=0.1, setup_seconds=0.1
    ) as running:
        yield running


def inventory(path: Path, count: int, image: str = IMAGE_A, spec: str = "s2-g3") -> str:
    """Write a one-row inventory making web-001..."""
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo\n"
        f"web,{count},{image},{spec},75001,75101\n"
    )
    return str(path)


def fleet(sim: RunningSimulator, *args: str, rollout: str = "life") -> Any:
    """Run a fleet command in this process, on the simulator and the scratch ledger."""
    common = ["--endpoint", sim.url, "--ledger", "l.db", "--rollout", rollout]
    return runner.invoke(app, [*args, *common])


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def status(sim: RunningSimulator, rollout: str = "life") -> dict[str, Any]:
    """Return ``fleet status ROLLOUT --json``, held to its schema."""
    result = runner.invoke(app, ["status", rollout, "--ledger", "l.db", "--json"])
    assert result.exit_code == 0, result.output
    return conforms("status", result.stdout)


def until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait until ``check()`` holds (the simulator's clock is real here)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def killed_when(
    sim: RunningSimulator, cwd: Path, args: list[str], moment: Callable[[dict[str, Any]], bool]
) -> None:
    """Run ``fleet ARGS`` in a process and SIGKILL it once the simulator's state is ``moment``."""
    common = ["--endpoint", sim.url, "--ledger", "l.db", "--rollout", "life", "--lease-ttl", "5"]
    victim = start([*args, *common], cwd)
    try:
        until(lambda: moment(sim.state()) or victim.poll() is not None, 120)
        assert victim.poll() is None, "the run ended before it could be killed: " + str(
            victim.communicate()
        )
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate()


def statuses(state: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Return instance number -> (status, operation) of every server the simulator holds."""
    return {s["serverInstanceNo"]: (s["status"], s["operation"]) for s in state["servers"]}


def listed(sim: RunningSimulator, no: str) -> ServerInstance:
    """Return one server as NCP lists it (by its number)."""

    async def read() -> list[ServerInstance]:
        async with client_for(sim.url) as client:
            return await client.get_servers([no])

    (server,) = asyncio.run(read())
    return server


def numbers(document: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["instance_no"] for s in document["servers"]}


# -- teardown under a lagging listing ---------------------------------------------------------


def test_a_teardown_under_a_lagging_list_takes_down_what_ncp_has_not_listed_yet(
    lagging: RunningSimulator, chdir: Path
) -> None:
    """Created, not listed yet, torn down at once: each waited for, then really terminated."""
    path = inventory(chdir / "life.csv", 4)
    ok(fleet(lagging, "provision", path, "--no-preflight"))
    assert len(lagging.state()["servers"]) == 4
    ok(fleet(lagging, "teardown", "--yes", "--poll-interval", "0.2"))
    time.sleep(2.0)  # past the lag: a server never stopped would be listed, and RUN, by now
    assert lagging.state()["servers"] == []
    document = status(lagging)
    assert {s["state"] for s in document["servers"]} == {"terminated"}
    assert document["counts"]["terminated"] == 4 and document["counts"]["running"] == 0
    # Torn down is retired: the next run (a nightly one) creates nothing, and says why.
    again = fleet(lagging, "provision", path, "--no-preflight")
    assert again.exit_code == 2 and "retired" in again.output, again.output
    assert "retired" in fleet(lagging, "plan", path, "--no-preflight").output
    assert lagging.state()["servers"] == []
    ok(fleet(lagging, "provision", path, "--no-preflight", "--revive"))
    assert {n: len(nos) for n, nos in servers_by_name(lagging.state()).items()} == {
        f"web-00{i}": 1 for i in range(1, 5)
    }


def test_a_teardown_out_of_time_never_marks_an_unlisted_server_terminated(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """NCP lists nothing within the time limit: exit 1, each left live and said, none renewed."""
    with keyed_simulator(monkeypatch, list_lag=600.0) as sim:
        path = inventory(chdir / "life.csv", 3)
        ok(fleet(sim, "provision", path, "--no-preflight"))
        down = fleet(sim, "teardown", "--yes", "--poll-interval", "0.2", "--time-limit", "1.5")
        assert down.exit_code == 1, down.output
        assert "not listed by NCP yet" in down.output
        document = status(sim)
        assert "terminated" not in {s["state"] for s in document["servers"]}
        assert document["counts"]["terminated"] == 0
        # The next run makes no second server under any name.
        # Revived: the teardown it left is finished first (within --wait-timeout), and no name
        # gets a second server while its first one is still on NCP.
        fleet(sim, "provision", path, "--no-preflight", "--revive", "--wait-timeout", "1.5")
        assert {n: len(nos) for n, nos in servers_by_name(sim.state()).items()} == {
            "web-001": 1,
            "web-002": 1,
            "web-003": 1,
        }


def test_waiting_for_run_waits_for_servers_ncp_lists_later_than_the_settle_window(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """NCP lists new servers 2 s late, past a 0.5 s --settle: waited for, all RUN, none 'gone'."""
    with keyed_simulator(monkeypatch, list_lag=2.0, create_seconds=0.1, setup_seconds=0.1) as sim:
        path = inventory(chdir / "life.csv", 3)
        ok(fleet(sim, "provision", path, "--wait", "--settle", "0.5", "--poll-interval", "0.2",
                 "--no-preflight"))  # fmt: skip
        document = status(sim)
        on_ncp = servers_by_name(sim.state())
    assert {s["state"] for s in document["servers"]} == {"running"}
    assert {n: len(nos) for n, nos in on_ncp.items()} == {"web-001": 1, "web-002": 1, "web-003": 1}


# -- replace and resize, killed between two steps, finished by the next run --------------------


def test_a_replace_killed_once_the_new_servers_exist_is_finished_by_the_next_run(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Killed with new and old servers up: plan shows the retirements, a plain rerun does them."""
    with keyed_simulator(monkeypatch, list_lag=1.0, create_seconds=0.1, setup_seconds=2.0) as sim:
        ok(fleet(sim, "provision", inventory(chdir / "life.csv", 2), "--wait",
                 "--poll-interval", "0.2", "--no-preflight"))  # fmt: skip
        old = numbers(status(sim))
        edited = inventory(chdir / "life.csv", 2, image=IMAGE_B)
        killed_when(
            sim,
            chdir,
            ["provision", edited, "--replace", "--wait", "--poll-interval", "0.2",
             "--no-preflight"],
            lambda state: len(state["servers"]) == 4,
        )  # fmt: skip
        plan = fleet(sim, "plan", edited, "--json", "--no-preflight")
        retiring = {c["instance_no"] for c in json.loads(plan.stdout)["changes"]
                    if c["action"] == "retire"}  # fmt: skip
        assert retiring == set(old.values()), plan.stdout
        ok(fleet(sim, "provision", edited, "--wait", "--poll-interval", "0.2",
                 "--no-preflight"))  # fmt: skip
        until(lambda: len(sim.state()["servers"]) == 2)
        on_ncp = servers_by_name(sim.state())
    assert {n: len(nos) for n, nos in on_ncp.items()} == {"web-001": 1, "web-002": 1}
    assert not set(old.values()) & {no for nos in on_ncp.values() for no in nos}


def test_a_replace_killed_after_the_old_servers_stopped_is_finished_by_the_next_run(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Killed while the old servers stopped: the next run terminates them, never leaves them."""
    with keyed_simulator(
        monkeypatch, list_lag=1.0, create_seconds=0.1, setup_seconds=0.1, stop_seconds=2.0
    ) as sim:
        ok(fleet(sim, "provision", inventory(chdir / "life.csv", 2), "--wait",
                 "--poll-interval", "0.2", "--no-preflight"))  # fmt: skip
        old = set(numbers(status(sim)).values())
        edited = inventory(chdir / "life.csv", 2, image=IMAGE_B)

        def stopping(state: dict[str, Any]) -> bool:
            seen = statuses(state)
            return all(no in seen and seen[no] != ("RUN", "NULL") for no in old)

        killed_when(
            sim,
            chdir,
            ["provision", edited, "--replace", "--wait", "--poll-interval", "0.2",
             "--no-preflight"],
            stopping,
        )  # fmt: skip
        ok(fleet(sim, "provision", edited, "--wait", "--poll-interval", "0.2",
                 "--no-preflight"))  # fmt: skip
        until(lambda: not old & set(statuses(sim.state())))
        on_ncp = servers_by_name(sim.state())
    assert {n: len(nos) for n, nos in on_ncp.items()} == {"web-001": 1, "web-002": 1}


def test_replacements_slower_than_the_wait_retire_the_old_servers_on_a_later_run(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """New servers slower than --wait-timeout: old ones stay, and go once a later run sees RUN."""
    with keyed_simulator(monkeypatch, list_lag=0.5, create_seconds=0.1, setup_seconds=3.0) as sim:
        path = inventory(chdir / "life.csv", 3)
        ok(fleet(sim, "provision", path, "--no-preflight"))
        until(lambda: {s["status"] for s in sim.state()["servers"]} == {"RUN"})
        old = set(numbers(status(sim)).values())
        edited = inventory(chdir / "life.csv", 3, image=IMAGE_B)
        slow = fleet(sim, "provision", edited, "--replace", "--wait", "--wait-timeout", "0.5",
                     "--poll-interval", "0.2", "--no-preflight")  # fmt: skip
        assert slow.exit_code == 1, slow.output
        assert len(sim.state()["servers"]) == 6  # new before old: the old ones still stand
        until(lambda: {s["status"] for s in sim.state()["servers"]} == {"RUN"})
        ok(fleet(sim, "provision", edited, "--replace", "--wait", "--poll-interval", "0.2",
                 "--no-preflight"))  # fmt: skip
        until(lambda: not old & set(statuses(sim.state())))
        on_ncp = servers_by_name(sim.state())
    assert {n: len(nos) for n, nos in on_ncp.items()} == dict.fromkeys(
        ["web-001", "web-002", "web-003"], 1
    )


def test_a_resize_killed_while_the_server_is_stopped_resumes_at_the_change(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Killed mid-stop: a plain rerun changes the spec, then starts it (never on the old spec)."""
    with keyed_simulator(
        monkeypatch,
        list_lag=0.5,
        create_seconds=0.1,
        setup_seconds=0.1,
        stop_seconds=1.5,
        start_seconds=0.2,
        change_seconds=0.2,
    ) as sim:
        ok(fleet(sim, "provision", inventory(chdir / "life.csv", 1), "--wait",
                 "--poll-interval", "0.2", "--no-preflight"))  # fmt: skip
        (no,) = numbers(status(sim)).values()
        bigger = inventory(chdir / "life.csv", 1, spec="s4-g3")
        killed_when(
            sim,
            chdir,
            ["provision", bigger, "--replace", "--wait", "--poll-interval", "0.2",
             "--no-preflight"],
            lambda state: statuses(state).get(no) == ("RUN", "SHTDN"),
        )  # fmt: skip
        until(lambda: statuses(sim.state()).get(no) == ("NSTOP", "NULL"))
        ok(fleet(sim, "provision", bigger, "--wait", "--poll-interval", "0.2",
                 "--no-preflight"))  # fmt: skip
        server = listed(sim, no)
        document = status(sim)
        plan = fleet(sim, "plan", bigger, "--json", "--no-preflight")
    assert (server.status, server.operation, server.spec_code) == ("RUN", "NULL", "s4-g3")
    assert document["servers"][0]["state"] == "running"
    assert json.loads(plan.stdout)["changes"] == [], plan.stdout


# -- counts after servers went away ------------------------------------------------------------


def test_after_a_teardown_no_count_or_row_says_running(
    lagging: RunningSimulator, chdir: Path
) -> None:
    """status, its overview, --json and export: terminated servers are terminated, not running."""
    path = inventory(chdir / "life.csv", 4)
    ok(fleet(lagging, "provision", path, "--wait", "--poll-interval", "0.2", "--no-preflight"))
    ok(fleet(lagging, "teardown", "--yes", "--poll-interval", "0.2"))
    table = ok(runner.invoke(app, ["status", "life", "--ledger", "l.db"])).output
    assert "RUN" not in table and "0 running" in table and "4 terminated" in table
    overview = ok(runner.invoke(app, ["status", "--ledger", "l.db"])).output
    assert "terminated" in overview
    listing = ok(runner.invoke(app, ["status", "--ledger", "l.db", "--json"]))
    every = conforms("status", listing.stdout)
    (life,) = every["rollouts"]
    assert (life["counts"]["running"], life["counts"]["terminated"]) == (0, 4)
    document = status(lagging)
    assert document["counts"]["running"] == 0 and document["counts"]["terminated"] == 4
    exported = ok(runner.invoke(app, ["export", "life", "--ledger", "l.db", "--format", "json"]))
    assert "web-00" not in exported.stdout


def test_after_a_prune_the_destroyed_server_is_counted_terminated(
    lagging: RunningSimulator, chdir: Path
) -> None:
    """A count lowered from 3 to 2 with --prune: the last line and status count 2 running."""
    ok(fleet(lagging, "provision", inventory(chdir / "life.csv", 3), "--wait",
             "--poll-interval", "0.2", "--no-preflight"))  # fmt: skip
    pruned = ok(fleet(lagging, "provision", inventory(chdir / "life.csv", 2), "--prune",
                      "--wait", "--poll-interval", "0.2", "--no-preflight"))  # fmt: skip
    last = pruned.output.strip().splitlines()[-1]
    assert "2 running" in last and "1 terminated" in last, last
    document = status(lagging)
    states = {s["name"]: s["state"] for s in document["servers"]}
    assert states == {"web-001": "running", "web-002": "running", "web-003": "terminated"}
    assert document["counts"]["running"] == 2


def test_after_a_rollback_the_last_lines_count_what_was_taken_back(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Rolled back: none of its servers counted running, its failure counted, the rollback said."""
    with keyed_simulator(monkeypatch, create_seconds=0.1, setup_seconds=0.1) as sim:
        path = chdir / "life.csv"
        path.write_text(
            "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo\n"
            "web,4,25495367,s2-g3,75001,75101\n"
            "bad,1,25495367,s2-g2-s50,75001,75101\n"
        )
        result = fleet(sim, "provision", str(path), "--canary", "2", "--waves", "100%",
                       "--max-failures", "0", "--on-failure", "rollback", "--poll-interval",
                       "0.2", "--no-preflight")  # fmt: skip
        assert result.exit_code == 1, result.output
        document = status(sim)
        until(lambda: sim.state()["servers"] == [])
    counts = document["counts"]
    assert counts["running"] == 0 and counts["failed"] == 1
    assert counts["terminated"] == sum(1 for s in document["servers"] if s["instance_no"])
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("rollout life: 0 running, 1 failed"), last
    assert "rollback: took back 1 server this run made: web-001" in result.output


# -- names across rollouts, adoption ------------------------------------------------------------


def test_two_rollouts_of_one_ledger_started_together_never_both_send_a_name(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Two rollouts, one ledger, same names, at once: one creates, the other exits 2 naming it."""
    with keyed_simulator(monkeypatch, list_lag=1.0) as sim:
        path = inventory(chdir / "web.csv", 6)
        common = ["--endpoint", sim.url, "--ledger", "l.db", "--no-preflight"]
        runs = [start(["provision", path, "--rollout", name, *common], chdir)
                for name in ("first", "second")]  # fmt: skip
        outcomes = [(run.wait(120), run.communicate()) for run in runs]
        time.sleep(1.2)  # past the lag
        on_ncp = servers_by_name(sim.state())
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(out for code, out in outcomes if code == 2)
    assert "claimed by rollout" in refused[1], refused
    assert {n: len(nos) for n, nos in on_ncp.items()} == {f"web-00{i}": 1 for i in range(1, 7)}


def test_a_second_server_under_our_names_from_another_ledger_is_said_with_exit_1(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Two ledgers, one name each, at once: each run says the other's server, and ends failed."""
    # NCP lists nothing until both runs made their servers: neither run's survey sees the other's.
    with keyed_simulator(monkeypatch, list_lag=600.0) as sim:
        path = inventory(chdir / "web.csv", 2)

        def both_made_then_listed() -> None:
            until(lambda: len(sim.state()["servers"]) == 4, 120)
            for server in sim.state()["servers"]:
                sim.server(server["serverInstanceNo"], "show")

        async def both() -> list[Any]:
            runs = [
                provision_fleet(
                    inventories=[path],
                    rollout="web",
                    options=ProvisionOptions(endpoint=sim.url, ledger=f"{n}.db", wait=True,
                                             poll_interval=0.2, preflight=False),
                    return_state=True,
                )
                for n in "ab"
            ]  # fmt: skip
            shown = asyncio.to_thread(both_made_then_listed)
            return list(await asyncio.gather(*runs, shown))[:2]

        states = asyncio.run(both())
        on_ncp = servers_by_name(sim.state())
    assert {n: len(nos) for n, nos in on_ncp.items()} == {"web-001": 2, "web-002": 2}
    for state in states:
        assert state.is_failed()
        summary = state.result(raise_on_failure=False)
        assert isinstance(summary, RolloutSummary)
        said = "\n".join(summary.twins)
        assert "web-001: a second server under this name" in said
        assert "another rollout's create marker" in said, said


def test_adoption_never_takes_a_server_that_carries_another_rollouts_marker(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """Adopting another rollout's marked servers is refused, and its teardown takes none."""
    with keyed_simulator(monkeypatch, create_seconds=0.1, setup_seconds=0.1) as sim:
        path = inventory(chdir / "web.csv", 2)
        ok(fleet(sim, "provision", path, "--no-preflight", rollout="a"))
        result = runner.invoke(app, ["provision", path, "--endpoint", sim.url, "--ledger",
                                     "other.db", "--rollout", "b", "--adopt-existing",
                                     "--no-preflight"])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "another rollout" in result.output
        runner.invoke(app, ["teardown", "--rollout", "b", "--endpoint", sim.url, "--ledger",
                            "other.db", "--yes", "--include-adopted"])  # fmt: skip
        on_ncp = servers_by_name(sim.state())
    assert {n: len(nos) for n, nos in on_ncp.items()} == {"web-001": 1, "web-002": 1}


# -- the dry run is the teardown's own plan --------------------------------------------------------


def test_the_dry_run_lists_exactly_what_the_teardown_takes_and_what_it_leaves(
    monkeypatch: pytest.MonkeyPatch, chdir: Path
) -> None:
    """The dry run's servers are the teardown's; protected and unmarked ones listed, with why."""
    with keyed_simulator(monkeypatch, create_seconds=0.1, setup_seconds=0.1) as sim:
        path = chdir / "life.csv"
        path.write_text(
            "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo,"
            "isProtectServerTermination\n"
            "web,3,25495367,s2-g3,75001,75101,false\n"
            "safe,1,25495367,s2-g3,75001,75101,true\n"
        )
        ok(fleet(sim, "provision", str(path), "--wait", "--poll-interval", "0.2",
                 "--no-preflight"))  # fmt: skip

        # Someone else's server under one of the rollout's names, without our marker.
        async def stranger() -> None:
            async with client_for(sim.url) as client:
                await client.create_server(specs(1, "web", start=2)[0].params)

        asyncio.run(stranger())
        dry = fleet(sim, "teardown", "--dry-run", "--json")
        plan = conforms("teardown-plan", dry.stdout)
        taken = sorted(s["instance_no"] for s in plan["servers"])
        protected = [s["name"] for s in plan["protected"]]
        left = {a["name"]: a["why"] for a in plan["left_alone"]}
        down = fleet(sim, "teardown", "--yes", "--poll-interval", "0.2")
        on_ncp = servers_by_name(sim.state())
    assert protected == ["safe-001"] and "safe-001" not in {s["name"] for s in plan["servers"]}
    assert "no create marker" in left["web-002"]
    assert len(taken) == 3
    for number in taken:
        assert number in down.output  # the teardown's own table is the dry run's
    assert sorted(on_ncp) == ["safe-001", "web-002"]
    assert len(on_ncp["web-002"]) == 1
