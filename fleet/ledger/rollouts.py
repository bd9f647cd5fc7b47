"""A rollout's own row and what hangs off it: its create-marker id, its window, the rates found.

And forgetting a rehearsal: deleting every row of a rollout that only ever met a simulator.
"""

from __future__ import annotations

import sqlalchemy as sa

from fleet.errors import LedgerError

from . import leases
from .model import Ownership
from .schema import addresses, extras, instances, name_claims, rates, rollouts, servers
from .schema import leases as lease_table

__all__ = ["forget", "known_rate", "ownership", "remember_rate", "retire", "retired"]


def retire(conn: sa.Connection, stamp: str, rollout: str, *, revive: bool = False) -> None:
    """Mark a rollout torn down (no run creates it again), or, with ``revive``, alive again."""
    conn.execute(
        rollouts.update()
        .where(rollouts.c.rollout == rollout)
        .values(retired_at=None if revive else sa.func.coalesce(rollouts.c.retired_at, stamp))
    )


def retired(conn: sa.Connection, rollout: str) -> str | None:
    """Return when a rollout was torn down, if it was and was not revived since."""
    row = conn.execute(
        sa.select(rollouts.c.retired_at).where(rollouts.c.rollout == rollout)
    ).scalar_one_or_none()
    return None if row is None else str(row)


def ownership(
    conn: sa.Connection, rollout: str, window: float, new_marker: str | None
) -> Ownership:
    """Read (or, with ``new_marker``, set) the rollout's marker id and absence window."""
    row = conn.execute(
        sa.select(rollouts.c.marker, rollouts.c.window).where(rollouts.c.rollout == rollout)
    ).first()
    marker = None if row is None else row.marker
    kept = None if row is None or row.window is None else float(row.window)
    if new_marker is None:
        return Ownership(rollout, marker, kept if kept is not None else window)
    marker = marker or new_marker
    if row is None:  # not bound yet (an engine run on its own): bound on first bind
        conn.execute(
            rollouts.insert().values(
                rollout=rollout, endpoint="", account="", marker=marker, window=window
            )
        )
    else:
        conn.execute(
            rollouts.update()
            .where(rollouts.c.rollout == rollout)
            .values(marker=marker, window=window)
        )
    return Ownership(rollout, marker, window)


def remember_rate(
    conn: sa.Connection, stamp: str, endpoint: str, account: str, rate: float
) -> None:
    """Keep the call rate a gateway allowed an account (one row per endpoint and account)."""
    conn.execute(rates.delete().where(rates.c.endpoint == endpoint, rates.c.account == account))
    conn.execute(
        rates.insert().values(endpoint=endpoint, account=account, rate=rate, found_at=stamp)
    )


def known_rate(conn: sa.Connection, endpoint: str, account: str) -> float | None:
    """Return the rate the last run found for this endpoint and account, if any."""
    row = conn.execute(
        sa.select(rates.c.rate).where(rates.c.endpoint == endpoint, rates.c.account == account)
    ).first()
    return None if row is None else float(row.rate)


def forget(conn: sa.Connection, rollout: str, *, unbound_is_rehearsal: bool) -> None:
    """Delete a rehearsal rollout's rows; refuse (LedgerError) for a rollout of real servers."""
    binding = leases.read_binding(conn, rollout)
    known = conn.execute(
        sa.select(servers.c.name).where(servers.c.rollout == rollout).limit(1)
    ).first()
    rehearsal = unbound_is_rehearsal if binding is None else binding.rehearsal
    if known is not None and not rehearsal:
        raise LedgerError(f"rollout {rollout!r} is not a rehearsal: its record is never deleted")
    for table in (servers, instances, rollouts, lease_table, extras, addresses, name_claims):
        conn.execute(table.delete().where(table.c.rollout == rollout))
