"""A nightly rollout that keeps the fleet at its inventory, as an operator runs it.

plan -> apply -> drift -> plan, through the command line and the provision-fleet flow on the
simulator: out-of-band terminate and stop, a lowered count, an image change; `fleet plan --json`
and its exit codes (0 nothing to change, 3 changes pending).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.ledger import Ledger
from fleet.simulator import RunningSimulator
from flows.cli.app import app
from tests.support.engine import client_for, stop_out_of_band, terminate_out_of_band
from tests.support.prefect_harness import keyed_simulator
from tests.support.schemas import conforms
from tests.support.simulator import servers_by_name

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

runner = CliRunner()
GOOD, OTHER_IMAGE = "25495367", "23214590"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningSimulator]:
    """A simulator whose servers boot and stop in a moment; keys in the environment."""
    monkeypatch.chdir(tmp_path)
    with keyed_simulator(monkeypatch, create_seconds=0.1, setup_seconds=0.1) as running:
        yield running


def write(path: Path, rows: list[tuple[str, int, str]]) -> str:
    lines = ["serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo"]
    lines += [f"{name},{count},{image},s2-g3,75001,75101" for name, count, image in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def fleet(sim: RunningSimulator, *args: str) -> Any:
    common = ["--endpoint", sim.url, "--ledger", "l.db", "--rollout", "night"]
    return runner.invoke(app, [*args, *common])


def plan(sim: RunningSimulator, path: str, *flags: str) -> tuple[int, dict[str, Any]]:
    """`fleet plan --json` with these flags: its exit code and document (held to the schema)."""
    result = fleet(sim, "plan", path, "--json", "--no-preflight", *flags)
    return result.exit_code, conforms("plan", result.stdout)


def actions(doc: dict[str, Any], key: str = "changes") -> list[tuple[str, str]]:
    return [(c["name"], c["action"]) for c in doc[key]]


def apply(sim: RunningSimulator, path: str, *flags: str) -> None:
    result = fleet(sim, "provision", path, "--wait", "--poll-interval", "0.2", *flags)
    assert result.exit_code == 0, result.output


def test_a_nightly_rollout_plans_applies_and_converges(sim: RunningSimulator) -> None:
    """Drift and edits show in plan --json (exit 3); applied, a second plan says none (exit 0)."""
    path = write(Path("inv.csv"), [("web", 4, GOOD)])
    code, doc = plan(sim, path)
    assert (code, actions(doc)) == (3, [(f"web-00{i}", "create") for i in range(1, 5)])
    assert {c["region"] for c in doc["changes"]} == {"KR"}  # the default region, by its code
    assert doc["counts"] == {
        "settle": 0, "create": 4, "recreate": 0, "start": 0, "resize": 0, "replace": 0,
        "destroy": 0, "retire": 0, "terminate": 0,
    }  # fmt: skip
    apply(sim, path)
    assert plan(sim, path) == (0, plan(sim, path)[1]) and plan(sim, path)[1]["changes"] == []

    with Ledger("l.db") as book:
        numbers = {r.name: str(r.instance_no) for r in book.records("night")}

    async def drift() -> None:
        async with client_for(sim.url) as client:
            await terminate_out_of_band(client, numbers["web-002"])
            await stop_out_of_band(client, numbers["web-003"])

    asyncio.run(drift())
    code, doc = plan(sim, path)
    assert (code, actions(doc)) == (3, [("web-002", "recreate"), ("web-003", "start")])
    text = fleet(sim, "plan", path, "--no-preflight").stdout  # one summary: each server once
    assert re.search(r"to start \(stopped out of band\)\s*│\s*1\s*│ web-003", text), text
    assert re.search(r"up to date \(created by an earlier run\)\s*│\s*2\s*│ web-001, web-004", text)
    assert "plan:" not in text
    apply(sim, path)
    assert plan(sim, path)[0] == 0

    lowered = write(Path("inv.csv"), [("web", 3, GOOD), ("db", 1, OTHER_IMAGE)])
    code, doc = plan(sim, lowered)  # as provision without --prune would: web-004 left for it
    assert (code, actions(doc), actions(doc, "pending")) == (
        3, [("db-001", "create")], [("web-004", "destroy")]
    )  # fmt: skip
    assert doc["pending"][0]["flag"] == "--prune" and doc["pending"][0]["instance_no"]
    code, doc = plan(sim, lowered, "--prune")  # as provision --prune would
    assert actions(doc) == [("db-001", "create"), ("web-004", "destroy")] and not doc["pending"]
    apply(sim, lowered)  # without --prune: web-004 stays, and the plan still says so
    assert actions(plan(sim, lowered)[1], "pending") == [("web-004", "destroy")]
    apply(sim, lowered, "--prune")
    assert plan(sim, lowered)[0] == 0

    edited = write(Path("inv.csv"), [("web", 3, GOOD), ("db", 1, GOOD)])
    code, doc = plan(sim, edited, "--replace")
    (change,) = doc["changes"]
    assert (code, change["action"], doc["counts"]["replace"]) == (3, "replace", 1)
    assert change["fields"] == [{"field": "serverImageNo", "old": OTHER_IMAGE, "new": GOOD}]
    assert plan(sim, edited)[1]["pending"][0]["flag"] == "--replace"
    apply(sim, edited, "--replace")
    assert plan(sim, edited) == (0, plan(sim, edited)[1])
    on_ncp = servers_by_name(sim.state())
    assert sorted(on_ncp) == ["db-001", "web-001", "web-002", "web-003"]
    assert all(len(nos) == 1 for nos in on_ncp.values())


async def _events(resource: str) -> dict[str, Any]:
    """The fleet events the Prefect server holds for a rollout, once they arrive."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    seen: dict[str, Any] = {}
    async with get_client() as client:
        for _ in range(50):  # events reach the server a moment after they are emitted
            found = await client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(prefix=["fleet."]),
                    resource=EventResourceFilter(id=[f"fleet.rollout.{resource}"]),
                ),
                limit=50,
            )
            seen = {e.event: e for e in found.events}
            if "fleet.rollout.drifted" in seen:
                break
            await asyncio.sleep(0.2)
    return seen


