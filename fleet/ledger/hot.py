"""The ledger's hottest statements: compiled once per database, run on the driver's own cursor.

A claim and a create's record run for every server. Through SQLAlchemy's execute() each
statement cost about 0.1 ms of CPU here (events, the compiled cache, result set-up), several
times the database's own work; compiled once and handed to the driver's cursor, the same SQL in
the same transaction costs what the driver costs. Only statements of plain columns go this way
(no type processing is skipped: ``_compile`` refuses any that would need it); everything else
stays with SQLAlchemy.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Hot"]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None  # for drivers taking positions
    defaults: Mapping[str, Any]  # the statement's own literal values


class Hot:
    """A statement built per dialect name, compiled once for it, executed on the raw cursor."""

    def __init__(self, build: Callable[[str], sa.ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        """Run in ``conn``'s transaction; return the driver's cursor (rowcount, fetchall)."""
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn.dialect)
        values = {**compiled.defaults, **params} if compiled.defaults else params
        args = values if compiled.order is None else compiled.order(values)
        cursor = conn.connection.cursor()
        cursor.execute(compiled.sql, args)
        return cursor

    def _compile(self, dialect: sa.Dialect) -> _Compiled:
        compiled = self._build(dialect.name).compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {type(compiled).__name__}")
        processors = getattr(compiled, "_bind_processors", {})
        if processors:  # a type that converts its values: SQLAlchemy's execute() must run it
            raise TypeError(f"not a plain statement: {sorted(processors)} need conversion")
        bind_names: dict[Any, str] = getattr(compiled, "bind_names", {})
        defaults = {
            name: bind.effective_value for bind, name in bind_names.items() if not bind.required
        }
        order = None
        if compiled.positional:
            names = tuple(compiled.positiontup or ())
            order = _in_order(names)
        result = _Compiled(compiled.string, order, defaults)
        self._compiled[dialect.name] = result
        return result


def _in_order(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """Return a function taking the named values in ``names``' order, as one tuple."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        only = names[0]
        return lambda values: (values[only],)
    pick = operator.itemgetter(*names)
    return lambda values: pick(values)
