"""The engine's state changes, each a compare-and-set on the server's row.

    planned, or failed unprocessed
        -- claim (or claim_many) -->  in_flight   (committed before the create goes out)
    in_flight
        -- restamp -->          in_flight   (its create goes out later than the claim promised)
        -- never sent -->       as it was   (unclaim: the run stopped first)
        -- answer or found -->  created     (every server under the name kept; running or
                                            stopped at once when a read found it so)
        -- refused -->          failed
        -- ambiguous -->        in_flight   (unsettled, looked up)
        -- surely absent -->    planned     (sent again)

A change that finds the row in another state than the one it expects changes nothing and raises
LedgerConflict: zero rows changed is an error, never silence. A claim (and a restamp) also
checks, in the same transaction, that this run still holds the rollout's lease.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from fleet.errors import ErrorKind, LedgerConflict, NcpError
from fleet.planned import PlannedServer
from fleet.states import ServerStatus, State

from . import leases
from .hot import Hot
from .model import Role
from .rows import NO_ERROR, Changed, insert_new, planned_as, require_one, states_in, where_server
from .schema import instances, servers

__all__ = [
    "Found",
    "claim",
    "claim_many",
    "clear_absent",
    "give_up",
    "note_ambiguous",
    "note_lookup_failed",
    "record_created",
    "record_failed",
    "release_absent",
    "resend",
    "restamp",
    "unclaim",
]

_SENDABLE = sa.or_(
    servers.c.state == State.PLANNED.value,
    sa.and_(
        servers.c.state == State.FAILED.value,
        # Not IN (...): its expanding parameter would be compiled anew for every execution.
        sa.or_(
            servers.c.error_kind == ErrorKind.RETRYABLE.value,
            servers.c.error_kind == ErrorKind.THROTTLED.value,
        ),
    ),
)
_UNSETTLED = sa.or_(
    servers.c.state == State.IN_FLIGHT.value,
    sa.and_(
        servers.c.state == State.FAILED.value,
        servers.c.error_kind == ErrorKind.AMBIGUOUS.value,
        servers.c.instance_no.is_(None),
    ),
)


# The hot statements, built once with bound parameters (hot.py): these run for every server, and
# building a statement anew each time would cost more than the database's work.
_B = sa.bindparam
_THIS_ROW = sa.and_(servers.c.rollout == _B("b_rollout"), servers.c.name == _B("b_name"))
_CLAIM = Hot(
    lambda _: (
        servers.update()
        .where(_THIS_ROW, servers.c.params_hash == _B("b_hash"), _SENDABLE)
        .values(
            state=State.IN_FLIGHT.value,
            attempts=servers.c.attempts + 1,
            sent_at=_B("b_stamp"),
            first_sent_at=sa.func.coalesce(servers.c.first_sent_at, _B("b_stamp")),
            sent_params=_B("b_params"),
            sent_hash=_B("b_hash"),
            sent_run=_B("b_run"),
            sent_ncp=_B("b_ncp"),
            updated_at=_B("b_stamp"),
        )
        .returning(servers.c.attempts)
    )
)


def _created(condition: sa.ColumnElement[bool]) -> sa.Update:
    return (
        servers.update()
        .where(_THIS_ROW, condition)
        .values(
            state=_B("b_state"),
            instance_no=_B("b_no"),
            request_id=sa.func.coalesce(_B("b_request"), servers.c.request_id),
            response=_B("b_response"),
            server_status=_B("b_status"),
            adopted=_B("b_adopted"),
            region=_B("b_region"),
            vpc_no=_B("b_vpc"),
            duplicates=_B("b_duplicates"),
            created_at=_B("b_stamp"),
            updated_at=_B("b_stamp"),
            **NO_ERROR,
        )
    )


_CREATED = Hot(lambda _: _created(_UNSETTLED))
_INSTANCE_KEYS = (
    "rollout", "instance_no", "name", "region", "vpc_no", "role", "origin", "create_date",
    "server_status", "state", "raw", "found_at", "seen_at", "run",
)  # fmt: skip
_INSERT_INSTANCE = Hot(
    lambda dialect: insert_new(dialect, instances).values(
        {key: _B(f"i_{key}") for key in _INSTANCE_KEYS}
    )
)


def life_of(status: str | None) -> State:
    """Return the state a server starts its life in, by the status NCP gave with it."""
    if status == ServerStatus.RUN:
        return State.RUNNING
    if status == ServerStatus.NSTOP:
        return State.STOPPED
    return State.CREATED


@dataclass(frozen=True, slots=True)
class Found:
    """One NCP server instance to record for a row: what NCP said of it."""

    instance_no: str
    region: str
    vpc_no: str
    status: str | None
    create_date: str | None
    raw: Mapping[str, Any]
    run: str | None = None  # the run its create marker names, if it carries ours


def claim(
    conn: sa.Connection,
    now: float,
    stamp: str,
    rollout: str,
    spec: PlannedServer,
    owner: str,
    run: str | None = None,
    ncp: float | None = None,
) -> int:
    """Mark a server in flight before its create goes out; return its attempt number.

    Only a server that may be sent, with these parameters, under this run's live lease.
    ``run`` is the run tag its create marker carries; ``ncp`` NCP's clock now (its answers'
    Date), by which a later run judges how long ago the create left.
    """
    leases.check(conn, now, rollout, owner)
    return _claim_row(conn, stamp, rollout, spec, run, ncp)


def claim_many(
    conn: sa.Connection,
    now: float,
    stamp: str,
    rollout: str,
    specs: Sequence[PlannedServer],
    owner: str,
    run: str | None = None,
    ncp: float | None = None,
) -> list[int | LedgerConflict]:
    """Claim several servers at once, ahead of their creates: each one's attempt, or its conflict.

    One lease check and one commit for them all. A server that may not be sent is left as it is,
    its conflict returned in its place: the others are claimed all the same.
    """
    leases.check(conn, now, rollout, owner)
    claimed: list[int | LedgerConflict] = []
    for spec in specs:
        try:
            claimed.append(_claim_row(conn, stamp, rollout, spec, run, ncp))
        except LedgerConflict as exc:
            claimed.append(exc)
    return claimed


def _claim_row(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    spec: PlannedServer,
    run: str | None,
    ncp: float | None,
) -> int:
    cursor = _CLAIM.execute(
        conn,
        {
            "b_rollout": rollout,
            "b_name": spec.name,
            "b_hash": spec.params_hash,
            "b_stamp": stamp,
            "b_params": json.dumps(spec.params, ensure_ascii=False),
            "b_run": run,
            "b_ncp": ncp,
        },
    )
    attempts = [row[0] for row in cursor.fetchall()]
    if len(attempts) != 1:
        require_one(conn, cursor, rollout, spec.name, "planned (with these parameters)")
    return int(attempts[0])


def restamp(
    conn: sa.Connection,
    now: float,
    stamp: str,
    rollout: str,
    name: str,
    attempt: int,
    owner: str,
    ncp: float | None = None,
) -> None:
    """Move a claim's send time to now, under the lease: its create goes out later than promised.

    A claim promises its create leaves within ``ownership.CLAIM_HORIZON`` of its stamp; one that
    waited longer (the limiter slowed down) is stamped again before it goes.
    """
    leases.check(conn, now, rollout, owner)
    result = conn.execute(
        servers.update()
        .where(_this_claim(rollout, name, attempt))
        .values(sent_at=stamp, sent_ncp=ncp, updated_at=stamp)
    )
    require_one(conn, result, rollout, name, f"in flight at attempt {attempt}")


def unclaim(conn: sa.Connection, stamp: str, rollout: str, name: str, attempt: int) -> None:
    """Undo a claim whose create never went out: the row is sendable again, as it was before.

    A claim from ``failed`` (not processed) kept the error, so the error says where it goes back.
    """
    result = conn.execute(
        servers.update()
        .where(_this_claim(rollout, name, attempt))
        .values(
            state=sa.case(
                (servers.c.error_kind.is_(None), State.PLANNED.value), else_=State.FAILED.value
            ),
            attempts=servers.c.attempts - 1,
            first_sent_at=sa.case((servers.c.attempts == 1, None), else_=servers.c.first_sent_at),
            updated_at=stamp,
        )
    )
    require_one(conn, result, rollout, name, f"in flight at attempt {attempt}")


def _this_claim(rollout: str, name: str, attempt: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        where_server(rollout, name),
        servers.c.state == State.IN_FLIGHT.value,
        servers.c.attempts == attempt,
    )


def resend(
    conn: sa.Connection,
    now: float,
    stamp: str,
    rollout: str,
    name: str,
    attempt: int,
    owner: str,
    ncp: float | None = None,
) -> int:
    """Record that an in-flight create is sent again (NCP did not process the last one).

    The window before 'not listed' can be trusted runs from the last send, so every send is
    written before it goes out, under the lease, and counted.
    """
    leases.check(conn, now, rollout, owner)
    result = conn.execute(
        servers.update()
        .where(_this_claim(rollout, name, attempt))
        .values(attempts=servers.c.attempts + 1, sent_at=stamp, sent_ncp=ncp, updated_at=stamp)
        .returning(servers.c.attempts)
    )
    attempts = result.scalars().all()
    if len(attempts) != 1:
        require_one(conn, result, rollout, name, f"in flight at attempt {attempt}")
    return int(attempts[0])


def _add_instance(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    name: str,
    found: Found,
    role: str,
    origin: str,
    run: str | None,
) -> None:
    # An instance known already (found again by a later look-up) is kept as it was.
    _INSERT_INSTANCE.execute(
        conn,
        {
            "i_rollout": rollout,
            "i_instance_no": found.instance_no,
            "i_name": name,
            "i_region": found.region,
            "i_vpc_no": found.vpc_no,
            "i_role": role,
            "i_origin": origin,
            "i_create_date": found.create_date,
            "i_server_status": found.status,
            "i_state": life_of(found.status).value,
            "i_raw": json.dumps(dict(found.raw), ensure_ascii=False),
            "i_found_at": stamp,
            # A create's answer is not a listing: only a read that showed it makes it listed.
            "i_seen_at": None if origin == "answer" else stamp,
            "i_run": found.run or run,
        },
    )


def record_created(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    name: str,
    servers_found: Sequence[Found],
    *,
    request_id: str | None,
    origin: str,
    from_states: Sequence[State] = (State.IN_FLIGHT,),
    run: str | None = None,
) -> None:
    """Record the server(s) a create made or a look-up found; the oldest is the server's own.

    Several servers under one name are all kept (the others as duplicates, flagged on the row),
    so none is lost from view. If the row was settled meanwhile with another number, this one is
    kept as a duplicate rather than dropped.
    """
    ordered = sorted(servers_found, key=lambda f: (len(f.instance_no), f.instance_no))
    primary = ordered[0]
    response = dict(primary.raw)
    if len(ordered) > 1:
        response["fleetSameName"] = [f.instance_no for f in ordered]
    values = {
        "b_rollout": rollout,
        "b_name": name,
        "b_no": primary.instance_no,
        "b_request": request_id,
        "b_response": json.dumps(response, ensure_ascii=False),
        "b_status": primary.status,
        "b_state": life_of(primary.status).value,
        "b_adopted": int(origin == "adopted"),
        "b_region": primary.region,
        "b_vpc": primary.vpc_no,
        "b_duplicates": len(ordered) - 1,
        "b_stamp": stamp,
    }
    if tuple(from_states) == (State.IN_FLIGHT,):
        result: Changed = _CREATED.execute(conn, values)
    else:
        result = conn.execute(_created(states_in(from_states)), values)
    if result.rowcount != 1:
        _keep_late(conn, stamp, rollout, name, ordered, origin, result, run)
        return
    for index, found in enumerate(ordered):
        role = Role.PRIMARY if index == 0 else Role.DUPLICATE
        _add_instance(conn, stamp, rollout, name, found, role, origin, run)


def _keep_late(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    name: str,
    ordered: Sequence[Found],
    origin: str,
    result: Changed,
    run: str | None,
) -> None:
    """Keep numbers found for a row settled meanwhile as its duplicates; else it is a conflict."""
    row = conn.execute(
        sa.select(servers.c.state, servers.c.instance_no).where(where_server(rollout, name))
    ).first()
    if row is None or not State(row.state).kept:
        require_one(conn, result, rollout, name, "in flight")
        return
    extra = [f for f in ordered if f.instance_no != row.instance_no]
    for found in extra:
        _add_instance(conn, stamp, rollout, name, found, Role.DUPLICATE, origin, run)
    if extra:
        conn.execute(
            servers.update()
            .where(where_server(rollout, name))
            .values(duplicates=servers.c.duplicates + len(extra), updated_at=stamp)
        )


def _error_values(error: NcpError, kind: ErrorKind | None = None) -> dict[str, Any]:
    return {
        "error_kind": (kind or ErrorKind(error.kind.value)).value,
        "error_code": error.code,
        "error_message": error.message,
        "http_status": error.status,
        "request_id": sa.func.coalesce(error.request_id, servers.c.request_id),
    }


def record_failed(
    conn: sa.Connection, stamp: str, rollout: str, name: str, error: NcpError
) -> None:
    """Record that NCP refused a server's create (or that retries of it ran out).

    Or that a create surely made nothing and the name is someone else's: the row may be any
    unsettled one then, a failed ambiguous one included.
    """
    result = conn.execute(
        servers.update()
        .where(where_server(rollout, name), _UNSETTLED)
        .values(state=State.FAILED.value, updated_at=stamp, **_error_values(error))
    )
    require_one(conn, result, rollout, name, "in flight")


def note_ambiguous(
    conn: sa.Connection, stamp: str, rollout: str, name: str, error: NcpError
) -> None:
    """Record that a create's outcome is unknown: the server stays in flight, to be looked up."""
    result = conn.execute(
        servers.update()
        .where(where_server(rollout, name), servers.c.state == State.IN_FLIGHT.value)
        .values(
            ambiguous_sends=servers.c.ambiguous_sends + 1,
            updated_at=stamp,
            **_error_values(error, ErrorKind.AMBIGUOUS),
        )
    )
    require_one(conn, result, rollout, name, "in flight")


