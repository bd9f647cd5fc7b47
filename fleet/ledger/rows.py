"""Turning rows into records, and the few helpers every group of ledger operations shares."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet.errors import ErrorKind, LedgerConflict
from fleet.planned import PlannedServer
from fleet.states import ServerStatus, State

from .model import Instance, Record
from .schema import servers

__all__ = [
    "NO_ERROR",
    "RECORD_COLUMNS",
    "Changed",
    "insert_new",
    "iso",
    "planned_as",
    "require_one",
    "to_instance",
    "to_record",
]

RECORD_COLUMNS = tuple(servers.c[name] for name in Record.__dataclass_fields__)
# A row's error, cleared: once created, or planned again, an old error no longer describes it.
NO_ERROR: Final[Mapping[str, None]] = {
    "error_kind": None,
    "error_code": None,
    "error_message": None,
    "http_status": None,
}


def planned_as(spec: PlannedServer, stamp: str) -> dict[str, Any]:
    """Return the columns of a row planned again with the inventory's parameters, no error."""
    return {
        "state": State.PLANNED.value,
        "params_hash": spec.params_hash,
        "file": spec.file,
        "line": spec.line,
        "region": spec.region,
        "vpc_no": spec.vpc_no,
        "updated_at": stamp,
        **NO_ERROR,
    }


def iso(epoch: float) -> str:
    """Return an epoch time as the ledger writes it: UTC ISO 8601 with milliseconds."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _enum(kind: Any, value: Any) -> Any:
    return None if value is None else kind(value)


_FIELDS = tuple(Record.__dataclass_fields__)
# The fields stored as text or integers that a Record holds as enums or booleans, by position.
_CONVERT = tuple(
    (_FIELDS.index(name), convert)
    for name, convert in (
        ("state", State),
        ("error_kind", functools.partial(_enum, ErrorKind)),
        ("server_status", functools.partial(_enum, ServerStatus)),
        ("adopted", bool),
    )
)


def to_record(row: Sequence[Any] | Mapping[str, Any]) -> Record:
    """Build a Record from a servers row selected as RECORD_COLUMNS (or a mapping of them)."""
    # By position, not through a dict: every read of a rollout builds one per server.
    values = [row[name] for name in _FIELDS] if isinstance(row, Mapping) else list(row)
    for index, convert in _CONVERT:
        values[index] = convert(values[index])
    return Record(*values)


def to_instance(row: sa.Row[Any]) -> Instance:
    """Build an Instance from an instances row."""
    values = dict(row._mapping)
    values.pop("raw", None)
    values["server_status"] = _enum(ServerStatus, values["server_status"])
    values["state"] = State(values["state"])
    return Instance(**values)


@functools.cache
def insert_new(dialect: str, table: sa.Table) -> Any:
    """Return an INSERT that skips a row whose key exists (ON CONFLICT DO NOTHING), built once."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def where_server(rollout: str, name: str) -> sa.ColumnElement[bool]:
    """Return the condition selecting one server's row."""
    return sa.and_(servers.c.rollout == rollout, servers.c.name == name)


class Changed(Protocol):
    """What a write tells: how many rows it changed (a SQLAlchemy result)."""

    @property
    def rowcount(self) -> int:
        """Rows changed."""
        ...


def require_one(conn: sa.Connection, result: Changed, rollout: str, name: str, wanted: str) -> None:
    """Raise LedgerConflict, saying what the row holds now, unless exactly one row changed."""
    if result.rowcount == 1:
        return
    row = conn.execute(
        sa.select(servers.c.state, servers.c.error_kind).where(where_server(rollout, name))
    ).first()
    now = "no such server in the rollout" if row is None else f"it is {row.state}"
    if row is not None and row.error_kind:
        now += f" ({row.error_kind})"
    raise LedgerConflict(f"{rollout}/{name}: expected {wanted}, but {now}; nothing was changed")


def states_in(values: Sequence[State]) -> sa.ColumnElement[bool]:
    """Return the condition that a server's state is one of these."""
    return servers.c.state.in_([v.value for v in values])
