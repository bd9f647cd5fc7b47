"""Export formats from ledger records: groups per inventory row, hosts seen RUN only."""

from __future__ import annotations

import json
from dataclasses import fields

import yaml

from fleet.ledger import Address, Record
from fleet.states import ServerStatus, State
from flows.cli.export import Login, ansible_inventory, running_hosts, ssh_config


def record(name: str, line: int, no: str, **changes: object) -> Record:
    """A created server of row ``line``, seen RUN in zone KR-2 of region KR."""
    values: dict[str, object] = {f.name: None for f in fields(Record)}
    values.update(
        rollout="r", name=name, file="inv.csv", line=line, region="", vpc_no="7",
        params_hash="h", state=State.RUNNING, instance_no=no, attempts=1, ambiguous_sends=0,
        adopted=False, duplicates=0, server_status=ServerStatus.RUN,
        response=json.dumps({"regionCode": "KR", "zoneCode": "KR-2"}),
    )  # fmt: skip
    values.update(changes)
    return Record(**values)  # type: ignore[arg-type]


def test_hosts_are_grouped_by_row_and_only_running_ones_exported() -> None:
    """Rows become groups by their names' stem; only running servers are exported."""
    records = [
        record("web-001", 2, "1"),
        record("web-002", 2, "2", state=State.CREATED, server_status=ServerStatus.INIT),
        record("web-10", 3, "3"),  # another row with the same stem: a group of its own
        record("9lives", 4, "4"),  # no stem an Ansible group may start with
        record("gone", 5, "5", state=State.TERMINATED),
        record("stopping", 6, "6", state=State.TERMINATING),  # being taken down: not handed on
    ]
    hosts, not_seen = running_hosts(records, {"1": Address("1", "10.0.1.6", "198.18.0.9")})
    assert not_seen == 1
    assert [(h.name, h.group) for h in hosts] == [
        ("web-001", "web"),
        ("web-10", "web_3"),
        ("9lives", "row_4"),
    ]
    parsed = yaml.safe_load(ansible_inventory("r", hosts))
    web = parsed["all"]["children"]["web"]["hosts"]["web-001"]
    assert web["ansible_host"] == "10.0.1.6"
    assert (web["fleet_region"], web["fleet_zone"]) == ("KR", "KR-2")
    assert "ansible_host" not in parsed["all"]["children"]["web_3"]["hosts"]["web-10"]
    assert ssh_config("r", hosts, public=True).splitlines()[1:] == [
        "",
        "Host web-001",
        "    HostName 198.18.0.9",
        "    User root",
    ]


def test_every_host_says_how_to_log_in_with_its_rows_login_key() -> None:
    """ansible_user and IdentityFile: root and ~/.ssh/<loginKeyName>.pem unless told otherwise."""
    sent = json.dumps([["serverName", "web-001"], ["loginKeyName", "ops-key"]])
    hosts, _ = running_hosts(
        [record("web-001", 2, "1", sent_params=sent), record("db-001", 3, "2")],
        {"1": Address("1", "10.0.1.6", None), "2": Address("2", "10.0.2.7", None)},
    )
    parsed = yaml.safe_load(ansible_inventory("r", hosts))["all"]["children"]
    web, db = parsed["web"]["hosts"]["web-001"], parsed["db"]["hosts"]["db-001"]
    assert web["ansible_user"] == "root"
    assert web["ansible_ssh_private_key_file"] == "~/.ssh/ops-key.pem"
    assert "ansible_ssh_private_key_file" not in db  # no login key known: none guessed
    assert ssh_config("r", hosts).splitlines()[2:6] == [
        "Host web-001",
        "    HostName 10.0.1.6",
        "    User root",
        "    IdentityFile ~/.ssh/ops-key.pem",
    ]
    mine = Login(user="ops", identity="/keys/{key}")
    assert "    IdentityFile /keys/ops-key" in ssh_config("r", hosts, login=mine).splitlines()
    assert (
        yaml.safe_load(ansible_inventory("r", hosts, login=mine))["all"]["children"]["db"]["hosts"][
            "db-001"
        ]["ansible_user"]
        == "ops"
    )
