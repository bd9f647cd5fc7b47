"""Problems with servers that exist: a failure status, a timeout, a refusal."""

from __future__ import annotations

import sqlalchemy as sa

from fleet.errors import ErrorKind

from .rows import where_server
from .schema import servers

__all__ = ["note_error"]


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
