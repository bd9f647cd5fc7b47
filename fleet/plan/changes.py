"""What a plan does per server to bring NCP to the inventory: one action each, as data.

``plan_changes`` is a pure function of the inventory, the ledger's records and the refresh (the
survey): ``fleet plan`` prints it (``--json`` too) and ``provision`` takes the same actions.
Servers that need nothing are left out. Create, recreate and start are what a run does by
default; resize and replace only with ``--replace``; destroy only with ``--prune``. A change an
earlier run began and did not finish (an intent in the ledger: ``fleet.states``) is shown too,
and every run finishes it first, asked or not: ``retire`` (a replaced server, deposed, taken down
once its replacement runs), ``terminate`` (a teardown or prune that stopped part-way), and a
``resize`` or ``start`` marked ``resuming``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from fleet.ledger import Instance, Record, State
from fleet.ncp.client import ServerInstance
from fleet.plan.refresh import Refreshed
from fleet.plan.survey import Survey
from fleet.planned import PlannedServer

__all__ = [
    "IN_PLACE",
    "Action",
    "Change",
    "field_changes",
    "in_place",
    "intended",
    "live_drift",
    "plan_changes",
]


class Action(StrEnum):
    """What a plan does with one server to bring NCP to the inventory."""

    CREATE = "create"  # in the inventory, never made (or surely not)
    RECREATE = "recreate"  # made, then terminated out of band
    START = "start"  # made, then stopped out of band
    RESIZE = "resize"  # its spec changed within what NCP changes in place (stop, change, start)
    REPLACE = "replace"  # anything else changed: a new server under the name, then the old goes
    DESTROY = "destroy"  # no longer in the inventory (a row removed, a count lowered)
    RETIRE = "retire"  # a replaced server, deposed: taken down once its replacement runs
    TERMINATE = "terminate"  # a teardown or prune an earlier run began: finished


Fields = tuple[tuple[str, str, str], ...]  # (field, old, new)

# The fields NCP's changeServerInstanceSpec changes in place; any other change replaces.
IN_PLACE = frozenset({"serverSpecCode", "serverProductCode"})
# What the create sends that says nothing of the server itself: never a reason to change one.
_IGNORED = frozenset({"serverName", "serverCreateCount", "serverDescription"})


@dataclass(frozen=True, slots=True)
class Change:
    """One server's action, where it lives, and for a resize or replace each field old -> new."""

    name: str
    action: Action
    region: str = ""
    instance_no: str | None = None
    fields: Fields = ()  # (field, old, new)
    note: str = ""
    resuming: bool = False  # an earlier run began it: finished by every run, asked or not


def field_changes(
    sent: Sequence[tuple[str, str]], wanted: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str, str], ...]:
    """Return each create parameter that differs between what was sent and what is wanted."""
    old, new = dict(sent), dict(wanted)
    keys = sorted((set(old) | set(new)) - _IGNORED)
    return tuple(
        (k, old.get(k, ""), new.get(k, "")) for k in keys if old.get(k, "") != new.get(k, "")
    )


def in_place(fields: Sequence[tuple[str, str, str]]) -> bool:
    """Whether NCP can make these changes in place (a spec or product code only)."""
    return bool(fields) and all(f in IN_PLACE for f, _, _ in fields)


def live_drift(
    server: ServerInstance | None, wanted: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str, str], ...]:
    """Return the in-place fields a server now differs in from what is wanted (changed by hand)."""
    if server is None:
        return ()
    want = dict(wanted)
    listed = {"serverProductCode": server.product_code, "serverSpecCode": server.spec_code}
    out = []
    for key in sorted(IN_PLACE):
        live, desired = listed[key], want.get(key, "")
        if live and desired and live != desired:
            out.append((key, live, desired))
    return tuple(out)


def _sent(record: Record) -> list[tuple[str, str]]:
    pairs = json.loads(record.sent_params) if record.sent_params else []
    return [(str(k), str(v)) for k, v in pairs]


def _kept(record: Record, spec: PlannedServer, seen: Mapping[str, Refreshed]) -> Change | None:
    """Return the change a kept server needs: its row edited, or its spec changed by hand."""
    # An adopted server was never sent by fleet: only what NCP lists of it can differ.
    fields = field_changes(_sent(record), spec.params) if record.sent_params else ()
    if not fields:
        found = seen.get(record.name)
        fields = live_drift(found.server if found else None, spec.params)
    if not fields:
        return None
    action = Action.RESIZE if in_place(fields) else Action.REPLACE
    resuming = record.state == State.RESIZING
    note = "resuming: an earlier run began it" if resuming else ""
    return Change(record.name, action, record.region, record.instance_no, fields, note, resuming)


# What an unfinished intent is shown (and finished) as, and its note.
_INTENDED = {
    State.DEPOSED: (Action.RETIRE, "deposed: taken down once its replacement runs"),
    State.TERMINATING: (Action.TERMINATE, "an earlier run began taking it down"),
    State.STARTING: (Action.START, "resuming: an earlier run began starting it"),
}


def intended(instances: Sequence[Instance]) -> list[Change]:
    """Return the changes earlier runs began and did not finish (their intents), by name."""
    out = []
    for i in instances:
        if i.state not in _INTENDED:
            continue  # a resize is shown by its row (``_kept``)
        action, note = _INTENDED[i.state]
        why = json.loads(i.intent).get("why") if i.intent else None
        if i.state == State.TERMINATING and why:
            note = f"an earlier {why} began taking it down"
        out.append(Change(i.name, action, i.region, i.instance_no, note=note, resuming=True))
    return out


def plan_changes(
    specs: Sequence[PlannedServer], records: Sequence[Record], survey: Survey
) -> list[Change]:
    """Return one change per server that needs one, in inventory order, then what goes.

    The unfinished intents of earlier runs (``survey.intents``) come first: they are finished
    before anything else.
    """
    known = {r.name: r for r in records}
    gone, stopped = set(survey.gone), {s.name: s for s in survey.stopped}
    by_name: dict[str, Refreshed] = {}
    for s in survey.seen:  # by name, once: not a scan of every server for each adopted one
        by_name.setdefault(s.name, s)
    creating = {s.name for s in survey.to_create}
    out = intended(survey.intents)
    for spec in specs:
        rec = known.get(spec.name)
        if spec.name in gone:
            out.append(Change(spec.name, Action.RECREATE, spec.region, note="gone out of band"))
        elif spec.name in creating:
            out.append(Change(spec.name, Action.CREATE, spec.region))
        elif spec.name in stopped:
            seen = stopped[spec.name]
            out.append(Change(spec.name, Action.START, seen.region, seen.instance_no))
        elif rec is not None and rec.state.kept and rec.state != State.STARTING:
            change = _kept(rec, spec, by_name)
            out += [change] if change else []
    wanted = {s.name for s in specs}
    for rec in records:
        if rec.name in wanted or not rec.state.kept:
            continue
        note = "adopted: fleet did not create it" if rec.adopted else "not in the inventory"
        listed = by_name.get(rec.name)
        if listed is not None and listed.server is not None and listed.server.protected:
            note += "; termination protection is on"
        out.append(Change(rec.name, Action.DESTROY, rec.region, rec.instance_no, note=note))
    return out
