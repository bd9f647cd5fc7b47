"""A recorded server's life after its create: what reads show, intents, and its end.

Every server the rollout recorded (an instance) has one state (``fleet.states.State``); a name's
row holds its primary instance's, written in the same statement group, so a report reads one
place. Each move is a compare-and-set against ``fleet.states.MOVES``:

    created, stopped, starting          -- seen RUN -->         running
    created, running                    -- seen NSTOP -->       stopped   (out of band)
    kept                                -- intent -->           starting, resizing, deposed
    live                                -- intent -->           terminating (teardown, prune ...)
    terminating                         -- gone after our terminate -->  terminated
    live                                -- gone, not by us -->  gone

An intent is written before the change's first call, with what it needs to be finished (why,
which run, the parameters a resize goes to): any later run that finds it finishes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from fleet.states import INTENTS, MOVES, Operation, ServerStatus, State

from .model import Instance
from .rows import to_instance
from .schema import instances, name_claims, servers

__all__ = ["Observed", "accepted_terminate", "intents", "missed", "move", "observe"]


@dataclass(frozen=True, slots=True)
class Observed:
    """One recorded server as a read of NCP's showed it."""

    instance_no: str
    status: ServerStatus
    operation: Operation = Operation.NULL
    run_seconds: float | None = None  # from its create to RUN, when first seen ready


def _life(seen: Observed) -> State | None:
    """Return the state a read moves a server to (None: it says nothing of its life)."""
    if seen.operation != Operation.NULL:
        return None
    if seen.status == ServerStatus.RUN:
        return State.RUNNING
    if seen.status == ServerStatus.NSTOP:
        return State.STOPPED
    return None


# A read moves a server only out of these: an intent is moved by the change that wrote it.
_BY_READS = frozenset({State.CREATED, State.RUNNING, State.STOPPED, State.STARTING})


def _moved(column: sa.ColumnElement[Any], to: State | None) -> sa.ColumnElement[Any]:
    """Return the new state of a row a read showed: ``to`` if it may move there, else as it is."""
    if to is None:
        return column
    # The states as SQL literals (our own enum's values): a statement run for many rows at once
    # (executemany) cannot take an expanding IN parameter.
    allowed: list[sa.ColumnElement[Any]] = [
        sa.literal_column(f"'{s.value}'") for s in sorted(MOVES[to] & _BY_READS)
    ]
    return sa.case((column.in_(allowed), sa.literal_column(f"'{to.value}'")), else_=column)


def observe(conn: sa.Connection, stamp: str, rollout: str, seen: Iterable[Observed]) -> None:
    """Record what reads showed of recorded servers: status, first seen, and the life it moves."""
    groups: dict[State | None, list[dict[str, Any]]] = {}
    for s in seen:
        groups.setdefault(_life(s), []).append(
            {"b_no": s.instance_no, "b_status": s.status.value, "b_secs": s.run_seconds}
        )
    b = sa.bindparam
    for to, rows in groups.items():
        conn.execute(
            instances.update()
            .where(instances.c.rollout == rollout, instances.c.instance_no == b("b_no"))
            .values(
                server_status=b("b_status"),
                seen_at=sa.func.coalesce(instances.c.seen_at, stamp),
                gone_reads=0,
                state=_moved(instances.c.state, to),
            ),
            rows,
        )
        # The name's row, where this is its primary instance: the same status, the same life.
        conn.execute(
            servers.update()
            .where(servers.c.rollout == rollout, servers.c.instance_no == b("b_no"))
            .values(
                server_status=b("b_status"),
                run_seconds=sa.func.coalesce(b("b_secs"), servers.c.run_seconds),
                state=_moved(servers.c.state, to),
                updated_at=stamp,
            ),
            rows,
        )


def move(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    numbers: Sequence[str],
    to: State,
    *,
    intent: Mapping[str, Any] | None = None,
    message: str | None = None,
) -> list[str]:
    """Move recorded servers to ``to`` where ``MOVES`` allows it; return the numbers moved.

    A server in another state is left as it is (another run moved it first, or it ended). An
    ``intent`` (a dict: why, run, target parameters) is kept with the servers moved to one, and
    dropped once they leave it; ``message`` is noted on their rows.
    """
    if not numbers:
        return []
    allowed = [s.value for s in MOVES[to]]
    where = sa.and_(
        instances.c.rollout == rollout,
        instances.c.instance_no.in_(list(numbers)),
        instances.c.state.in_(allowed),
    )
    found = conn.execute(sa.select(instances.c.instance_no).where(where))
    moved = [row.instance_no for row in found]
    if not moved:
        return []
    values: dict[str, Any] = {
        "state": to.value,
        "intent": json.dumps(dict(intent), ensure_ascii=False) if intent else None,
    }
    if to.ended:
        values["terminated_at"] = stamp
    these = sa.and_(instances.c.rollout == rollout, instances.c.instance_no.in_(moved))
    conn.execute(instances.update().where(these).values(values))
    row_values: dict[str, Any] = {"state": to.value, "updated_at": stamp}
    if to.ended:
        row_values["terminated_at"] = stamp
    if message is not None:
        row_values["error_message"] = message
    conn.execute(
        servers.update()
        .where(
            servers.c.rollout == rollout,
            servers.c.instance_no.in_(moved),
            servers.c.state.in_(allowed),
        )
        .values(row_values)
    )
    if to == State.TERMINATED:
        _release_names(conn, rollout, moved)
    return moved


def _release_names(conn: sa.Connection, rollout: str, numbers: Sequence[str]) -> None:
    """Give up the names whose server this rollout took down: another rollout may send them."""
    names = [
        row.name
        for row in conn.execute(
            sa.select(servers.c.name).where(
                servers.c.rollout == rollout,
                servers.c.instance_no.in_(list(numbers)),
                servers.c.state == State.TERMINATED.value,
            )
        )
    ]
    if names:
        conn.execute(
            name_claims.delete().where(
                name_claims.c.rollout == rollout, name_claims.c.name.in_(names)
            )
        )


def accepted_terminate(
    conn: sa.Connection, stamp: str, rollout: str, numbers: Sequence[str]
) -> None:
    """Record that NCP accepted our terminate of these servers: once unlisted, they are gone."""
    if numbers:
        conn.execute(
            instances.update()
            .where(instances.c.rollout == rollout, instances.c.instance_no.in_(list(numbers)))
            .values(terminate_at=sa.func.coalesce(instances.c.terminate_at, stamp))
        )


def missed(conn: sa.Connection, rollout: str, numbers: Sequence[str]) -> None:
    """Count a read that did not show these servers (the rule for gone counts reads in a row)."""
    if numbers:
        conn.execute(
            instances.update()
            .where(instances.c.rollout == rollout, instances.c.instance_no.in_(list(numbers)))
            .values(gone_reads=instances.c.gone_reads + 1)
        )


def intents(conn: sa.Connection, rollout: str) -> list[Instance]:
    """Return the rollout's servers with a change under way (an intent a run must finish)."""
    rows = conn.execute(
        sa.select(instances).where(
            instances.c.rollout == rollout,
            instances.c.state.in_([s.value for s in INTENTS]),
        )
    )
    return sorted((to_instance(r) for r in rows), key=lambda i: (i.name, i.instance_no))
