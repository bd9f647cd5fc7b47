"""Staged rollouts through Prefect: canary, waves, a failure budget, approval, rollback, events.

On the simulator over loopback and the session's Prefect test server. A row whose creates NCP
refuses uses a spec its image does not run on (NCP's 1413); a server that never boots is the
simulator's never_ready fault.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterTags,
)
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from typer.testing import CliRunner

from fleet.ledger import Ledger
from fleet.options import ProvisionOptions
from fleet.report.summary import RolloutSummary
from fleet.simulator import RunningSimulator
from flows import approval
from flows.provision import provision_fleet
from tests.support.engine import client_for, specs
from tests.support.prefect_harness import keyed_simulator
from tests.support.simulator import servers_by_name

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

GOOD = "25495367,s2-g3"
OTHER = "23214590,s2-g3"  # another image: a change that replaces
REFUSED = "25495367,s2-g2-s50"  # a spec of another image generation: NCP answers 1413


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A simulator whose servers boot in a moment, keys in the environment."""
    with keyed_simulator(monkeypatch, create_seconds=0.1, setup_seconds=0.1) as running:
        yield running


def inventory(path: Path, rows: list[tuple[str, int, str]]) -> str:
    """Write an inventory of (name, count, image+spec) rows."""
    lines = ["serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo"]
    lines += [f"{name},{count},{image},75001,75101" for name, count, image in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def creates(sim: RunningSimulator) -> list[str]:
    """The names every createServerInstances call that reached the simulator asked for."""
    return [c["params"]["serverName"] for c in sim.calls("createServerInstances")]


def options(sim: RunningSimulator, tmp_path: Path, **staging: Any) -> ProvisionOptions:
    return ProvisionOptions(
        endpoint=sim.url,
        ledger=str(tmp_path / "l.db"),
        rate=200,
        poll_interval=0.2,
        wait_timeout=3,
        settle=0.5,
        # REFUSED rows must reach NCP and be refused there, which staging is about: the
        # preflight would stop them in the plan, before any wave.
        preflight=False,
        **staging,
    )


async def test_a_refused_row_stops_the_rollout_after_the_canary(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """The canary holds a server of every row: one refused, nothing beyond the canary is sent."""
    path = inventory(tmp_path / "c.csv", [("app", 10, GOOD), ("bad", 10, REFUSED)])
    state = await provision_fleet(
        inventories=[path],
        options=options(sim, tmp_path, canary="4", waves="50%"),
        return_state=True,
    )
    assert state.is_failed() and "the canary failed" in (state.message or "")
    assert sorted(creates(sim)) == ["app-001", "app-002", "app-003", "bad-001"]
    summary = await state.aresult(raise_on_failure=False)
    assert isinstance(summary, RolloutSummary)
    assert [(w.name, w.servers, w.failed) for w in summary.waves] == [("canary", 4, 1)]


async def test_a_server_that_never_boots_stops_the_rollout_after_the_canary(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A canary server not RUN before the wait timeout counts as a failure: the rollout stops."""
    sim.faults({"action": "createServerInstances", "fault": "never_ready", "serverName": "db-001"})
    path = inventory(tmp_path / "n.csv", [("app", 5, GOOD), ("db", 5, GOOD)])
    state = await provision_fleet(
        inventories=[path], options=options(sim, tmp_path, canary="2"), return_state=True
    )
    assert state.is_failed() and "never ready" in (state.message or "")
    assert sorted(creates(sim)) == ["app-001", "db-001"]


async def test_a_budget_spent_in_wave_two_stops_wave_three(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Past the failure budget nothing more is sent; what was on its way is settled."""
    rows = [("a", 8, GOOD), ("b", 4, REFUSED), ("c", 8, GOOD)]
    path = inventory(tmp_path / "b.csv", rows)
    state = await provision_fleet(
        inventories=[path],
        options=options(sim, tmp_path, waves="30%,60%,100%", max_failures="1"),
        return_state=True,
    )
    assert state.is_failed() and "failure budget (1) is spent" in (state.message or "")
    sent = creates(sim)
    assert not [n for n in sent if n.startswith("c-")]  # wave 3 never started
    assert 2 <= len([n for n in sent if n.startswith("b-")]) <= 4
    summary = await state.aresult(raise_on_failure=False)
    assert isinstance(summary, RolloutSummary)
    assert [w.name for w in summary.waves] == ["wave-01", "wave-02"]


async def test_rollback_leaves_no_server_of_the_rollout(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A stopped rollout with on_failure rollback tears down what it made, through teardown."""
    path = inventory(tmp_path / "r.csv", [("app", 6, GOOD), ("bad", 2, REFUSED)])
    state = await provision_fleet(
        inventories=[path],
        options=options(sim, tmp_path, canary="3", on_failure="rollback"),
        return_state=True,
    )
    assert state.is_failed()
    summary = await state.aresult(raise_on_failure=False)
    assert isinstance(summary, RolloutSummary)
    # The canary's two servers were made, then taken back: terminated, none running.
    c = summary.counts
    assert summary.rolled_back and (c.made, c.terminated, c.running) == (2, 2, 0)
    assert sorted(summary.taken_back) == ["app-001", "app-002"]
    assert sim.state()["servers"] == []


async def test_rollback_after_an_extension_takes_only_what_this_run_made(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Extended with an adopted server, new rows and a refused one: rollback takes the new only."""
    first = inventory(tmp_path / "ext.csv", [("app", 4, GOOD)])
    done = await provision_fleet(inventories=[first], options=options(sim, tmp_path))
    assert isinstance(done, RolloutSummary) and done.counts.made == 4
    (keep,) = specs(1, "keep")  # a server fleet never made, then adopted into the rollout
    async with client_for(sim.url) as client:
        await client.create_server(keep.params)
    extended = inventory(
        tmp_path / "ext.csv",
        [("app", 4, GOOD), ("keep", 1, GOOD), ("new", 3, GOOD), ("bad", 2, REFUSED)],
    )
    staged = options(
        sim, tmp_path, canary="2", waves="100%", on_failure="rollback", adopt_existing=True
    )
    state = await provision_fleet(inventories=[extended], options=staged, return_state=True)
    assert state.is_failed()
    summary = await state.aresult(raise_on_failure=False)
    assert isinstance(summary, RolloutSummary) and summary.rolled_back
    left = servers_by_name(sim.state())
    # The earlier run's four and the adopted one stay; the canary's new server is gone.
    assert sorted(left) == ["app-001", "app-002", "app-003", "app-004", "keep-001"]


async def answer_when_paused(rollout: str, approve: bool, next_wave: str | None) -> list[str]:
    """Wait until a run of the rollout pauses, then answer it as `fleet approve` would."""
    for _ in range(300):
        answered = await approval.resume(rollout, approve, next_wave)
        if answered:
            return answered
        await asyncio.sleep(0.2)
    raise AssertionError(f"no run of {rollout} paused")


async def test_approval_resumes_with_the_next_waves_size(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Paused after the canary, approved with another next wave: the run goes on and completes."""
    path = inventory(tmp_path / "ok.csv", [("ok", 10, GOOD)])
    run = provision_fleet(
        inventories=[path],
        rollout="okay",
        options=options(sim, tmp_path, canary="2", waves="30%", approve="canary"),
        return_state=True,
    )
    state, answered = await asyncio.gather(run, answer_when_paused("okay", True, "50%"))
    assert answered and state.is_completed(), state.message
    summary = await state.aresult()
    assert [(w.name, w.servers) for w in summary.waves] == [
        ("canary", 2),
        ("wave-01", 5),  # named as asked: the first of --waves, resized at the approval
        ("wave-02", 3),
    ]
    assert len(servers_by_name(sim.state())) == 10
    async with get_client() as client:
        (flow_run,) = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["okay"]))
        )
        tasks = {t.name.rsplit("-", 1)[0] for t in await client.read_task_runs()}
    assert flow_run.name.startswith("okay-") and "okay" in flow_run.tags
    assert {"canary", "wave-01", "wave-02"} <= tasks
    async with get_client() as client:  # by its key: the session's server holds many others
        (stages,) = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["okay-waves"])), limit=1
        )
    rows: Any = json.loads(stages.data) if isinstance(stages.data, str) else stages.data
    assert [row["stage"] for row in rows] == ["canary", "wave-01", "wave-02"]


async def test_abort_at_approval_sends_nothing_more(sim: RunningSimulator, tmp_path: Path) -> None:
    """Aborted at the approval after the canary: only the canary exists; the run is Failed."""
    path = inventory(tmp_path / "ab.csv", [("ab", 10, GOOD)])
    run = provision_fleet(
        inventories=[path],
        rollout="abort-me",
        options=options(sim, tmp_path, canary="2", approve="canary"),
        return_state=True,
    )
    state, _ = await asyncio.gather(run, answer_when_paused("abort-me", False, None))
    assert state.is_failed() and "aborted at the approval after canary" in (state.message or "")
    assert sorted(creates(sim)) == ["ab-001", "ab-002"]


async def test_an_approval_never_given_aborts_when_patience_runs_out(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Nobody answers within --approve-patience: the rollout aborts, as if told to; no crash."""
    path = inventory(tmp_path / "wait.csv", [("wait", 6, GOOD)])
    state = await provision_fleet(
        inventories=[path],
        rollout="nobody-home",
        options=options(
            sim, tmp_path, canary="2", approve="canary", approve_patience=2, on_failure="rollback"
        ),
        return_state=True,
    )
    assert state.is_failed() and "aborted at the approval after canary" in (state.message or "")
    assert sorted(creates(sim)) == ["wait-001", "wait-002"]
    assert servers_by_name(sim.state()) == {}  # rolled back, as an abort is


async def test_the_rollout_tells_its_story_in_events(sim: RunningSimulator, tmp_path: Path) -> None:
    """Started, a wave completed, paused, servers failed, finished: with the rollout as resource."""
    sim.faults({"action": "createServerInstances", "fault": "never_ready", "serverName": "ev-005"})
    path = inventory(tmp_path / "ev.csv", [("ev", 6, GOOD)])
    run = provision_fleet(
        inventories=[path],
        rollout="told",
        options=options(sim, tmp_path, canary="1", approve="canary", max_failures="1"),
        return_state=True,
    )
    await asyncio.gather(run, answer_when_paused("told", True, None))
    wanted = {
        "fleet.rollout.started",
        "fleet.wave.completed",
        "fleet.rollout.paused",
        "fleet.server.failed",
        "fleet.rollout.finished",
    }
    seen: dict[str, dict[str, Any]] = {}
    async with get_client() as client:
        for _ in range(50):  # events reach the server a moment after they are emitted
            found = await client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(prefix=["fleet."]),
                    resource=EventResourceFilter(id=["fleet.rollout.told"]),
                ),
                limit=50,  # the server's own maximum (the client's default asks for more)
            )
            seen = {e.event: e.payload for e in found.events}
            if wanted <= set(seen):
                break
            await asyncio.sleep(0.2)
    assert wanted <= set(seen), sorted(seen)
    assert seen["fleet.rollout.finished"]["created"] == 6
    assert seen["fleet.rollout.finished"]["running"] == 5
    assert [s["name"] for s in seen["fleet.server.failed"]["servers"]] == ["ev-005"]


@pytest.mark.parametrize(
    "approve",
    [["--approve", "canary"], ["--approve=canary"], ["--approve"]],
    ids=["value as its own word", "value after =", "alone"],
)
def test_approve_takes_its_value_either_way(
    sim: RunningSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    approve: list[str],
) -> None:
    """`--approve canary` pauses after the canary as `--approve=canary` and `--approve` do."""
    from flows.cli import app as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_prefect_api_url", lambda: None)  # the terminal decides
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    path = inventory(tmp_path / "t.csv", [("word", 6, GOOD)])
    # The flag right before the inventory: a value taken for a file would be "no such file".
    args = ["provision", *approve, path, "--endpoint", sim.url, "--canary", "2"]
    # Through `fleet`'s own entry point, as typed: the command line, then the answer "no".
    monkeypatch.setattr(sys, "argv", ["fleet", *args, "--poll-interval", "0.2"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("no\n"))
    with pytest.raises(SystemExit) as ended:
        cli.main()
    output = capsys.readouterr().out
    assert ended.value.code == 1 and "approve the next wave" in output, output
    assert sorted(creates(sim)) == ["word-001", "word-002"]


def test_the_terminal_asks_when_no_prefect_server_shows_a_form(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the temporary server, --approve asks on the terminal; with no terminal, it refuses."""
    from flows.cli import app as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_prefect_api_url", lambda: None)  # as with no PREFECT_API_URL
    path = inventory(tmp_path / "t.csv", [("term", 6, GOOD)])
    args = [
        "provision",
        path,
        "--endpoint",
        sim.url,
        "--canary",
        "2",
        "--approve=canary",
        "--poll-interval",
        "0.2",
        "--settle",
        "0.5",
    ]
    runner = CliRunner()
    refused = runner.invoke(cli.app, args)
    assert refused.exit_code == 2 and "needs a terminal" in refused.output
    assert creates(sim) == []
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    asked = runner.invoke(cli.app, args, input="no\n")
    assert asked.exit_code == 1 and "approve the next wave" in asked.output
    assert sorted(creates(sim)) == ["term-001", "term-002"]
    approved = runner.invoke(cli.app, [*args, "--yes", "--waves", "10%,100%"])
    assert approved.exit_code == 0, approved.output
    assert len(servers_by_name(sim.state())) == 6
    lines = approved.stdout.splitlines()

    def at(start: str) -> int:
        return next(i for i, line in enumerate(lines) if line.lstrip().startswith(start))

    # Each stage's line as the stage ends: the canary's before the approval that follows it,
    # the last wave's before the run's summary; the 10% wave the canary holds is named.
    assert at("canary: 2 sent") < at("t: approved with --yes") < at("wave-02: 2 sent")
    assert at("wave-02: 2 sent") < at("creating took")
    assert "wave-01 (10%): nothing left to send in it, the canary already holds" in approved.stdout


async def test_a_staged_replace_rolls_back_to_the_old_servers(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A replace wave refused past the budget: the new servers go, the old ones are theirs again."""
    first = inventory(tmp_path / "swap.csv", [("swap", 3, GOOD)])
    done = await provision_fleet(inventories=[first], options=options(sim, tmp_path))
    assert isinstance(done, RolloutSummary) and done.counts.made == 3
    before = servers_by_name(sim.state())
    sim.configure(max_servers=5)  # room for two new servers beside the three old ones
    edited = inventory(tmp_path / "swap.csv", [("swap", 3, OTHER)])
    staged = options(
        sim,
        tmp_path,
        canary="1",
        waves="100%",
        max_failures="0",
        on_failure="rollback",
        replace=True,
    )
    state = await provision_fleet(inventories=[edited], options=staged, return_state=True)
    assert state.is_failed()
    summary = await state.aresult(raise_on_failure=False)
    assert isinstance(summary, RolloutSummary) and summary.rolled_back, summary
    assert [(w.name, w.created, w.failed) for w in summary.waves] == [
        ("canary", 1, 0),
        ("wave-01", 1, 1),
    ]
    assert servers_by_name(sim.state()) == before  # both new servers went; the old ones stay
    with Ledger(tmp_path / "l.db") as book:
        rows = {r.name: [str(r.instance_no)] for r in book.records(summary.rollout)}
    assert rows == before


async def test_a_staged_replace_goes_wave_by_wave_new_before_old(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Replaced in a canary and a wave: each old server goes only after its stage passed."""
    first = inventory(tmp_path / "roll.csv", [("roll", 3, GOOD)])
    await provision_fleet(inventories=[first], options=options(sim, tmp_path))
    before = servers_by_name(sim.state())
    edited = inventory(tmp_path / "roll.csv", [("roll", 3, OTHER)])
    staged = options(sim, tmp_path, canary="1", waves="100%", replace=True)
    summary = await provision_fleet(inventories=[edited], options=staged)
    assert isinstance(summary, RolloutSummary), summary
    assert [(w.name, w.servers, w.ready) for w in summary.waves] == [
        ("canary", 1, 1),
        ("wave-01", 2, 2),
    ]
    after = servers_by_name(sim.state())
    assert sorted(after) == sorted(before)
    assert all(len(after[n]) == 1 and after[n] != before[n] for n in after)