def note_lookup_failed(
    conn: sa.Connection, stamp: str, rollout: str, name: str, error: NcpError
) -> None:
    """Record why an unsettled server could not be looked up (it stays unsettled)."""
    conn.execute(
        servers.update()
        .where(where_server(rollout, name), _UNSETTLED)
        .values(
            updated_at=stamp,
            error_message=f"look-up failed: {error.message}",
            error_code=error.code,
            http_status=error.status,
        )
    )


def release_absent(
    conn: sa.Connection, stamp: str, rollout: str, spec: PlannedServer, attempt: int
) -> None:
    """Record that a server surely does not exist: planned again, with the inventory's parameters.

    ``attempt`` must still be the row's: if another run sent it again meanwhile, the absence seen
    here says nothing about that newer create, and nothing is changed.
    """
    result = conn.execute(
        servers.update()
        .where(where_server(rollout, spec.name), _UNSETTLED, servers.c.attempts == attempt)
        .values(**planned_as(spec, stamp))
    )
    require_one(conn, result, rollout, spec.name, f"unsettled after attempt {attempt}")


def clear_absent(conn: sa.Connection, stamp: str, rollout: str, name: str, attempt: int) -> None:
    """Record that a create surely made nothing, without an inventory: planned again, as it was.

    A teardown settles what an earlier run left in flight; nothing to take, nothing to resend.
    """
    result = conn.execute(
        servers.update()
        .where(where_server(rollout, name), _UNSETTLED, servers.c.attempts == attempt)
        .values(state=State.PLANNED.value, updated_at=stamp, **NO_ERROR)
    )
    require_one(conn, result, rollout, name, f"unsettled after attempt {attempt}")


def give_up(
    conn: sa.Connection, stamp: str, rollout: str, name: str, attempt: int, message: str
) -> None:
    """Record that every create of a server was ambiguous and none was found: failed, ambiguous."""
    result = conn.execute(
        servers.update()
        .where(where_server(rollout, name), _UNSETTLED, servers.c.attempts == attempt)
        .values(
            state=State.FAILED.value,
            error_kind=ErrorKind.AMBIGUOUS.value,
            error_message=message,
            updated_at=stamp,
        )
    )
    if result.rowcount != 1:
        raise LedgerConflict(f"{rollout}/{name}: expected unsettled after attempt {attempt}")