@pytest.mark.anyio
async def test_the_plan_only_flow_reports_drift_and_changes_nothing(
    sim: RunningSimulator,
) -> None:
    """plan-fleet sees a server stopped out of band, says so in an event, and leaves it stopped."""
    from fleet.options import ProvisionOptions
    from flows.drift import plan_fleet
    from flows.provision import provision_fleet

    path = write(Path("d.csv"), [("hour", 2, GOOD)])
    options = ProvisionOptions(endpoint=sim.url, ledger="l.db", wait=True, poll_interval=0.2)
    await provision_fleet(inventories=[path], rollout="hourly", options=options)
    with Ledger("l.db") as book:
        number = str(book.record("hourly", "hour-001").instance_no)  # type: ignore[union-attr]
    async with client_for(sim.url) as client:
        await stop_out_of_band(client, number)
    state = await plan_fleet(
        inventories=[path], rollout="hourly", options=options, return_state=True
    )
    assert await state.aresult() == {"start": 1}
    seen = await _events("hourly")
    assert seen["fleet.rollout.drifted"].payload["stopped"] == ["hour-001"]
    assert [s["status"] for s in sim.state()["servers"]].count("NSTOP") == 1
    await _drift_shows_in_the_runs_list(state, seen["fleet.rollout.drifted"], number)
    repaired = await provision_fleet(
        inventories=[path], rollout="hourly", options=options, return_state=True
    )  # the next run starts it, and says in the runs list that it found drift
    assert (repaired.type.value, repaired.name) == ("COMPLETED", "Drifted")
    assert [s["status"] for s in sim.state()["servers"]] == ["RUN", "RUN"]


