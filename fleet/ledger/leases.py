"""Leases (one run per rollout at a time) and bindings (one endpoint and account per rollout).

A lease is a row: its owner (a random token per run), who that is in words (host, process, flow
run), the holder's process as this host knows it, and an expiry pushed forward by heartbeats, all
on the ledger's clock (the database's). A crashed holder's lease expires; one whose process is
gone from this very host (same host name, boot and PID namespace, and its PID no longer that
process) is taken over at once. Every create is claimed under a check that the lease is held and
live, in the same transaction; every other write checks that it is still held (fencing), so a run
that lost its lease (paused past expiry, then taken over) changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import sqlalchemy as sa

from fleet.errors import BindingError, LeaseHeld, LeaseLost

from .hot import Hot
from .model import Binding, LeaseInfo
from .rows import iso
from .schema import leases, rollouts

__all__ = [
    "acquire",
    "bind",
    "check",
    "fence",
    "process_gone",
    "read_binding",
    "read_lease",
    "release",
    "renew",
    "this_process",
]


def _read(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text().strip()
    return ""


def _started(pid: int) -> str:
    """Return when a process started (clock ticks since boot), or '' if there is no such process."""
    stat = _read(f"/proc/{pid}/stat")
    # The second field is the command in parentheses, which may hold spaces: count from after it.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _namespace() -> str:
    with contextlib.suppress(OSError):
        return os.readlink("/proc/self/ns/pid")
    return ""


def this_process() -> str:
    """Return this process as a lease records it: host, boot, PID namespace, PID, start."""
    pid = os.getpid()
    boot = _read("/proc/sys/kernel/random/boot_id")
    return f"{socket.gethostname()}|{boot}|{_namespace()}|{pid}|{_started(pid)}"


def process_gone(recorded: str | None) -> bool:
    """Whether a lease holder's process is surely gone: it ran on this host and exists no more.

    Only where host name, boot and PID namespace all match is a PID this host's to look at; a
    holder elsewhere (or unknown) is never taken for gone, and waits out its expiry.
    """
    parts = (recorded or "").split("|")
    if len(parts) != 5 or not parts[1] or not parts[2] or not parts[4]:
        return False
    host, boot, namespace, pid, started = parts
    here = this_process().split("|")
    if (host, boot, namespace) != (here[0], here[1], here[2]) or not pid.isdigit():
        return False
    return _started(int(pid)) != started


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
    process = this_process()
    if current is None:
        conn.execute(
            leases.insert().values(
                rollout=rollout,
                owner=owner,
                holder=holder,
                acquired_at=now,
                heartbeat_at=now,
                expires_at=now + ttl,
                process=process,
            )
        )
    elif current.owner == owner or current.expires_at <= now or _gone_here(conn, rollout):
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
                process=process,
            )
        )
    else:
        raise LeaseHeld(rollout, current.holder, iso(current.acquired_at), iso(current.expires_at))
    lease = read_lease(conn, rollout)
    assert lease is not None
    return lease


def _gone_here(conn: sa.Connection, rollout: str) -> bool:
    recorded = conn.execute(
        sa.select(leases.c.process).where(leases.c.rollout == rollout)
    ).scalar_one_or_none()
    return process_gone(recorded)


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
    _check(conn, now, rollout, owner)


def fence(conn: sa.Connection, rollout: str, owner: str) -> None:
    """Raise LeaseLost unless ``owner`` still holds the rollout's lease (live or not yet taken).

    For writes that send nothing (an outcome, a status): a lease past its expiry that no other
    run has taken is still this run's to write under.
    """
    _check(conn, None, rollout, owner)


def _check(conn: sa.Connection, now: float | None, rollout: str, owner: str) -> None:
    transaction = conn.get_transaction()
    checked = conn.info.get("lease_checked")
    if (
        checked is not None
        and checked[0] is transaction
        and checked[1:3] == (rollout, owner)
        and (now is None or checked[3])
    ):
        return
    row = _CHECK.execute(conn, {"l_rollout": rollout}).fetchone()
    if row is None or row[0] != owner:
        who = "nobody" if row is None else row[1]
        raise LeaseLost(f"rollout {rollout!r}: this run no longer holds its lease (now: {who})")
    if now is None:
        if checked is None or checked[0] is not transaction:
            conn.info["lease_checked"] = (transaction, rollout, owner, False)
        return
    if float(row[2]) <= now:
        raise LeaseLost(
            f"rollout {rollout!r}: this run's lease expired at {iso(float(row[2]))} "
            "without a heartbeat"
        )
    # The transaction object itself, not its id: an id can be reused by a later one.
    conn.info["lease_checked"] = (transaction, rollout, owner, True)


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
    where = rollouts.c.rollout == wanted.rollout
    values = {
        "endpoint": wanted.endpoint,
        "account": wanted.account,
        "rehearsal": int(wanted.rehearsal),
        "updated_at": now,
    }
    if current is None:
        conn.execute(rollouts.insert().values(rollout=wanted.rollout, bound_at=now, **values))
        return wanted
    if not current.endpoint:  # its row was made by an engine run on its own: bound now
        conn.execute(rollouts.update().where(where).values(bound_at=now, **values))
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
    conn.execute(rollouts.update().where(where).values(**values))
    return wanted
