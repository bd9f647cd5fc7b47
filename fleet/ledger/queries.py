"""Reading the ledger: records, instances, counts, and the list of rollouts."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from fleet.states import State

from .model import Instance, Record, RolloutCounts
from .rows import RECORD_COLUMNS, to_instance, to_record, where_server
from .schema import instances, servers

__all__ = ["counts", "instances_of", "names_of", "record", "records", "rollout_names"]


# Names per IN list: far under SQLite's and PostgreSQL's limits on bound parameters.
_NAMES_PER_READ = 500


def records(conn: sa.Connection, rollout: str, names: Sequence[str] | None = None) -> list[Record]:
    """Return a rollout's servers (or only these ``names``), in inventory order."""
    query = sa.select(*RECORD_COLUMNS).where(servers.c.rollout == rollout)
    found: Iterable[sa.Row[Any]]
    if names is None:
        found = conn.execute(query)
    else:
        found = itertools.chain.from_iterable(
            conn.execute(query.where(servers.c.name.in_(names[i : i + _NAMES_PER_READ])))
            for i in range(0, len(names), _NAMES_PER_READ)
        )
    out = [to_record(row) for row in found]
    out.sort(key=lambda r: (r.file, r.line, r.name))
    return out


def names_of(conn: sa.Connection, rollout: str) -> list[str]:
    """Return a rollout's server names alone, in inventory order: to read its rows page by page."""
    query = (
        sa.select(servers.c.name)
        .where(servers.c.rollout == rollout)
        .order_by(servers.c.file, servers.c.line, servers.c.name)
    )
    return list(conn.execute(query).scalars())


def record(conn: sa.Connection, rollout: str, name: str) -> Record | None:
    """Return one server's row, if the rollout has it."""
    row = conn.execute(sa.select(*RECORD_COLUMNS).where(where_server(rollout, name))).first()
    return None if row is None else to_record(row)


def instances_of(
    conn: sa.Connection, rollout: str, names: Sequence[str] | None = None
) -> list[Instance]:
    """Return every NCP instance the rollout owns (or only these ``names``'), by name, number."""
    query = sa.select(instances).where(instances.c.rollout == rollout)
    if names is None:
        rows: Iterable[sa.Row[Any]] = conn.execute(query)
    else:
        rows = itertools.chain.from_iterable(
            conn.execute(query.where(instances.c.name.in_(names[i : i + _NAMES_PER_READ])))
            for i in range(0, len(names), _NAMES_PER_READ)
        )
    out = [to_instance(row) for row in rows]
    out.sort(key=lambda i: (i.name, i.instance_no))
    return out


def counts(conn: sa.Connection, rollout: str) -> RolloutCounts:
    """Return a rollout's servers per state (each name once), and its deposed and duplicates."""
    per_state: Counter[str] = Counter()
    duplicates = 0
    rows = conn.execute(
        sa.select(servers.c.state, servers.c.duplicates, sa.func.count())
        .where(servers.c.rollout == rollout)
        .group_by(servers.c.state, servers.c.duplicates)
    )
    for state, dups, n in rows:
        per_state[state] += n
        duplicates += n * (dups or 0) if State(state).live else 0
    deposed = conn.execute(
        sa.select(sa.func.count()).where(
            instances.c.rollout == rollout, instances.c.state == State.DEPOSED.value
        )
    ).scalar_one()
    return RolloutCounts(
        **{s.value: per_state[s.value] for s in State if s != State.DEPOSED},
        deposed=int(deposed),
        duplicates=duplicates,
    )


def rollout_names(conn: sa.Connection) -> list[str]:
    """Return the names of every rollout in the ledger."""
    return [
        row.rollout
        for row in conn.execute(sa.select(servers.c.rollout).distinct().order_by(servers.c.rollout))
    ]
