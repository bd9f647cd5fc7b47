"""What ``fleet plan`` says it will do: a summary line, each change, or one JSON document.

The exit code tells the three outcomes apart, for scripts and schedulers:
``0`` nothing to change, ``3`` changes pending, ``2`` bad input (as every command).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleet.changes import Action, Change
from fleet.survey import Survey

__all__ = ["CHANGES_PENDING", "document", "lines", "summary_line"]

CHANGES_PENDING = 3  # not 2, which means bad input

# How a summary line names each action, and the flag it waits for (if any).
_SAYS = {
    Action.CREATE: ("to create", ""),
    Action.RECREATE: ("to recreate (gone out of band)", ""),
    Action.START: ("to start (stopped out of band)", ""),
    Action.RESIZE: ("to resize in place", "--replace"),
    Action.REPLACE: ("to replace", "--replace"),
    Action.DESTROY: ("to destroy (not in the inventory)", "--prune"),
}


def summary_line(changes: Sequence[Change]) -> str:
    """Return one line: N to create, N to recreate ... (or that nothing changes)."""
    if not changes:
        return "no changes: NCP matches the inventory"
    parts = []
    for action, (says, flag) in _SAYS.items():
        n = sum(1 for c in changes if c.action == action)
        if n:
            parts.append(f"{n} {says}" + (f" [{flag}]" if flag else ""))
    return "plan: " + ", ".join(parts)


def lines(changes: Sequence[Change], *, full: bool = False, most: int = 20) -> list[str]:
    """Return one line per change (each field of a resize or replace as old -> new)."""
    out: list[str] = []
    shown = changes if full else changes[:most]
    for c in shown:
        where = f" {c.instance_no}" if c.instance_no else ""
        note = f" ({c.note})" if c.note else ""
        out.append(f"  {c.action.value:<8} {c.name}{where}{note}")
        out += [f"           {field}: {old or '-'} -> {new or '-'}" for field, old, new in c.fields]
    if len(changes) > len(shown):
        out.append(f"  ... and {len(changes) - len(shown)} more (--full shows every one)")
    return out


def document(rollout: str, ledger: str, found: Survey, changes: Sequence[Change]) -> dict[str, Any]:
    """Return the plan as one JSON document: what changes, and the counts."""
    counts = {action.value: sum(1 for c in changes if c.action == action) for action in Action}
    return {
        "rollout": rollout,
        "ledger": ledger,
        "changes": [c.as_dict() for c in changes],
        "counts": {k: v for k, v in counts.items() if v},
        "unchanged": len(found.done) - sum(1 for c in changes if c.name in set(found.done)),
        "unsettled": [s.name for s in found.unsettled],
        "conflicts": [{"name": n, "instanceNos": nos.split()} for n, nos in found.conflicts],
        "refusedBefore": list(found.skipped_failed),
    }
