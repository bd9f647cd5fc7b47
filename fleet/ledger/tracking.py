"""What happens to servers after their creation: statuses seen, problems, and teardown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from fleet.states import ErrorKind, ServerStatus, TeardownState

from .rows import where_server
from .schema import instances, servers

__all__ = ["note_error", "set_status", "set_teardown"]


def set_status(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    updates: Iterable[tuple[str, ServerStatus, float | None]],
) -> None:
    """Record servers' NCP status (name, status, seconds from created to ready, or None)."""
    rows = [
        {"b_name": name, "b_status": status.value, "b_secs": secs} for name, status, secs in updates
    ]
    if not rows:
        return
    conn.execute(
        servers.update()
        .where(servers.c.rollout == rollout, servers.c.name == sa.bindparam("b_name"))
        .values(
            server_status=sa.bindparam("b_status"),
            run_seconds=sa.func.coalesce(sa.bindparam("b_secs"), servers.c.run_seconds),
            updated_at=stamp,
        ),
        rows,
    )


def note_error(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    name: str,
    kind: ErrorKind,
    message: str,
    code: str | None = None,
) -> None:
    """Record a problem with a server that exists (a failure status, a timeout, a refusal)."""
    conn.execute(
        servers.update()
        .where(where_server(rollout, name))
        .values(error_kind=kind.value, error_code=code, error_message=message, updated_at=stamp)
    )


def set_teardown(
    conn: sa.Connection,
    stamp: str,
    rollout: str,
    instance_nos: Sequence[str],
    state: TeardownState,
    *,
    message: str | None = None,
) -> None:
    """Record how far the teardown of these instances has come, and of the servers they are."""
    if not instance_nos:
        return
    terminated = stamp if state == TeardownState.TERMINATED else None
    conn.execute(
        instances.update()
        .where(instances.c.rollout == rollout, instances.c.instance_no.in_(list(instance_nos)))
        .values(
            teardown=state.value,
            terminated_at=sa.func.coalesce(terminated, instances.c.terminated_at),
        )
    )
    names = [
        row.name
        for row in conn.execute(
            sa.select(instances.c.name)
            .where(instances.c.rollout == rollout, instances.c.instance_no.in_(list(instance_nos)))
            .distinct()
        )
    ]
    for name in names:
        # A server is terminated when every instance under its name is; until then its row shows
        # the least advanced state among them.
        states = {
            row.teardown
            for row in conn.execute(
                sa.select(instances.c.teardown).where(
                    instances.c.rollout == rollout, instances.c.name == name
                )
            )
        }
        shown = state if state != TeardownState.TERMINATED or states == {state.value} else None
        if shown is None:
            continue
        conn.execute(
            servers.update()
            .where(where_server(rollout, name))
            .values(
                teardown=shown.value,
                terminated_at=sa.func.coalesce(terminated, servers.c.terminated_at),
                error_message=sa.func.coalesce(message, servers.c.error_message),
                updated_at=stamp,
            )
        )
