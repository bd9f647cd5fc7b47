"""Which ledger a command uses, said out loud; and where else a rollout may be recorded.

The default ledger (``.fleet/ledger.db``) is relative to the directory a command starts in, and
a rehearsal keeps its own (``.fleet/rehearsal.db``): a command that does not find a rollout says
which ledger it read and which other ledger holds that rollout, if one here does.
``FLEET_LEDGER`` (or ``--ledger``) pins one.
"""

from __future__ import annotations

import os
from pathlib import Path

from fleet import DEFAULT_LEDGER, FleetError, Ledger, LedgerLocation, RunOptions
from fleet.simulator import REHEARSAL_LEDGER

__all__ = ["elsewhere", "hint", "pinned", "shown", "used"]


def shown(location: LedgerLocation) -> str:
    """Return a ledger's location for people: a file's absolute path, a URL without password."""
    if location.path is None:
        return location.redacted
    return str(location.path.absolute())


def used(location: LedgerLocation) -> str:
    """Return the line every command prints: which ledger it used."""
    rehearsal = location.path is not None and _same(location.path, REHEARSAL_LEDGER)
    return f"ledger: {shown(location)}" + (" (the rehearsals' ledger)" if rehearsal else "")


def pinned(options: RunOptions) -> bool:
    """Whether the user named the ledger (--ledger, a Secret block, FLEET_LEDGER)."""
    return bool(options.ledger or options.ledger_block or os.environ.get("FLEET_LEDGER"))


def _same(a: Path, b: Path) -> bool:
    return a.absolute() == b.absolute()


def _holds(path: Path, rollout: str) -> bool:
    """Whether the SQLite ledger at ``path`` exists and records ``rollout`` (never creates it)."""
    if not path.is_file():
        return False
    try:
        with Ledger(LedgerLocation.parse(str(path))) as book:
            return rollout in book.rollouts()
    except FleetError:
        return False  # unreadable or foreign: not the one meant


def elsewhere(current: LedgerLocation, rollout: str) -> Path | None:
    """Return another ledger file here (the default, the rehearsals') that records ``rollout``."""
    for candidate in (DEFAULT_LEDGER, REHEARSAL_LEDGER):
        if current.path is not None and _same(current.path, candidate):
            continue
        if _holds(candidate, rollout):
            return candidate
    return None


def hint(current: LedgerLocation, rollout: str, *, teardown: bool = False) -> str:
    """Return the advice for a rollout not found in (or clashing with) the ledger in use."""
    other = elsewhere(current, rollout)
    where = f"ledger in use: {shown(current)}"
    if other is None:
        return (
            f"({where}; if rollout {rollout!r} is recorded in another ledger, pass it with "
            "--ledger or FLEET_LEDGER)"
        )
    if not _same(other, REHEARSAL_LEDGER):
        return f"({where}; rollout {rollout!r} is recorded in {other}: pass --ledger {other})"
    if teardown:  # its servers live as long as its simulator runs
        return (
            f"({where}; rollout {rollout!r} is a rehearsal's, recorded in {other}: pass "
            "--simulator to take it down while its simulator runs)"
        )
    return (
        f"({where}; rollout {rollout!r} is a rehearsal's, recorded in {other}: pass "
        f"--simulator, or --ledger {other})"
    )
