"""What a rollout's creates made beside its servers (public IPs, extra disks), until returned.

Written down before a teardown stops the servers: once a server is gone NCP no longer ties its
public IP to it, so a teardown interrupted there finds what is still billed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from .model import Extra
from .schema import extras

__all__ = ["keep", "returned", "unreturned"]


def keep(conn: sa.Connection, stamp: str, rollout: str, items: Sequence[Extra]) -> None:
    """Write down extras to return; those already written down are left as they are."""
    known = {
        (row.kind, row.number)
        for row in conn.execute(
            sa.select(extras.c.kind, extras.c.number).where(extras.c.rollout == rollout)
        )
    }
    fresh = [i for i in items if (i.kind, i.number) not in known]
    if fresh:
        conn.execute(
            extras.insert(), [{"rollout": rollout, **asdict(i), "found_at": stamp} for i in fresh]
        )


def unreturned(conn: sa.Connection, rollout: str) -> list[Extra]:
    """Return the rollout's extras not yet returned, by server, kind and number."""
    rows = conn.execute(
        sa.select(extras)
        .where(extras.c.rollout == rollout, extras.c.returned_at.is_(None))
        .order_by(extras.c.server, extras.c.kind, extras.c.number)
    )
    return [Extra(r.kind, r.number, r.region, r.server, r.server_no, r.label) for r in rows]


def returned(conn: sa.Connection, stamp: str, rollout: str, items: Sequence[Extra]) -> None:
    """Record that these were returned (or went with their server)."""
    for item in items:
        conn.execute(
            extras.update()
            .where(
                extras.c.rollout == rollout,
                extras.c.kind == item.kind,
                extras.c.number == item.number,
            )
            .values(returned_at=stamp)
        )
