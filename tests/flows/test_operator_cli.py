"""What an operator reads, as run in a process of its own: clean stops, honest counts, documents.

Each test runs ``fleet`` as a user does (its own process, the simulator over loopback, the
session's Prefect API) and reads what it printed and the files it wrote.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fleet.ledger import Ledger
from fleet.simulator import RunningSimulator, running_simulator
from tests.support.prefect_harness import ROOT, fleet_env, inventory, run
from tests.support.schemas import conforms
from tests.support.simulator import sim_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

BAD = str(ROOT / "inventories" / "bad-references.csv")


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A plain simulator, no faults."""
    with running_simulator(sim_config()) as running:
        yield running


def test_a_preflight_stop_prints_its_problems_and_no_traceback(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A bad reference stops provision with exit 2, its FILE:LINE problems, and no traceback."""
    done = run(["provision", BAD, "--endpoint", sim.url], tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{BAD}:8: serverImageNo: no such server image" in done.stderr
    assert "11 problem(s) found; nothing was sent." in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "Finished in state Failed(" in done.stderr  # the flow run ends Failed, with the reason


def test_a_held_lease_stops_with_the_holder_and_no_traceback(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Another run's lease stops provision with exit 2 naming the holder, and no traceback."""
    path = inventory(tmp_path / "held.csv", "held", 2)
    with Ledger(str(tmp_path / "ledger.db")) as book:
        book.acquire("held", "someone", "cron on ops-1", 600)
    done = run(["provision", path, "--endpoint", sim.url, "--ledger", "ledger.db"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cron on ops-1" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_rerun_counts_its_own_work_then_the_rollouts(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A rerun's last lines say what it did, then the rollout; its bar counts its own servers."""
    common = ["--endpoint", sim.url, "--ledger", "ledger.db"]
    first = run(["provision", inventory(tmp_path / "grow.csv", "grow", 3), *common], tmp_path)
    assert first.returncode == 0, first.stderr
    grown = run(["provision", inventory(tmp_path / "grow.csv", "grow", 5), *common], tmp_path)
    assert grown.returncode == 0, grown.stderr
    last = grown.stdout.strip().splitlines()[-2:]
    assert last[0].startswith("this run: 2 created, 0 settled, 0 failed, 0 unknown, of 2 to do")
    assert "3 skipped" in last[0]
    counted = re.fullmatch(
        r"rollout grow: (\d+) running, 0 failed, 0 unknown \(in flight\)"
        r"(?:, (\d+) made, not running yet)?, of 5",
        last[1],
    )
    assert counted and int(counted[1]) + int(counted[2] or 0) == 5, last[1]
    assert " 2/2 " in grown.stderr and "/5 " not in grown.stderr  # the bar: this run's 2
    again = run(["provision", str(tmp_path / "grow.csv"), *common, "--wait"], tmp_path)
    assert again.returncode == 0, again.stderr
    last = again.stdout.strip().splitlines()[-2:]
    assert last[0].startswith("this run: 0 created, 0 settled, 0 failed, 0 unknown, of 0 to do")
    assert last[1] == "rollout grow: 5 running, 0 failed, 0 unknown (in flight), of 5"


@pytest.mark.parametrize(
    ("done", "total", "waiting", "ready", "expected"),
    [
        (0, 0, False, None, 100.0),  # nothing to do is done
        (1, 4, False, None, 25.0),
        (4, 4, True, (15, 15), 100.0),  # the wait counts the whole rollout: never past 100
        (0, 0, True, (15, 11), 100.0),
        (2, 4, True, (0, 4), 25.0),
    ],
)
def test_progress_is_this_runs_share_and_never_past_100(
    done: int, total: int, waiting: bool, ready: tuple[int, int] | None, expected: float
) -> None:
    """The progress artifact's percent counts this run's work against this run's total."""
    from fleet.create.engine import Progress
    from flows.provision import percent_done

    p = Progress(total=total, done=done, waiting=waiting)
    assert percent_done(p, ready) == expected


def test_status_and_teardown_find_a_rehearsals_ledger(tmp_path: Path) -> None:
    """After provision --simulator, status finds the rehearsals' ledger; teardown names it."""
    path = inventory(tmp_path / "rehearsed.csv", "rehearsed", 2)
    made = run(["provision", path, "--simulator"], tmp_path)
    assert made.returncode in (0, 1), made.stderr  # the rehearsal plays a few faults
    assert "ledger: " in made.stderr and "rehearsal.db (the rehearsals' ledger)" in made.stderr
    shown = run(["status", "rehearsed"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "found in .fleet/rehearsal.db" in shown.stderr
    assert "rehearsed-001" in shown.stdout
    pinned = run(["status", "rehearsed", "--simulator"], tmp_path)
    assert pinned.returncode == 0 and "rehearsed-002" in pinned.stdout, pinned.stderr
    down = run(["teardown", "--rollout", "rehearsed", "--dry-run"], tmp_path)
    assert down.returncode == 2, down.stdout
    assert f"no ledger at {tmp_path / '.fleet' / 'ledger.db'}" in down.stderr
    assert "is a rehearsal's, recorded in .fleet/rehearsal.db" in down.stderr


def test_an_unknown_rollout_and_names_that_exist_name_the_ledger_in_use(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Errors about a rollout not found, or names that exist, say which ledger was read."""
    path = inventory(tmp_path / "twice.csv", "twice", 2)
    first = run(["provision", path, "--endpoint", sim.url, "--ledger", "a.db"], tmp_path)
    assert first.returncode == 0, first.stderr
    other = run(["provision", path, "--endpoint", sim.url, "--ledger", "b.db"], tmp_path)
    assert other.returncode == 2, other.stderr
    assert "carry another rollout's create marker" in other.stderr
    assert "Ledger in use: b.db" in other.stderr
    missing = run(["status", "nosuch", "--ledger", "a.db"], tmp_path)
    assert missing.returncode == 2
    assert f"ledger in use: {tmp_path / 'a.db'}" in missing.stderr
    assert "pass it with --ledger or FLEET_LEDGER" in missing.stderr


def _two_rows(path: Path, web: int) -> str:
    """Write an inventory of ``web`` servers with public IPs and one db server without."""
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo,"
        "associateWithPublicIp\n"
        f"web,{web},25495367,s2-g3,75001,75101,true\n"
        "db,1,25495367,s2-g3,75001,75101,false\n"
    )
    return str(path)


def _ssh_hosts(text: str) -> dict[str, dict[str, str]]:
    """Read an ssh_config fragment line by line: Host blocks and their options."""
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, value = line.split(None, 1)
        if key == "Host":
            current = hosts.setdefault(value, {})
        else:
            assert current is not None and line.startswith("    "), line
            current[key] = value
    return hosts


def test_addresses_documents_and_exports_as_the_next_tool_reads_them(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """IPs reach the results, status --json, plan --json, teardown --json and every export."""
    subnet = ipaddress.ip_network("10.0.1.0/24")
    common = ["--endpoint", sim.url, "--ledger", "ledger.db"]
    path = _two_rows(tmp_path / "app.csv", 2)
    made = run(["provision", path, *common, "--wait", "--poll-interval", "0.2"], tmp_path)
    assert made.returncode == 0, made.stderr
    with open(tmp_path / "results" / "app.csv", encoding="utf-8", newline="") as fh:
        rows = {r["serverName"]: r for r in csv.DictReader(fh)}
    assert all(ipaddress.ip_address(r["privateIp"]) in subnet for r in rows.values())
    assert rows["web-001"]["publicIp"] and not rows["db-001"]["publicIp"]

    status = run(["status", "app", "--json", "--ledger", "ledger.db"], tmp_path)
    assert status.returncode == 0, status.stderr
    servers = {s["name"]: s for s in json.loads(status.stdout)["servers"]}
    assert servers["web-002"]["private_ip"] == rows["web-002"]["privateIp"]
    assert servers["web-002"]["public_ip"] == rows["web-002"]["publicIp"]

    grown = _two_rows(tmp_path / "app.csv", 3)
    plan = run(["plan", grown, "--rollout", "app", *common, "--json"], tmp_path)
    assert plan.returncode == 3, plan.stderr  # a change pending
    document = conforms("plan", plan.stdout)
    assert [(c["name"], c["action"], c["region"]) for c in document["changes"]] == [
        ("web-003", "create", "KR")  # the default region by its code, as export writes it
    ]
    assert "preflight:" in plan.stderr  # the messages went to stderr

    down = run(["teardown", "--rollout", "app", *common, "--dry-run", "--json"], tmp_path)
    assert down.returncode == 0, down.stderr
    planned = json.loads(down.stdout)
    assert sorted(s["name"] for s in planned["servers"]) == ["db-001", "web-001", "web-002"]
    assert {r["label"] for r in planned["returned"]} >= {rows["web-001"]["publicIp"]}

    ansible = run(["export", "app", "--format", "ansible", "--ledger", "ledger.db"], tmp_path)
    assert ansible.returncode == 0, ansible.stderr
    inventory_ = yaml.safe_load(ansible.stdout)
    groups = inventory_["all"]["children"]
    assert sorted(groups) == ["db", "web"]
    web1 = groups["web"]["hosts"]["web-001"]
    assert web1["ansible_host"] == rows["web-001"]["privateIp"]
    assert web1["public_ip"] == rows["web-001"]["publicIp"]
    assert web1["fleet_instance_no"] == rows["web-001"]["serverInstanceNo"]
    assert web1["fleet_region"] == "KR" and web1["fleet_zone"] == "KR-1"

    target = tmp_path / "ssh_config"
    ssh = run(
        ["export", "app", "--format", "ssh", "--public", "--user", "ops", "--output", str(target),
         "--ledger", "ledger.db"],
        tmp_path,
    )  # fmt: skip
    assert ssh.returncode == 0 and ssh.stdout == "", ssh.stderr
    hosts = _ssh_hosts(target.read_text())
    assert hosts["web-002"] == {"HostName": rows["web-002"]["publicIp"], "User": "ops"}
    assert (
        hosts["db-001"]["HostName"] == rows["db-001"]["privateIp"]
    )  # no public IP: the private one

    as_json = run(["export", "app", "--format", "json", "--ledger", "ledger.db"], tmp_path)
    document = conforms("export", as_json.stdout)
    assert document["rollout"] == "app"  # one object, its servers a list under it
    exported = {h["name"]: h for h in document["servers"]}
    assert {h["region"] for h in exported.values()} == {"KR"}
    assert (
        exported["db-001"]["group"] == "db"
        and exported["db-001"]["private_ip"] == rows["db-001"]["privateIp"]
    )


def test_a_deployed_run_of_a_broken_inventory_ends_failed_without_a_traceback(
    tmp_path: Path,
) -> None:
    """A flow run (as a deployment starts one) on a broken inventory: Failed, no traceback."""
    broken = tmp_path / "broken.csv"
    broken.write_text("serverName,serverCreateCount\nx,abc\n")
    script = (
        "import asyncio\n"
        "from flows.provision import provision_fleet\n"
        f"state = asyncio.run(provision_fleet(inventories=[{str(broken)!r}], return_state=True))\n"
        "print('STATE', state.type.value, state.message.splitlines()[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=fleet_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert f"STATE FAILED {broken}:1: vpcNo: required column missing" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr
