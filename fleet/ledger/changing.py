"""Changing a created server to the inventory: in place (a resize), or by replacing it.

Each a compare-and-set on the row, as every state change of the engine's (``outcomes``):

    resizing as N  -- resized in place -->  running as N, with the inventory's parameters
    kept as N      -- replaced -->          planned anew; N deposed (role ``replaced``, with what
                                            it was created with), to be taken down once its
                                            replacement runs (by this run, or any later one)
    deposed N      -- restored -->          N the row's server again (its replacement failed
                                            or was rolled back)
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from fleet.planned import PlannedServer
from fleet.states import KEPT, State

from .model import Role
from .outcomes import life_of
from .rows import planned_as, require_one, where_server
from .schema import instances, servers

__all__ = ["begin_replace", "record_resized", "restore"]

# The name's own state in which its deposed server may become its own again.
_RESTORABLE = frozenset({State.FAILED.value, State.TERMINATED.value, State.GONE.value})


def _kept_as(rollout: str, name: str, instance_no: str) -> sa.ColumnElement[bool]:
    """Select a server's row only while its server is this instance, kept (the compare-and-set)."""
    return sa.and_(
        where_server(rollout, name),
        servers.c.state.in_([s.value for s in KEPT]),
        servers.c.instance_no == instance_no,
    )


def record_resized(
    conn: sa.Connection, stamp: str, rollout: str, spec: PlannedServer, instance_no: str
) -> None:
    """Record that a server being resized runs with the inventory's parameters now."""
    result = conn.execute(
        servers.update()
        .where(
            where_server(rollout, spec.name),
            servers.c.state == State.RESIZING.value,
            servers.c.instance_no == instance_no,
        )
        .values(
            state=State.RUNNING.value,
            params_hash=spec.params_hash,
            sent_params=json.dumps(spec.params, ensure_ascii=False),
            sent_hash=spec.params_hash,
            file=spec.file,
            line=spec.line,
            updated_at=stamp,
        )
    )
    require_one(conn, result, rollout, spec.name, f"resizing as {instance_no}")
    conn.execute(
        instances.update()
        .where(instances.c.rollout == rollout, instances.c.instance_no == instance_no)
        .values(state=State.RUNNING.value, intent=None)
    )


def begin_replace(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    spec: PlannedServer,
    instance_no: str,
    run: str | None = None,
) -> None:
    """Plan a server anew under its name, to replace ``instance_no``, which is deposed.

    The old instance keeps its number, and what it was created with, until its teardown; the
    row is planned with the inventory's parameters, and its attempts go on counting, so the
    new create's marker is never an old one's.
    """
    sent = conn.execute(
        sa.select(servers.c.sent_params).where(where_server(rollout, spec.name))
    ).scalar_one_or_none()
    result = conn.execute(
        servers.update()
        .where(_kept_as(rollout, spec.name, instance_no))
        .values(
            instance_no=None,
            request_id=None,
            server_status=None,
            run_seconds=None,
            response=None,
            duplicates=0,
            **planned_as(spec, stamp),
        )
    )
    require_one(conn, result, rollout, spec.name, f"kept as {instance_no}")
    intent = {"why": "replace", "run": run}
    conn.execute(
        instances.update()
        .where(instances.c.rollout == rollout, instances.c.instance_no == instance_no)
        .values(
            role=Role.REPLACED,
            params=sent,
            state=State.DEPOSED.value,
            intent=json.dumps(intent),
        )
    )


def restore(conn: sa.Connection, stamp: str, rollout: str, instance_no: str) -> bool:
    """Make a deposed server its name's own again (its replacement failed or was rolled back).

    Only while the name's own create failed, or its server ended (rolled back): never while a
    replacement stands (it retires the old one instead) or may be on its way (planned, or in
    flight). Returns whether it was restored.
    """
    old = conn.execute(
        sa.select(instances).where(
            instances.c.rollout == rollout,
            instances.c.instance_no == instance_no,
            instances.c.state == State.DEPOSED.value,
        )
    ).first()
    if old is None:
        return False
    row = conn.execute(
        sa.select(servers.c.state).where(where_server(rollout, old.name))
    ).scalar_one_or_none()
    if row not in _RESTORABLE:
        return False
    life = life_of(old.server_status)
    conn.execute(
        servers.update()
        .where(where_server(rollout, old.name))
        .values(
            state=life.value,
            instance_no=instance_no,
            terminated_at=None,
            server_status=old.server_status,
            sent_params=old.params,
            sent_hash=None,
            error_kind=None,
            error_code=None,
            error_message=None,
            http_status=None,
            updated_at=stamp,
        )
    )
    conn.execute(
        instances.update()
        .where(instances.c.rollout == rollout, instances.c.instance_no == instance_no)
        .values(role=Role.PRIMARY, state=life.value, intent=None)
    )
    return True
