"""``fleet export``: a rollout's running servers for the next tool (Ansible, SSH, JSON).

Read from the ledger alone: the servers a rollout created and saw RUN (``provision --wait`` or a
staged rollout), with the addresses NCP showed then. Hosts are grouped by their inventory row,
so an Ansible play can target ``web`` or ``db`` as the inventory wrote them: a group is the
rows' names' common stem, made a valid Ansible group name (letters, digits and ``_``: the rows
``front-end-001``... make the group ``front_end``).

Every host says how to log in: the user (``--user``, else ``root``, as NCP's Linux images have
it) and the private key of the row's ``loginKeyName`` (``~/.ssh/<loginKeyName>.pem``, the file
NCP's console hands out; ``--identity-file`` names another, ``{key}`` standing for the key name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from fleet import Address, Record, State

__all__ = [
    "DEFAULT_IDENTITY",
    "DEFAULT_USER",
    "FORMATS",
    "Host",
    "Login",
    "ansible_inventory",
    "export_json",
    "running_hosts",
    "ssh_config",
]

FORMATS = ("ansible", "ssh", "json")
DEFAULT_USER = "root"  # NCP's Linux images: root, with the login key's private key
DEFAULT_IDENTITY = "~/.ssh/{key}.pem"  # {key}: the row's loginKeyName


@dataclass(frozen=True, slots=True)
class Login:
    """How the next tool logs in: a user, and where the private key of a login key lies."""

    user: str = DEFAULT_USER
    identity: str = DEFAULT_IDENTITY  # a path; {key} stands for the host's loginKeyName

    def identity_file(self, host: Host) -> str | None:
        """Return the host's private key file, or None when no login key is known for it."""
        if "{key}" not in self.identity:
            return self.identity
        return self.identity.replace("{key}", host.login_key) if host.login_key else None


@dataclass(frozen=True, slots=True)
class Host:
    """One running server as the next tool needs it."""

    name: str
    group: str  # its inventory row, as an Ansible group name
    instance_no: str
    region: str
    zone: str
    private_ip: str | None
    public_ip: str | None
    file: str
    line: int
    login_key: str | None = None  # the row's loginKeyName, as its create sent it


def _login_key(record: Record) -> str | None:
    """Return the login key the server's create named (or NCP's answer, for an adopted one)."""
    for text in (record.sent_params, record.response):
        try:
            raw: Any = json.loads(text or "null")
        except ValueError:
            continue
        found = dict(raw).get("loginKeyName") if isinstance(raw, list | dict) else None
        if found:
            return str(found)
    return None


def _where(record: Record) -> tuple[str, str]:
    """Return the server's region and zone as NCP reported them (its create's answer).

    A row with no regionCode went to NCP's default region: the answer names it.
    """
    try:
        raw: Any = json.loads(record.response or "{}")
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    return record.region or str(raw.get("regionCode", "")), str(raw.get("zoneCode", ""))


def _group_names(records: Sequence[Record]) -> dict[tuple[str, int], str]:
    """Name each inventory row: its names' common stem (web-001..web-006: web), else row_LINE."""
    rows: dict[tuple[str, int], list[str]] = {}
    for r in records:
        rows.setdefault((r.file, r.line), []).append(r.name)
    names: dict[tuple[str, int], str] = {}
    for (file, line), members in rows.items():
        stem = members[0] if len(members) == 1 else _common_prefix(members)
        stem = re.sub(r"[^A-Za-z0-9_]+", "_", stem.rstrip("-_.0123456789")).strip("_")
        group = stem if stem and not stem[0].isdigit() else f"row_{line}"
        if group in names.values():  # two rows with one stem: keep them apart
            group = f"{group}_{line}"
        names[(file, line)] = group
    return names


def _common_prefix(names: Sequence[str]) -> str:
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def running_hosts(
    records: Sequence[Record], addresses: Mapping[str, Address]
) -> tuple[list[Host], int]:
    """Return the servers running now (their state, from the ledger), and how many kept are not."""
    live = [r for r in records if r.state.kept and r.instance_no]
    groups = _group_names(live)
    hosts: list[Host] = []
    for r in live:
        if r.state != State.RUNNING:
            continue
        seen = addresses.get(r.instance_no or "")
        region, zone = _where(r)
        hosts.append(
            Host(
                r.name,
                groups[(r.file, r.line)],
                r.instance_no or "",
                region,
                zone,
                seen.private_ip if seen else None,
                seen.public_ip if seen else None,
                r.file,
                r.line,
                _login_key(r),
            )
        )
    return hosts, len(live) - len(hosts)


def _address(host: Host, public: bool) -> str | None:
    return (host.public_ip if public else None) or host.private_ip or host.public_ip


def ansible_inventory(
    rollout: str, hosts: Sequence[Host], *, public: bool = False, login: Login = Login()
) -> str:
    """Return an Ansible YAML inventory: a group per inventory row, host vars for each server."""
    children: dict[str, Any] = {}
    for h in hosts:
        host_vars: dict[str, Any] = {}
        address = _address(h, public)
        if address:
            host_vars["ansible_host"] = address
        host_vars["ansible_user"] = login.user
        key_file = login.identity_file(h)
        if key_file:
            host_vars["ansible_ssh_private_key_file"] = key_file
        host_vars.update(
            fleet_instance_no=h.instance_no,
            fleet_region=h.region,
            fleet_zone=h.zone,
            private_ip=h.private_ip,
            public_ip=h.public_ip,
        )
        children.setdefault(h.group, {"hosts": {}})["hosts"][h.name] = host_vars
    document = {"all": {"vars": {"fleet_rollout": rollout}, "children": children}}
    header = f"# Ansible inventory of fleet rollout {rollout}: its servers seen running\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def ssh_config(
    rollout: str, hosts: Sequence[Host], *, public: bool = False, login: Login = Login()
) -> str:
    """Return an ssh_config fragment: one Host block per server that has an address."""
    lines = [f"# fleet rollout {rollout}: Include this file from ~/.ssh/config"]
    for h in hosts:
        address = _address(h, public)
        if not address:
            continue
        lines += ["", f"Host {h.name}", f"    HostName {address}", f"    User {login.user}"]
        key_file = login.identity_file(h)
        if key_file:
            lines.append(f"    IdentityFile {key_file}")
    return "\n".join(lines) + "\n"


def export_json(rollout: str, hosts: Sequence[Host]) -> str:
    """Return the running servers as one JSON document."""
    return json.dumps({"rollout": rollout, "servers": [asdict(h) for h in hosts]}, indent=2) + "\n"
