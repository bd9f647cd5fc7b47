"""The ledger's hottest statements: built once per database, run with their values bound.

A claim and a create's record run for every server. Each is built once per dialect, with bound
parameters, and run through SQLAlchemy's public ``Connection.execute``: its compiled cache
compiles it once, and its types convert the values as for any other statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

__all__ = ["Hot"]


class Hot:
    """A statement built per dialect name once, then executed with each call's values."""

    def __init__(self, build: Callable[[str], sa.Executable]) -> None:
        self._build = build
        self._built: dict[str, sa.Executable] = {}

    def execute(
        self, conn: sa.Connection, params: Mapping[str, Any]
    ) -> sa.CursorResult[*tuple[Any, ...]]:
        """Run in ``conn``'s transaction; return its result (rowcount, fetchall, fetchone)."""
        name = conn.dialect.name
        statement = self._built.get(name)
        if statement is None:
            statement = self._built[name] = self._build(name)
        return conn.execute(statement, params)
