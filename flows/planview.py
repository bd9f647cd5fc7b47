"""What ``fleet plan`` says a run would do: exactly what ``provision`` with the same flags does.

``forecast`` splits the plan's changes three ways, with the flags given (``--replace``,
``--prune``): what the run changes (and the creates an earlier run left in flight, settled
first), what it leaves for a flag it was not given, and what it would be asked to change and
still not touch (a server with termination protection is not replaced or destroyed; an adopted
one is not destroyed), each with why. The table, the lines and the JSON document all read it.

The exit code tells the three outcomes apart, for scripts and schedulers:
``0`` NCP matches the inventory, ``3`` it does not (a change, a settle, one left for a flag or
withheld), ``2`` bad input (as every command).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from fleet import (
    Action,
    Change,
    Live,
    NcpClient,
    PlannedServer,
    ProvisionOptions,
    Record,
    Refreshed,
    Survey,
    read_statuses,
)

__all__ = [
    "FLAGS",
    "SETTLE",
    "Forecast",
    "forecast",
    "lines",
    "live_lines",
    "protected",
    "summary_line",
]

SETTLE = "settle"  # a create an earlier run left in flight: looked up first, created if absent

# The actions a run takes only when asked, and the flag that asks.
FLAGS = {Action.RESIZE: "--replace", Action.REPLACE: "--replace", Action.DESTROY: "--prune"}

# How a line names each action, in the order a run takes them.
SAYS = {
    Action.RETIRE.value: "to retire (an earlier replace's old server)",
    Action.TERMINATE.value: "to take down (an earlier teardown or prune, unfinished)",
    SETTLE: "to settle (in flight before: looked up first)",
    Action.CREATE.value: "to create",
    Action.RECREATE.value: "to recreate (gone out of band)",
    Action.START.value: "to start (stopped out of band)",
    Action.RESIZE.value: "to resize in place",
    Action.REPLACE.value: "to replace",
    Action.DESTROY.value: "to destroy (not in the inventory)",
}
PROTECTED = "termination protection is on"


@dataclass(frozen=True, slots=True)
class Forecast:
    """What a provisioning run with these flags would do, and what it would leave, and why."""

    settle: tuple[PlannedServer, ...]  # creates an earlier run left in flight: looked up first
    changes: tuple[Change, ...]  # what the run changes, in inventory order, then what goes
    pending: tuple[tuple[Change, str], ...]  # left for a flag not given: (change, flag)
    withheld: tuple[tuple[Change, str], ...]  # asked for, not done: (change, why)

    @property
    def differs(self) -> bool:
        """Whether NCP differs from the inventory at all (the exit code 3)."""
        return bool(self.settle or self.changes or self.pending or self.withheld)

    def counts(self) -> dict[str, int]:
        """Return how many servers each action takes in the run, every action, zeros included."""
        counted = Counter(c.action.value for c in self.changes)
        return {SETTLE: len(self.settle), **{a.value: counted[a.value] for a in Action}}


def _withheld(
    change: Change, protected: Collection[str], adopted: set[str], records: Mapping[str, Record]
) -> str | None:
    """Return why a run asked to replace or destroy this server would not, if it would not."""
    del records  # what NCP lists now says whether a server is protected: ``protected``
    on = change.name in protected
    if change.action == Action.REPLACE and change.name in protected:
        return f"{PROTECTED}: not replaced"
    if change.action == Action.DESTROY and change.name in adopted:
        return "adopted (fleet did not create it): not destroyed"
    if change.action == Action.DESTROY and on:
        return f"{PROTECTED}: not destroyed"
    return None


async def protected(client: NcpClient, found: Survey, changes: Sequence[Change]) -> set[str]:
    """Return the servers the plan would replace or destroy that have termination protection on.

    The refresh read every server of the inventory; a server to destroy is no longer in it, so
    it is read here (one call per 100), as the run's teardown would read it.
    """
    on = {s.name for s in found.seen if s.server is not None and s.server.protected}
    going = {c.instance_no: c.name for c in changes if c.action == Action.DESTROY and c.instance_no}
    if going:
        regions = {c.instance_no: c.region for c in changes if c.instance_no in going}
        listed = await read_statuses(client, [(regions[no], no) for no in going]) or {}
        on |= {going[no] for no, server in listed.items() if no in going and server.protected}
    return on


def forecast(
    changes: Sequence[Change],
    found: Survey,
    records: Sequence[Record],
    options: ProvisionOptions,
    protected: Collection[str] = (),
) -> Forecast:
    """Return what ``provision`` with these options would do of the plan's changes.

    ``protected``: the servers with termination protection on (``protected`` reads them).
    """
    protected = set(protected)
    adopted = {r.name for r in records if r.adopted}
    by_name = {r.name: r for r in records}
    given = {"--replace": options.replace, "--prune": options.prune}
    made: list[Change] = []
    pending: list[tuple[Change, str]] = []
    withheld: list[tuple[Change, str]] = []
    for change in changes:
        # A change an earlier run began is finished by every run, whatever its flags.
        flag = None if change.resuming else FLAGS.get(change.action)
        why = _withheld(change, protected, adopted, by_name)
        if flag is not None and not given[flag]:
            pending.append((change, flag))
        elif why is not None:
            withheld.append((change, why))
        else:
            made.append(change)
    return Forecast(found.unsettled, tuple(made), tuple(pending), tuple(withheld))


def summary_line(seen: Forecast) -> str:
    """Return one line: N to create, N to recreate ... left for a flag (or that nothing changes)."""
    if not seen.differs:
        return "no changes: NCP matches the inventory"
    counts = seen.counts()
    parts = [f"{n} {SAYS[action]}" for action, n in counts.items() if n]
    left = Counter((c.action.value, flag) for c, flag in seen.pending)
    parts += [f"{n} {SAYS[a].removeprefix('to ')} left for {flag}" for (a, flag), n in left.items()]
    if seen.withheld:
        parts.append(f"{len(seen.withheld)} not done (protected or adopted)")
    return "plan: " + ", ".join(parts)


def live_lines(live: Mapping[str, Refreshed]) -> list[str]:
    """Return what a refresh found: one count line, then each server not running, and why."""
    counted = Counter(s.live for s in live.values())
    head = ", ".join(f"{counted[v]} {v.value}" for v in Live if counted[v])
    out = [f"live (read from NCP now): {head or 'nothing recorded'}"]
    for seen in sorted(live.values(), key=lambda s: s.name):
        if seen.live != Live.RUNNING:
            out.append(f"  {seen.name} ({seen.instance_no}): {seen.live.value}")
    return out


def _line(c: Change, after: str = "") -> list[str]:
    """Return a change's line (its number, its note, why) and each field as old -> new."""
    where = f" {c.instance_no}" if c.instance_no else ""
    note = f" ({c.note})" if c.note else ""
    out = [f"  {c.action.value:<8} {c.name}{where}{note}{after}"]
    return out + [f"           {key}: {old or '-'} -> {new or '-'}" for key, old, new in c.fields]


def lines(seen: Forecast, *, full: bool = False, most: int = 10) -> list[str]:
    """Return a line per change a create does not say all of: each field as old -> new too."""
    told = [
        *(_line(c) for c in seen.changes if c.action != Action.CREATE),
        *(_line(c, f" [left for {flag}]") for c, flag in seen.pending),
        *(_line(c, f" [not done: {why}]") for c, why in seen.withheld),
    ]
    shown = told if full else told[:most]
    out = [line for block in shown for line in block]
    if len(told) > len(shown):
        out.append(f"  ... and {len(told) - len(shown)} more (--full shows every one)")
    return out
