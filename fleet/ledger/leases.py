"""Leases (one run per rollout at a time) and bindings (one endpoint and account per rollout).

A lease is a row: its owner (a random token per run), who that is in words (host, process, flow
run), and an expiry pushed forward by heartbeats. A crashed holder's lease simply expires. Every
create is claimed under a check of the lease in the same transaction, so a run that lost its lease
(paused past expiry, then taken over) cannot claim another server.
"""

from __future__ import annotations

import sqlalchemy as sa

from fleet.errors import BindingError, LeaseHeld, LeaseLost

from .hot import Hot
from .model import Binding, LeaseInfo
from .rows import iso
from .schema import leases, rollouts

__all__ = ["acquire", "bind", "check", "read_binding", "read_lease", "release", "renew"]


def _info(row: sa.Row[object]) -> LeaseInfo:
    m = row._mapping
    return LeaseInfo(
        str(m["rollout"]),
        str(m["owner"]),
        str(m["holder"]),
        float(m["acquired_at"]),
        float(m["heartbeat_at"]),
        float(m["expires_at"]),
    )


def read_lease(conn: sa.Connection, rollout: str, *, lock: bool = False) -> LeaseInfo | None:
    """Return the rollout's lease row, if any (locked for this transaction when asked)."""
    query = sa.select(leases).where(leases.c.rollout == rollout)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _info(row)


def acquire(
    conn: sa.Connection, now: float, rollout: str, owner: str, holder: str, ttl: float
) -> LeaseInfo:
    """Take the rollout's lease for ``owner``; raise LeaseHeld if someone else holds it."""
    current = read_lease(conn, rollout, lock=True)
    if current is None:
        conn.execute(
            leases.insert().values(
                rollout=rollout,
                owner=owner,
                holder=holder,
                acquired_at=now,
                heartbeat_at=now,
                expires_at=now + ttl,
            )
        )
    elif current.owner == owner or current.expires_at <= now:
        acquired = current.acquired_at if current.owner == owner else now
        conn.execute(
            leases.update()
            .where(leases.c.rollout == rollout)
            .values(
                owner=owner,
                holder=holder,
                acquired_at=acquired,
                heartbeat_at=now,
                expires_at=now + ttl,
            )
        )
    else:
        raise LeaseHeld(rollout, current.holder, iso(current.acquired_at), iso(current.expires_at))
    lease = read_lease(conn, rollout)
    assert lease is not None
    return lease


# The lease as every claim reads it: its owner and expiry, locked till commit (FOR UPDATE on
# PostgreSQL; SQLite's transaction holds the write lock already).
_CHECK = Hot(
    lambda _: (
        sa.select(leases.c.owner, leases.c.holder, leases.c.expires_at)
        .where(leases.c.rollout == sa.bindparam("l_rollout"))
        .with_for_update()
    )
)


def check(conn: sa.Connection, now: float, rollout: str, owner: str) -> None:
    """Raise LeaseLost unless ``owner`` holds the rollout's lease now (locking it till commit).

    Once per transaction: the first check locks the lease until the commit (SQLite's write lock,
    PostgreSQL's row lock), so no other run can take it over before then, and the claims that
    share one commit (the ledger's group commit) need not read it again.
    """
    transaction = conn.get_transaction()
    checked = conn.info.get("lease_checked")
    if checked is not None and checked[0] is transaction and checked[1:] == (rollout, owner):
        return
    row = _CHECK.execute(conn, {"l_rollout": rollout}).fetchone()
    if row is None or row[0] != owner:
        who = "nobody" if row is None else row[1]
        raise LeaseLost(f"rollout {rollout!r}: this run no longer holds its lease (now: {who})")
    if float(row[2]) <= now:
        raise LeaseLost(
            f"rollout {rollout!r}: this run's lease expired at {iso(float(row[2]))} "
            "without a heartbeat"
        )
    # The transaction object itself, not its id: an id can be reused by a later one.
    conn.info["lease_checked"] = (transaction, rollout, owner)


def renew(conn: sa.Connection, now: float, rollout: str, owner: str, ttl: float) -> None:
    """Push the lease's expiry forward; raise LeaseLost if another run has taken it."""
    result = conn.execute(
        leases.update()
        .where(leases.c.rollout == rollout, leases.c.owner == owner)
        .values(heartbeat_at=now, expires_at=now + ttl)
    )
    if result.rowcount != 1:
        current = read_lease(conn, rollout)
        who = "nobody" if current is None else current.holder
        raise LeaseLost(f"rollout {rollout!r}: lease taken over by {who}")


def release(conn: sa.Connection, rollout: str, owner: str) -> None:
    """Give the lease up, if this owner still holds it."""
    conn.execute(leases.delete().where(leases.c.rollout == rollout, leases.c.owner == owner))


def read_binding(conn: sa.Connection, rollout: str) -> Binding | None:
    """Return where the rollout's servers live, if it was ever run."""
    row = conn.execute(sa.select(rollouts).where(rollouts.c.rollout == rollout)).first()
    if row is None:
        return None
    return Binding(row.rollout, row.endpoint, row.account, bool(row.rehearsal))


def bind(conn: sa.Connection, now: str, wanted: Binding, *, rebind: bool = False) -> Binding:
    """Bind the rollout to an endpoint and account, or check it is bound to them already."""
    current = read_binding(conn, wanted.rollout)
    if current is None:
        conn.execute(
            rollouts.insert().values(
                rollout=wanted.rollout,
                endpoint=wanted.endpoint,
                account=wanted.account,
                rehearsal=int(wanted.rehearsal),
                bound_at=now,
                updated_at=now,
            )
        )
        return wanted
    same = (current.endpoint, current.account) == (wanted.endpoint, wanted.account)
    if same and current.rehearsal == wanted.rehearsal:
        return current
    if not rebind:
        differs = []
        if current.endpoint != wanted.endpoint:
            differs.append(f"endpoint {current.endpoint} (this run: {wanted.endpoint})")
        if current.account != wanted.account:
            differs.append(f"account key {current.account} (this run: {wanted.account})")
        raise BindingError(
            f"rollout {wanted.rollout!r} lives at {' and '.join(differs) or 'a rehearsal'}:"
            " its servers cannot be seen from here, so nothing was sent. Pass --rebind if the"
            " rollout really moved."
        )
    conn.execute(
        rollouts.update()
        .where(rollouts.c.rollout == wanted.rollout)
        .values(
            endpoint=wanted.endpoint,
            account=wanted.account,
            rehearsal=int(wanted.rehearsal),
            updated_at=now,
        )
    )
    return wanted
