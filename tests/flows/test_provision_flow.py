"""The provision-fleet flow end to end: simulator over HTTP, a Prefect API, artifacts, states."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from fleet.ledger import Ledger
from fleet.options import ProvisionOptions
from fleet.report.summary import RolloutSummary
from fleet.simulator import RunningSimulator
from flows.provision import chunks, provision_fleet
from flows.runtime import fingerprint
from tests.support.engine import specs
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.prefect_harness import keyed_simulator
from tests.support.simulator import servers_by_name

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "inventories" / "demo.csv")


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A simulator whose keys are in the environment, as a worker's would be."""
    with keyed_simulator(monkeypatch, latency=0.01) as running:
        yield running


def inventory(path: Path, rows: list[tuple[str, int]]) -> str:
    """Write a small inventory of (group name, count) rows."""
    lines = ["serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo"]
    lines += [f"{name},{count},25495367,s2-g3,75001,75101" for name, count in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


async def _artifact(key: str) -> object:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, f"no artifact {key}"
    return found[0]


async def test_demo_rollout_completes_with_results_and_artifacts(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """The demo inventory rolls out: Completed, every server once, results file and artifacts."""
    ledger = tmp_path / "ledger.db"
    options = ProvisionOptions(
        endpoint=sim.url, ledger=str(ledger), rate=200, wait=True, poll_interval=0.2
    )
    state = await provision_fleet(
        inventories=[DEMO], rollout="flow-demo", options=options, return_state=True
    )
    assert state.is_completed(), state.message
    summary = await state.aresult()
    assert isinstance(summary, RolloutSummary)
    c = summary.counts
    assert c.made == c.total == c.running == 16
    on_ncp = servers_by_name(sim.state())
    assert len(on_ncp) == 16
    assert all(len(nos) == 1 for nos in on_ncp.values())
    with open(summary.results, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16
    assert {r["serverName"]: [r["serverInstanceNo"]] for r in rows} == on_ncp
    assert {r["serverInstanceStatus"] for r in rows} == {"RUN"}
    table = await _artifact("flow-demo-results")
    assert summary.results in str(table.data)  # type: ignore[attr-defined]
    markdown = str((await _artifact("flow-demo-summary")).data)  # type: ignore[attr-defined]
    assert "| API calls |" in markdown and "| call rate asked (calls/s) | 200.0 |" in markdown
    assert "| throttled responses |" not in markdown  # none: a row of zero is left out
    progress = await _artifact("flow-demo-progress")
    assert progress.data == 100.0  # type: ignore[attr-defined]


async def test_flow_ends_failed_with_counts_when_servers_fail(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Past the account's server limit, the refused servers are recorded and the run is Failed."""
    sim.configure(max_servers=5)
    path = inventory(tmp_path / "big.csv", [("app", 8)])
    options = ProvisionOptions(endpoint=sim.url, ledger=str(tmp_path / "ledger.db"))
    state = await provision_fleet(inventories=[path], options=options, return_state=True)
    assert state.is_failed()
    assert "3 of 8 servers not done" in (state.message or "")
    assert "3 failed" in (state.message or "") and "5 made, not running yet" in (
        state.message or ""
    )
    with open(tmp_path / "results" / "big.csv", newline="", encoding="utf-8") as fh:
        failed = [r for r in csv.DictReader(fh) if r["state"] == "failed"]
    assert len(failed) == 3
    assert {r["errorCode"] for r in failed} == {"1015009"}
    assert all("server limit" in r["errorMessage"] for r in failed)


@pytest.mark.serial  # a rate measured in real time: run alone, after the rest
async def test_auto_rate_finds_the_gateways_limit_and_remembers_it(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """By default the flow finds the rate the gateway allows, shows it, and keeps it for later."""
    sim.configure(rate=40, burst=10)
    ledger = tmp_path / "ledger.db"
    state = await provision_fleet(
        # About 7 s at 40/s: slow start's throttles come too soon after the start to measure
        # from, so the rate is measured between the cuts that follow, a second or two apart.
        inventories=[inventory(tmp_path / "auto.csv", [("auto", 300)])],
        options=ProvisionOptions(endpoint=sim.url, ledger=str(ledger)),
        return_state=True,
    )
    assert state.is_completed(), state.message
    summary = await state.aresult()
    assert isinstance(summary, RolloutSummary)
    assert summary.rate_asked is None
    assert summary.rate_found == pytest.approx(40, rel=0.25)
    assert "the gateway allowed about" in summary.rate_line
    with Ledger(ledger) as book:
        assert book.known_rate(sim.url, fingerprint(SIM_ACCESS)) == summary.rate_found
    markdown = await _artifact("auto-summary")
    assert "call rate the gateway allowed" in str(markdown.data)  # type: ignore[attr-defined]


async def test_secret_key_appears_nowhere(sim: RunningSimulator, tmp_path: Path) -> None:
    """The secret is in no flow parameter, artifact, ledger, results file or log record."""
    ledger = tmp_path / "ledger.db"
    state = await provision_fleet(
        inventories=[inventory(tmp_path / "s.csv", [("sec", 3)])],
        rollout="secrets",
        options=ProvisionOptions(endpoint=sim.url, ledger=str(ledger)),
        return_state=True,
    )
    assert state.is_completed()
    await APILogHandler.aflush()  # the log records still on their way to the API
    async with get_client() as client:
        assert state.state_details.flow_run_id is not None
        run_id = state.state_details.flow_run_id
        run = await client.read_flow_run(run_id)
        # This run's own, every one: the session's server holds more than a page of others.
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    assert len(logs) < 200 and len(artifacts) >= 1 and logs
    texts = [str(run.parameters), *(log.message for log in logs), *(str(a.data) for a in artifacts)]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert os.environ["NCLOUD_SECRET_KEY"] == SIM_SECRET
    assert not [t for t in texts if SIM_SECRET in t]


async def test_credentials_from_a_prefect_secret_block(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no keys in the environment, a named Secret block supplies them."""
    from prefect.blocks.system import Secret

    await Secret(value={"access_key": SIM_ACCESS, "secret_key": SIM_SECRET}).save(
        "ncp-test-keys", overwrite=True
    )
    monkeypatch.delenv("NCLOUD_ACCESS_KEY")
    monkeypatch.delenv("NCLOUD_SECRET_KEY")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ncloud/configure either
    options = ProvisionOptions(
        endpoint=sim.url, ledger=str(tmp_path / "ledger.db"), credentials_block="ncp-test-keys"
    )
    state = await provision_fleet(
        inventories=[inventory(tmp_path / "b.csv", [("blk", 2)])],
        options=options,
        return_state=True,
    )
    assert state.is_completed(), state.message


def test_chunks_are_tens_not_one_per_server() -> None:
    """10,000 servers make 20 chunk tasks; a small rollout makes one."""
    assert len(chunks(specs(10))) == 1
    many = chunks(specs(999, prefix="a") * 11)
    assert len(many) == 20
    assert sum(len(c) for c in many) == 10989


async def test_the_summary_counts_ambiguous_answers_of_every_kind(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Dropped connections count as ambiguous beside 504s and 500s: as many as the ledger has."""
    path = inventory(tmp_path / "amb.csv", [("amb", 6)])
    sim.faults(
        *(
            {"action": "createServerInstances", "fault": fault, "serverName": f"amb-00{i}"}
            for i, fault in ((1, "drop_after"), (2, "drop_after"), (3, "fail_after"))
        )
    )
    ledger = tmp_path / "ledger.db"
    options = ProvisionOptions(
        endpoint=sim.url, ledger=str(ledger), rate=200, settle=0.5, settle_poll=0.1
    )
    state = await provision_fleet(inventories=[path], options=options, return_state=True)
    assert state.is_completed(), state.message
    summary = await state.aresult()
    assert isinstance(summary, RolloutSummary)
    with Ledger(ledger) as book:
        in_ledger = sum(r.ambiguous_sends for r in book.records(summary.rollout))
    assert summary.ambiguous == in_ledger == 3
    assert all(len(nos) == 1 for nos in servers_by_name(sim.state()).values())
