"""Changing a created server to the inventory: in place (a resize), or by replacing it.

Each a compare-and-set on the row, as every state change of the engine's (``outcomes``):

    created as N  -- resized in place -->   created as N, with the inventory's parameters
    created as N  -- replaced -->           planned anew (N kept, role ``replaced``, until its
                                            replacement runs and N is torn down)
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from fleet.spec import ServerSpec
from fleet.states import State

from .model import Role
from .rows import require_one, where_server
from .schema import instances, servers

__all__ = ["begin_replace", "record_resized"]


def record_resized(
    conn: sa.Connection, stamp: str, rollout: str, spec: ServerSpec, instance_no: str
) -> None:
    """Record that a created server now has the inventory's parameters (changed in place)."""
    result = conn.execute(
        servers.update()
        .where(
            where_server(rollout, spec.name),
            servers.c.state == State.CREATED.value,
            servers.c.instance_no == instance_no,
        )
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
    result = conn.execute(
        servers.update()
        .where(
            where_server(rollout, spec.name),
            servers.c.state == State.CREATED.value,
            servers.c.instance_no == instance_no,
        )
        .values(
            state=State.PLANNED.value,
            instance_no=None,
            request_id=None,
            server_status=None,
            run_seconds=None,
            response=None,
            duplicates=0,
            params_hash=spec.params_hash,
            file=spec.file,
            line=spec.line,
            region=spec.region,
            vpc_no=spec.vpc_no,
            error_kind=None,
            error_code=None,
            error_message=None,
            http_status=None,
            updated_at=stamp,
        )
    )
    require_one(conn, result, rollout, spec.name, f"created as {instance_no}")
    conn.execute(
        instances.update()
        .where(instances.c.rollout == rollout, instances.c.instance_no == instance_no)
        .values(role=Role.REPLACED)
    )
