"""The fleet command line, as a user runs it: exit codes, messages, and what it leaves behind."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.simulator import RunningSimulator
from flows.cli.app import app
from tests.support.prefect_harness import keyed_simulator
from tests.support.simulator import servers_by_name

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningSimulator]:
    """A simulator with its keys in the environment; the command runs in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    with keyed_simulator(monkeypatch) as running:
        yield running


def write(path: Path, rows: list[str]) -> str:
    header = "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo"
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def made_elsewhere(sim: RunningSimulator, prefix: str, count: int) -> None:
    """Create servers as someone else would, outside fleet: no create marker in them."""
    import asyncio

    from tests.support.engine import client_for, specs

    async def create() -> None:
        async with client_for(sim.url) as client:
            for spec in specs(count, prefix):
                await client.create_server(spec.params)

    asyncio.run(create())


def test_validate_lists_every_problem_with_file_line_and_column() -> None:
    """A broken inventory exits 2 with one line per problem, each FILE:LINE: COLUMN: ..."""
    result = runner.invoke(app, ["validate", str(ROOT / "inventories" / "broken.csv")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if "broken.csv:" in ln]
    assert len(lines) >= 10
    assert any(
        ":3: loginKeyNmae: unknown column (did you mean 'loginKeyName'?)" in ln for ln in lines
    )
    assert "nothing was sent" in result.output


def test_validate_accepts_the_examples() -> None:
    """The example inventories are valid and say how many servers they make."""
    paths = [str(ROOT / "inventories" / n) for n in ("demo.csv", "full.csv")]
    result = runner.invoke(app, ["validate", *paths])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_bad_inventory_sends_nothing(sim: RunningSimulator, tmp_path: Path) -> None:
    """Provision on an invalid inventory exits 2 before any call reaches NCP."""
    path = write(tmp_path / "bad.csv", ["web,2,25495367,s2-g3,75001,"])
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url])
    assert result.exit_code == 2
    assert "bad.csv:2: subnetNo: required" in result.output
    assert sim.state()["counters"]["requests"] == 0


@pytest.mark.parametrize("rate", ["fast", "0", "-3"])
def test_a_rate_neither_auto_nor_a_number_is_refused(
    sim: RunningSimulator, tmp_path: Path, rate: str
) -> None:
    """--rate takes 'auto' or a positive number: anything else exits 2 and sends nothing."""
    path = write(tmp_path / "r.csv", ["r,1,25495367,s2-g3,75001,75101"])
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url, "--rate", rate])
    assert result.exit_code == 2
    assert "--rate" in result.output and "'auto' or a positive number" in result.output
    assert sim.state()["counters"]["requests"] == 0