async def _drift_shows_in_the_runs_list(state: Any, event: Any, number: str) -> None:
    """The run: named and tagged after its rollout, Completed as Drifted, drift logged as WARNING.

    Its event names the server as a related resource, which the event feed links.
    """
    import logging

    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    assert (state.type.value, state.name) == ("COMPLETED", "Drifted")
    assert "1 stopped out of band (hour-001)" in (state.message or "")
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
        warned: list[str] = []
        for _ in range(50):  # logs reach the server in batches, a moment after the run
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
            )
            warned = [log.message for log in logs if log.level == logging.WARNING]
            if warned:
                break
            await asyncio.sleep(0.2)
    assert run.name.startswith("plan-hourly-") and "hourly" in run.tags
    assert run.state is not None and run.state.name == "Drifted"
    assert any(m.startswith("drift: 0 gone out of band, 1 stopped") for m in warned), warned
    # Prefect adds its own (the flow run, its tags ...): ours are the servers.
    (server,) = [r for r in event.related if r.id.startswith("fleet.server.")]
    assert (server.name, server.role, server.id) == (
        "hour-001",
        "stopped",
        "fleet.server.hourly.hour-001",
    )
    assert server["fleet.instance-no"] == number


def test_status_refresh_shows_what_ncp_holds_now(sim: RunningSimulator) -> None:
    """Status --refresh reads each recorded server: the one stopped and the one gone show so."""
    path = write(Path("live.csv"), [("live", 3, GOOD)])
    apply(sim, path)
    with Ledger("l.db") as book:
        numbers = {r.name: str(r.instance_no) for r in book.records("night")}

    async def drift() -> None:
        async with client_for(sim.url) as client:
            await terminate_out_of_band(client, numbers["live-001"])
            await stop_out_of_band(client, numbers["live-002"])

    asyncio.run(drift())
    shown = runner.invoke(app, ["status", "night", "--ledger", "l.db", "--refresh"])
    assert shown.exit_code == 0, shown.output
    assert "live (read from NCP now): 1 running, 1 stopped, 1 gone" in shown.stdout
    as_json = runner.invoke(app, ["status", "night", "--ledger", "l.db", "--refresh", "--json"])
    live = json.loads(as_json.stdout)["live"]
    assert live == {"live-001": "gone", "live-002": "stopped", "live-003": "running"}


def test_a_protected_server_is_neither_replaced_nor_destroyed(sim: RunningSimulator) -> None:
    """Termination protection on: --replace and --prune report the server and leave it be."""
    path = write(Path("p.csv"), [("keep", 1, GOOD), ("drop", 1, GOOD)])
    apply(sim, path)
    with Ledger("l.db") as book:
        numbers = {r.name: str(r.instance_no) for r in book.records("night")}

    async def protect() -> None:
        async with client_for(sim.url) as client:
            for number in numbers.values():
                await client.set_protection(number, True)

    asyncio.run(protect())
    edited = write(Path("p.csv"), [("keep", 1, OTHER_IMAGE)])  # drop-001 removed
    code, doc = plan(sim, edited, "--replace", "--prune")  # what that provision would do: nothing
    assert (code, doc["changes"], doc["flags"]) == (3, [], {"replace": True, "prune": True})
    assert [(c["name"], c["action"], c["why"]) for c in doc["withheld"]] == [
        ("keep-001", "replace", "termination protection is on: not replaced"),
        ("drop-001", "destroy", "termination protection is on: not destroyed"),
    ]
    result = fleet(sim, "provision", edited, "--replace", "--prune", "--poll-interval", "0.2")
    assert "not changed: keep-001: termination protection is on: not replaced" in result.output
    assert "not changed: drop-001: termination protection is on: not destroyed" in result.output
    assert servers_by_name(sim.state()) == {n: [no] for n, no in numbers.items()}
    pending = actions(plan(sim, edited)[1], "pending")  # without the flags: left for them
    assert pending == [("keep-001", "replace"), ("drop-001", "destroy")]
