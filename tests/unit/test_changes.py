"""The plan's one action per server, from the inventory, the ledger and the refresh: a table."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fleet.ledger import Instance, PlanDelta, Record, State
from fleet.ncp.client import ServerInstance
from fleet.plan.changes import Action, plan_changes
from fleet.plan.refresh import Live, Refreshed
from fleet.plan.survey import Survey
from fleet.planned import PlannedServer

BASE = (("serverImageNo", "100"), ("serverSpecCode", "s2-g3"), ("vpcNo", "7"), ("subnetNo", "8"))


def spec(name: str, **changed: str) -> PlannedServer:
    params = (*((k, changed.get(k, v)) for k, v in BASE), ("serverName", name))
    return PlannedServer(name, "inv.csv", 2, params)


def record(name: str, *, sent: PlannedServer | None = None, **fields: object) -> Record:
    base = Record(
        "r", name, "inv.csv", 2, "", "7", "h", State.RUNNING, f"9{name[-1]}", None, 1, 0,
        None, None, None, None, False, None, None, None,
        json.dumps((sent or spec(name)).params), None, 0, None, None, None, None, None, None,
    )  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


def survey(**fields: object) -> Survey:
    empty = Survey((), (), (), (), (), (), (), (), PlanDelta((), (), (), ()))
    return replace(empty, **fields)  # type: ignore[arg-type]


def live(name: str, state: Live, spec_code: str = "s2-g3", protected: bool = False) -> Refreshed:
    raw = {"serverInstanceNo": "91", "serverName": name, "serverSpecCode": spec_code,
           "isProtectServerTermination": protected}  # fmt: skip
    return Refreshed(name, "91", "", state, ServerInstance.from_api(raw))


def intent(name: str, state: State, why: str = "") -> Instance:
    """An instance with a change an earlier run began."""
    kept = json.dumps({"why": why}) if why else None
    return Instance("r", "80", name, "", "7", "replaced", "answer", None, None, state, 0,
                    None, None, intent=kept)  # fmt: skip


CASES = [
    ("unchanged", [spec("a-1")], [record("a-1")], survey(), []),
    ("new", [spec("a-1")], [], survey(to_create=(spec("a-1"),)), [("a-1", Action.CREATE)]),
    (
        "gone",
        [spec("a-1")],
        [record("a-1")],
        survey(gone=("a-1",), to_create=(spec("a-1"),)),
        [("a-1", Action.RECREATE)],
    ),
    (
        "stopped",
        [spec("a-1")],
        [record("a-1")],
        survey(stopped=(live("a-1", Live.STOPPED),)),
        [("a-1", Action.START)],
    ),
    (
        "spec edited",
        [spec("a-1", serverSpecCode="s4-g3")],
        [record("a-1")],
        survey(),
        [("a-1", Action.RESIZE)],
    ),
    (
        "image edited",
        [spec("a-1", serverImageNo="200")],
        [record("a-1")],
        survey(),
        [("a-1", Action.REPLACE)],
    ),
    (
        "spec changed by hand",
        [spec("a-1")],
        [record("a-1")],
        survey(seen=(live("a-1", Live.RUNNING, "c8-g3"),)),
        [("a-1", Action.RESIZE)],
    ),
    (
        "adopted, never sent",  # nothing fleet sent to compare with: only what NCP lists
        [spec("a-1", serverImageNo="200")],
        [record("a-1", sent_params=None, adopted=True)],
        survey(),
        [],
    ),
    ("removed", [], [record("a-1")], survey(), [("a-1", Action.DESTROY)]),
    (
        "removed, protected",  # still shown: a protected server is destroyed once lifted
        [],
        [record("a-1")],
        survey(seen=(live("a-1", Live.RUNNING, protected=True),)),
        [("a-1", Action.DESTROY)],
    ),
    ("removed, torn down", [], [record("a-1", state=State.TERMINATED)], survey(), []),
    ("removed, being taken down", [], [record("a-1", state=State.TERMINATING)], survey(), []),
    ("removed, never made", [], [record("a-1", state=State.FAILED)], survey(), []),
    (
        "replaced, its old server deposed",  # an earlier run's replace: finished first
        [spec("a-1")],
        [record("a-1")],
        survey(intents=(intent("a-1", State.DEPOSED, "replace"),)),
        [("a-1", Action.RETIRE)],
    ),
    (
        "a teardown left part-way",
        [],
        [record("a-1", state=State.TERMINATING)],
        survey(intents=(intent("a-1", State.TERMINATING, "prune"),)),
        [("a-1", Action.TERMINATE)],
    ),
    (
        "a resize left part-way",  # shown as the resize it is, resumed by any run
        [spec("a-1", serverSpecCode="s4-g3")],
        [record("a-1", state=State.RESIZING)],
        survey(),
        [("a-1", Action.RESIZE)],
    ),
]


@pytest.mark.parametrize(("specs", "records", "found", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_plan_changes(specs, records, found, expected) -> None:
    """Each situation of a server gives the one action the plan shows and the run takes."""
    assert [(c.name, c.action) for c in plan_changes(specs, records, found)] == expected


def test_a_change_an_earlier_run_began_is_shown_resuming_with_its_old_number() -> None:
    """Plan shows an unfinished intent as what it is: retire web's old server, resuming."""
    found = survey(intents=(intent("a-1", State.DEPOSED, "replace"),))
    (change,) = plan_changes([spec("a-1")], [record("a-1")], found)
    assert (change.action, change.instance_no, change.note, change.resuming) == (
        Action.RETIRE,
        "80",
        "deposed: taken down once its replacement runs",
        True,
    )


def test_a_resize_and_a_replace_say_each_field_old_and_new() -> None:
    """The plan shows what changes: field, old value, new value."""
    (change,) = plan_changes([spec("a-1", serverImageNo="200")], [record("a-1")], survey())
    assert change.fields == (("serverImageNo", "100", "200"),)
    assert change.action == Action.REPLACE
