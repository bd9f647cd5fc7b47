"""Which rollout of this ledger sends a name: at most one at a time, where the name lives.

A name is claimed when a rollout plans it (in the plan's own transaction) and kept while the
rollout may send it; it is released when the rollout's server under it is terminated by us, or
the rollout is torn down or forgotten. The claim is a primary key (endpoint, account, region,
name), so two rollouts planning one name at once cannot both hold it, on either backend: the
second waits for the first's commit, then finds the name taken, and plans nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from fleet.states import LIVE

from .rows import insert_new
from .schema import name_claims, rollouts, servers

__all__ = ["claim_names", "release_idle"]

# Names per statement: far under SQLite's and PostgreSQL's limits on bound parameters.
_PER_STATEMENT = 400


def _where(conn: sa.Connection, rollout: str) -> tuple[str, str]:
    """Return the endpoint and account a rollout is bound to ('' for a rollout bound nowhere)."""
    row = conn.execute(
        sa.select(rollouts.c.endpoint, rollouts.c.account).where(rollouts.c.rollout == rollout)
    ).first()
    return ("", "") if row is None else (row.endpoint, row.account)


def claim_names(
    conn: sa.Connection, stamp: str, rollout: str, wanted: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Claim (region, name) pairs for a rollout; return the (name, holder) another rollout holds."""
    endpoint, account = _where(conn, rollout)
    insert = insert_new(conn.dialect.name, name_claims)
    taken: list[tuple[str, str]] = []
    for i in range(0, len(wanted), _PER_STATEMENT):
        part = wanted[i : i + _PER_STATEMENT]
        conn.execute(
            insert,
            [
                {
                    "endpoint": endpoint,
                    "account": account,
                    "region": region,
                    "name": name,
                    "rollout": rollout,
                    "claimed_at": stamp,
                }
                for region, name in part
            ],
        )
        held = conn.execute(
            sa.select(name_claims.c.region, name_claims.c.name, name_claims.c.rollout).where(
                name_claims.c.endpoint == endpoint,
                name_claims.c.account == account,
                name_claims.c.name.in_([name for _, name in part]),
                name_claims.c.rollout != rollout,
            )
        )
        mine = set(part)
        taken += [(r.name, r.rollout) for r in held if (r.region, r.name) in mine]
    return sorted(set(taken))


def release_idle(conn: sa.Connection, rollout: str) -> None:
    """Release every name of a rollout under which it holds no live server (a teardown ended)."""
    live = sa.select(servers.c.name).where(
        servers.c.rollout == rollout, servers.c.state.in_([s.value for s in LIVE])
    )
    conn.execute(
        name_claims.delete().where(
            name_claims.c.rollout == rollout, name_claims.c.name.not_in(live)
        )
    )
