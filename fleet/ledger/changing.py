"""Changing a created server to the inventory: in place (a resize), or by replacing it.

Each a compare-and-set on the row, as every state change of the engine's (``outcomes``):

    created as N  -- resized in place -->   created as N, with the inventory's parameters
    created as N  -- replaced -->           planned anew (N kept, role ``replaced``, with what
                                            it was created with, until its replacement runs
                                            and N is torn down)
    replaced N    -- restored -->           created as N again (its replacement was rolled back)
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from fleet.spec import ServerSpec
from fleet.states import State

from .model import Role
from .rows import planned_as, require_one, where_server
from .schema import instances, servers

__all__ = ["begin_replace", "record_resized", "restore_replaced"]


def _created_as(rollout: str, name: str, instance_no: str) -> sa.ColumnElement[bool]:
    """Select a server's row only while it is created as this instance (the compare-and-set)."""
    return sa.and_(
        where_server(rollout, name),
        servers.c.state == State.CREATED.value,
        servers.c.instance_no == instance_no,
    )


def record_resized(
    conn: sa.Connection, stamp: str, rollout: str, spec: ServerSpec, instance_no: str
) -> None:
    """Record that a created server now has the inventory's parameters (changed in place)."""
    result = conn.execute(
        servers.update()
        .where(_created_as(rollout, spec.name, instance_no))
        .values(
            params_hash=spec.params_hash,
            sent_params=json.dumps(spec.params, ensure_ascii=False),
            sent_hash=spec.params_hash,
            file=spec.file,
            line=spec.line,
            updated_at=stamp,
        )
    )
    require_one(conn, result, rollout, spec.name, f"created as {instance_no}")


def begin_replace(
    conn: sa.Connection, stamp: str, rollout: str, spec: ServerSpec, instance_no: str
) -> None:
    """Plan a server anew under its name, to replace ``instance_no``, which stays recorded.

    The old instance keeps its number in the history (role ``replaced``) until its teardown;
    the row is planned with the inventory's parameters, and its attempts go on counting, so the
    new create's marker is never an old one's.
    """
    sent = conn.execute(
        sa.select(servers.c.sent_params).where(where_server(rollout, spec.name))
    ).scalar_one_or_none()
    result = conn.execute(
        servers.update()
        .where(_created_as(rollout, spec.name, instance_no))
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
    require_one(conn, result, rollout, spec.name, f"created as {instance_no}")
    conn.execute(
        instances.update()
        .where(instances.c.rollout == rollout, instances.c.instance_no == instance_no)
        .values(role=Role.REPLACED, params=sent)
    )


def restore_replaced(conn: sa.Connection, stamp: str, rollout: str) -> list[str]:
    """Give rows whose replacement is gone (rolled back) their old instance; return the names.

    Only an old instance not taken down yet; a row whose replacement stands is left as it is.
    """
    restored: list[str] = []
    kept = conn.execute(
        sa.select(instances.c.name, instances.c.instance_no, instances.c.params).where(
            instances.c.rollout == rollout,
            instances.c.role == Role.REPLACED,
            instances.c.teardown.is_(None),
        )
    ).all()
    for name, number, params in kept:
        row = conn.execute(
            sa.select(servers.c.state, servers.c.teardown).where(where_server(rollout, name))
        ).first()
        if row is None or (row.state == State.CREATED.value and row.teardown is None):
            continue  # its replacement stands: the old one is retired, not restored
        conn.execute(
            servers.update()
            .where(where_server(rollout, name))
            .values(
                state=State.CREATED.value,
                instance_no=number,
                teardown=None,
                terminated_at=None,
                server_status=None,
                sent_params=params,
                sent_hash=None,
                updated_at=stamp,
            )
        )
        conn.execute(
            instances.update()
            .where(instances.c.rollout == rollout, instances.c.instance_no == number)
            .values(role=Role.PRIMARY)
        )
        restored.append(name)
    return restored
