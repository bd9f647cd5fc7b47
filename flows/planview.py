"""What ``fleet plan`` says it will do: a summary line, and each change (``--json``: documents).

The exit code tells the three outcomes apart, for scripts and schedulers:
``0`` nothing to change, ``3`` changes pending, ``2`` bad input (as every command).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from fleet.changes import Action, Change
from fleet.converge import Live, Seen

__all__ = ["CHANGES_PENDING", "lines", "summary_line"]

CHANGES_PENDING = 3  # not 2, which means bad input

# How a summary line names each action, and the flag it waits for (if any).
_SAYS = {
    Action.RETIRE: ("to retire (an earlier replace's old server)", ""),
    Action.TERMINATE: ("to take down (an earlier teardown or prune, unfinished)", ""),
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
    # A resize or start an earlier run began is finished by every run, asked or not.
    resumed = [c for c in changes if c.resuming and c.action not in _FINISHING]
    parts = [f"{len(resumed)} to finish (an earlier run began them)"] if resumed else []
    for action, (says, flag) in _SAYS.items():
        n = sum(1 for c in changes if c.action == action and c not in resumed)
        if n:
            parts.append(f"{n} {says}" + (f" [{flag}]" if flag else ""))
    return "plan: " + ", ".join(parts)


# Actions that exist only to finish what an earlier run began.
_FINISHING = frozenset({Action.RETIRE, Action.TERMINATE})


def live_lines(live: Mapping[str, Seen]) -> list[str]:
    """Return what a refresh found: one count line, then each server not running, and why."""
    counted = Counter(s.live for s in live.values())
    head = ", ".join(f"{counted[v]} {v.value}" for v in Live if counted[v])
    out = [f"live (read from NCP now): {head or 'nothing recorded'}"]
    for seen in sorted(live.values(), key=lambda s: s.name):
        if seen.live != Live.RUNNING:
            out.append(f"  {seen.name} ({seen.instance_no}): {seen.live.value}")
    return out


def lines(changes: Sequence[Change], *, full: bool = False, most: int = 10) -> list[str]:
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