def test_missing_credentials_is_a_configuration_error(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no keys anywhere, provision exits 2 naming the variables to set."""
    monkeypatch.delenv("NCLOUD_SECRET_KEY")
    monkeypatch.delenv("NCLOUD_ACCESS_KEY")
    monkeypatch.setenv("HOME", str(tmp_path))
    result = runner.invoke(app, ["provision", write(tmp_path / "a.csv", ["web,1,1,s2,7,8"])])
    assert result.exit_code == 2
    assert "NCLOUD_ACCESS_KEY" in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_provision_status_plan_and_teardown(sim: RunningSimulator, tmp_path: Path) -> None:
    """A user's round trip: provision (exit 0), status, plan (all done), teardown --yes."""
    path = write(tmp_path / "shop.csv", ["shop-web,3,25495367,s2-g3,75001,75101"])
    result = runner.invoke(
        app, ["provision", path, "--endpoint", sim.url, "--wait", "--poll-interval", "0.2"]
    )
    assert result.exit_code == 0, result.output
    assert "shop: 3 running, 0 failed" in result.output
    assert "call rate auto: " in result.output
    with open(tmp_path / ".fleet" / "results" / "shop.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["serverInstanceStatus"] for r in rows] == ["RUN"] * 3

    status = runner.invoke(app, ["status", "--rollout", "shop"])
    assert status.exit_code == 0
    assert "shop-web-003" in status.output

    plan = runner.invoke(app, ["plan", path, "--endpoint", sim.url])
    assert plan.exit_code == 0
    assert re.search(r"up to date \(created by an earlier run\)\s*│\s*3\s*│", plan.output)

    refused = runner.invoke(app, ["teardown", "--rollout", "shop", "--endpoint", sim.url])
    assert refused.exit_code == 2  # no terminal to confirm on, and no --yes
    assert len(sim.state()["servers"]) == 3

    gone = runner.invoke(
        app,
        ["teardown", "--rollout", "shop", "--endpoint", sim.url, "--yes", "--poll-interval", "0.2"],
    )
    assert gone.exit_code == 0, gone.output
    assert sim.state()["servers"] == []


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_exit_1_when_some_servers_fail(sim: RunningSimulator, tmp_path: Path) -> None:
    """When NCP refuses some servers, provision exits 1 and shows NCP's code and message."""
    sim.configure(max_servers=2)
    path = write(tmp_path / "quota.csv", ["q,4,25495367,s2-g3,75001,75101"])
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url])
    assert result.exit_code == 1, result.output
    assert "quota: 0 running, 2 failed, 0 unknown (in flight), 2 made" in result.output
    assert "1015009" in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_someone_elses_server_stops_the_rollout_with_exit_2(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A planned name that already exists and is not ours exits 2 and creates nothing."""
    path = write(tmp_path / "taken.csv", ["taken,2,25495367,s2-g3,75001,75101"])
    made_elsewhere(sim, "taken", 2)  # by hand, in the console: no create marker
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url, "--rollout", "theirs"])
    assert result.exit_code == 2, result.output
    assert "--adopt-existing" in result.output
    assert all(len(v) == 1 for v in servers_by_name(sim.state()).values())


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_names_another_rollout_of_the_ledger_holds_stop_the_rollout_with_exit_2(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A second rollout of one ledger planning the first's names exits 2, naming it."""
    path = write(tmp_path / "taken.csv", ["taken,2,25495367,s2-g3,75001,75101"])
    first = runner.invoke(app, ["provision", path, "--endpoint", sim.url, "--rollout", "mine"])
    assert first.exit_code == 0, first.output
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url, "--rollout", "theirs"])
    assert result.exit_code == 2, result.output
    assert "claimed by rollout 'mine'" in result.output and "Nothing was sent" in result.output
    assert all(len(v) == 1 for v in servers_by_name(sim.state()).values())


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_plan_with_adopt_existing_plans_to_adopt_the_existing_servers(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """`fleet plan --adopt-existing` plans as the run would: existing names adopted, not refused."""
    import asyncio

    from fleet.inventory import load_inventories
    from fleet.options import ProvisionOptions
    from flows.cli.commands import survey_only

    path = write(tmp_path / "taken.csv", ["taken,2,25495367,s2-g3,75001,75101"])
    made_elsewhere(sim, "taken", 2)  # by hand, in the console: no create marker
    args = ["plan", path, "--endpoint", sim.url, "--rollout", "theirs"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 0, refused.output
    assert re.search(r"exist, not this rollout's\s*│\s*2\s*│", refused.output), refused.output
    assert "Existing names stop a rollout unless --adopt-existing is given." in refused.output

    adopting = runner.invoke(app, [*args, "--adopt-existing"])
    assert adopting.exit_code == 0, adopting.output
    assert "exist, not this rollout's" not in adopting.output
    assert "--adopt-existing is given" not in adopting.output
    assert re.search(r"to create\s*│\s*0\s*│", adopting.output), adopting.output
    options = ProvisionOptions(endpoint=sim.url, adopt_existing=True)
    found = asyncio.run(survey_only("theirs", load_inventories([path]), options)).found
    assert found.adopted == ("taken-001", "taken-002") and not found.conflicts
    assert all(len(v) == 1 for v in servers_by_name(sim.state()).values())


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_rollout_name_that_is_a_path_is_refused(sim: RunningSimulator, tmp_path: Path) -> None:
    """A rollout name becomes a file name: '../x' is a configuration error, exit 2."""
    path = write(tmp_path / "n.csv", ["n,1,1,s2,75001,75101"])
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url, "--rollout", "../x"])
    assert result.exit_code == 2, result.output
    assert "rollout name" in result.output
    assert sim.state()["counters"]["requests"] == 0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_wrong_keys_exit_2_with_ncps_answer(
    sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys NCP refuses stop the run before any create, with the gateway's 401 shown."""
    monkeypatch.setenv("NCLOUD_SECRET_KEY", "not-the-secret")
    path = write(tmp_path / "k.csv", ["k,2,1,s2,75001,75101"])
    result = runner.invoke(app, ["provision", path, "--endpoint", sim.url])
    assert result.exit_code == 2, result.output
    assert "Authentication Failed" in result.output
    assert "not-the-secret" not in result.output
    assert sim.state()["counters"]["by_action"].get("createServerInstances", 0) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_refused_servers_are_listed_and_sent_again_only_when_asked(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A refusal for the account's limit clears by itself; a row's own waits for --retry-failed."""
    sim.configure(max_servers=2)
    rows = ["q,4,25495367,s2-g3,75001,75101", "bad,1,25495367,s2-g2-s50,75001,75101"]
    path = write(tmp_path / "quota.csv", rows)
    args = ["--endpoint", sim.url, "--no-preflight"]
    first = runner.invoke(app, ["provision", path, *args])
    assert first.exit_code == 1, first.output
    # Sent at once, the creates reach NCP in any order: two of the four are made, two refused.
    refused = sorted({"q-001", "q-002", "q-003", "q-004"} - set(servers_by_name(sim.state())))
    assert len(refused) == 2
    sim.configure(max_servers=None)  # the account's limit was raised meanwhile
    plan = runner.invoke(app, ["plan", path, *args])
    assert plan.exit_code == 3, plan.output
    assert re.search(r"failed permanently before \(--retry-failed\)\s*│\s*1\s*│", plan.output)
    assert re.search(rf"to create\s*│\s*2\s*│ {', '.join(refused)}", plan.output)
    again = runner.invoke(app, ["provision", path, *args])
    assert again.exit_code == 1  # bad-001 stays refused
    assert sorted(servers_by_name(sim.state())) == ["q-001", "q-002", "q-003", "q-004"]
    retried = runner.invoke(app, ["provision", path, *args, "--retry-failed"])
    assert "bad-001" in retried.output  # sent again, and refused again by NCP
    assert (
        sum(c["params"]["serverName"] == "bad-001" for c in sim.calls("createServerInstances")) == 2
    )


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_rollout_torn_down_is_created_anew_only_when_revived(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Provision, teardown: retired (exit 2, nothing sent); --revive: again, with new numbers."""
    path = write(tmp_path / "again.csv", ["again,2,25495367,s2-g3,75001,75101"])
    args = ["--endpoint", sim.url, "--poll-interval", "0.2"]
    assert runner.invoke(app, ["provision", path, "--wait", *args]).exit_code == 0
    first = servers_by_name(sim.state())
    down = runner.invoke(app, ["teardown", "--rollout", "again", "--yes", *args])
    assert down.exit_code == 0, down.output
    assert sim.state()["servers"] == []
    retired = runner.invoke(app, ["provision", path, *args])
    assert retired.exit_code == 2 and "retired" in retired.output, retired.output
    assert sim.state()["servers"] == []
    anew = runner.invoke(app, ["provision", path, "--revive", *args])
    assert anew.exit_code == 0, anew.output
    second = servers_by_name(sim.state())
    assert sorted(second) == sorted(first) and second != first


def test_ncps_text_is_shown_as_written_never_as_markup(tmp_path: Path) -> None:
    """Brackets in NCP's messages are printed, not read as Rich markup (nor swallowed)."""
    from fleet.errors import PermanentError
    from fleet.ledger import Ledger
    from fleet.planned import PlannedServer

    message = "[bold]잘못된 요청[/] [red]x[/red] [link=http://a]b[/link]"
    spec = PlannedServer("m-001", "m.csv", 2, (("vpcNo", "1"), ("serverName", "m-001")))
    with Ledger(tmp_path / "l.db") as book:
        book.acquire("m", "o", "t", ttl=60)
        book.plan("m", [spec], owner="o")
        book.claim("m", spec, "o")
        book.record_failed("m", "m-001", PermanentError(message, status=400, code="1"))
    result = runner.invoke(app, ["status", "--rollout", "m", "--ledger", str(tmp_path / "l.db")])
    assert result.exit_code == 0, result.output
    assert message in result.output
