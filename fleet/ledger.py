"""The ledger: a SQLite file that remembers every server of every rollout, crash or no crash.

A server is written ``in_flight`` before its create call goes out and its outcome as soon as it is
known, each in its own transaction. WAL with synchronous=NORMAL makes a commit survive the process
being killed at any instant (only a power cut could take the last commits back), at a few tens of
microseconds a write. So after a SIGKILL every server is either known created (with its instance
number), known not sent, or ``in_flight``: to be looked up by name before anything is sent again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import Kind, NcpError
from .spec import ServerSpec

__all__ = ["DEFAULT_LEDGER", "Ledger", "PlanDelta", "Record", "State"]

DEFAULT_LEDGER = Path(".fleet") / "ledger.db"


class State(StrEnum):
    """Where one server of a rollout stands."""

    PLANNED = "planned"  # known, never sent
    IN_FLIGHT = "in_flight"  # a create went out; outcome unknown until looked up
    CREATED = "created"  # NCP returned (or we found) its instance number
    FAILED = "failed"  # NCP refused it, or retries ran out; see error_kind


@dataclass(frozen=True, slots=True)
class Record:
    """One server's row in the ledger."""

    rollout: str
    name: str
    file: str
    line: int
    vpc_no: str
    params_hash: str
    state: str
    instance_no: str | None
    request_id: str | None
    attempts: int
    error_kind: str | None
    error_code: str | None
    error_message: str | None
    http_status: int | None
    adopted: int
    server_status: str | None
    run_seconds: float | None
    response: str | None
    teardown: str | None
    planned_at: str | None
    sent_at: str | None
    created_at: str | None
    updated_at: str | None
    terminated_at: str | None

    @property
    def retryable(self) -> bool:
        """Whether a rerun should try this server again."""
        if self.state in (State.PLANNED, State.IN_FLIGHT):
            return True
        return self.state == State.FAILED and self.error_kind != Kind.PERMANENT


_COLUMNS = [f.name for f in fields(Record)]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (
    rollout TEXT NOT NULL,
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    line INTEGER NOT NULL,
    vpc_no TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    instance_no TEXT,
    request_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_kind TEXT,
    error_code TEXT,
    error_message TEXT,
    http_status INTEGER,
    adopted INTEGER NOT NULL DEFAULT 0,
    server_status TEXT,
    run_seconds REAL,
    response TEXT,
    teardown TEXT,
    planned_at TEXT,
    sent_at TEXT,
    created_at TEXT,
    updated_at TEXT,
    terminated_at TEXT,
    PRIMARY KEY (rollout, name)
);
CREATE INDEX IF NOT EXISTS servers_instance ON servers (instance_no);
"""


@dataclass(frozen=True, slots=True)
class PlanDelta:
    """How an inventory compares with what the ledger already holds for the rollout."""

    new: tuple[str, ...]
    changed: tuple[str, ...]  # created already, but the inventory's parameters differ now
    replanned: tuple[str, ...]  # not created yet, parameters changed: the new ones will be sent
    removed: tuple[str, ...]  # in the ledger, no longer in the inventory


class Ledger:
    """A rollout ledger in one SQLite file; safe to share between the tasks of one process."""

    def __init__(
        self, path: str | Path = DEFAULT_LEDGER, *, clock: Callable[[], float] = time.time
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        # Autocommit mode: every statement below is its own committed transaction unless a
        # `with self._tx()` groups several.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds")

    def _write(self, sql: str, args: Sequence[Any] | Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def compare(self, rollout: str, specs: Sequence[ServerSpec]) -> PlanDelta:
        """Say how an inventory differs from the ledger's record of the rollout; write nothing."""
        with self._lock:
            existing = {
                row["name"]: (row["params_hash"], row["state"])
                for row in self._db.execute(
                    "SELECT name, params_hash, state FROM servers WHERE rollout = ?", (rollout,)
                )
            }
        new: list[str] = []
        changed: list[str] = []
        replanned: list[str] = []
        for spec in specs:
            known = existing.get(spec.name)
            if known is None:
                new.append(spec.name)
            elif known[0] != spec.params_hash:
                (changed if known[1] == State.CREATED else replanned).append(spec.name)
        names = {spec.name for spec in specs}
        removed = tuple(sorted(n for n in existing if n not in names))
        return PlanDelta(tuple(new), tuple(changed), tuple(replanned), removed)

    def plan(self, rollout: str, specs: Sequence[ServerSpec]) -> PlanDelta:
        """Enter the rollout's servers (new ones as planned) and say what changed since."""
        delta = self.compare(rollout, specs)
        now = self._now()
        by_name = {spec.name: spec for spec in specs}
        rows = [
            (
                rollout,
                s.name,
                s.file,
                s.line,
                s.vpc_no,
                s.params_hash,
                State.PLANNED.value,
                now,
                now,
            )
            for s in (by_name[n] for n in delta.new)
        ]
        updates = [
            (s.file, s.line, s.vpc_no, s.params_hash, now, rollout, s.name)
            for s in (by_name[n] for n in delta.replanned)
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO servers (rollout, name, file, line, vpc_no, params_hash, state,"
                " planned_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # A server not created yet whose parameters changed is sent with the new ones; a
            # permanent failure of the old parameters says nothing about the new ones.
            self._db.executemany(
                "UPDATE servers SET file = ?, line = ?, vpc_no = ?, params_hash = ?,"
                " updated_at = ?, state = CASE state WHEN 'failed' THEN 'planned' ELSE state END,"
                " error_kind = NULL, error_code = NULL, error_message = NULL, http_status = NULL"
                " WHERE rollout = ? AND name = ?",
                updates,
            )
            self._db.execute("COMMIT")
        return delta

    def mark_in_flight(self, rollout: str, name: str) -> None:
        """Record that a create call for this server is about to go out."""
        now = self._now()
        self._write(
            "UPDATE servers SET state = 'in_flight', attempts = attempts + 1, sent_at = ?,"
            " updated_at = ? WHERE rollout = ? AND name = ?",
            (now, now, rollout, name),
        )

    def mark_created(
        self,
        rollout: str,
        name: str,
        instance_no: str,
        *,
        request_id: str | None,
        response: Mapping[str, Any] | None = None,
        server_status: str | None = None,
        adopted: bool = False,
    ) -> None:
        """Record a server's instance number and what NCP said of it."""
        now = self._now()
        self._write(
            "UPDATE servers SET state = 'created', instance_no = ?, request_id = ?,"
            " response = ?, server_status = ?, adopted = ?, created_at = ?, updated_at = ?,"
            " error_kind = NULL, error_code = NULL, error_message = NULL, http_status = NULL"
            " WHERE rollout = ? AND name = ?",
            (
                instance_no,
                request_id,
                None if response is None else json.dumps(response, ensure_ascii=False),
                server_status,
                int(adopted),
                now,
                now,
                rollout,
                name,
            ),
        )

    def mark_failed(
        self, rollout: str, name: str, error: NcpError, *, state: State = State.FAILED
    ) -> None:
        """Record why a server was not created (state stays in_flight if it may exist)."""
        self._write(
            "UPDATE servers SET state = ?, error_kind = ?, error_code = ?, error_message = ?,"
            " http_status = ?, request_id = COALESCE(?, request_id), updated_at = ?"
            " WHERE rollout = ? AND name = ?",
            (
                state.value,
                error.kind.value,
                error.code,
                error.message,
                error.status,
                error.request_id,
                self._now(),
                rollout,
                name,
            ),
        )

    def mark_planned(self, rollout: str, name: str) -> None:
        """Record that an in-flight server was looked for and is not there: safe to send again."""
        self._write(
            "UPDATE servers SET state = 'planned', updated_at = ? WHERE rollout = ? AND name = ?",
            (self._now(), rollout, name),
        )

    def note_error(
        self, rollout: str, name: str, kind: str, message: str, code: str | None = None
    ) -> None:
        """Record a problem with a server that exists (a failure status, a timeout, a refusal)."""
        self._write(
            "UPDATE servers SET error_kind = ?, error_code = ?, error_message = ?, updated_at = ?"
            " WHERE rollout = ? AND name = ?",
            (kind, code, message, self._now(), rollout, name),
        )

    def set_status(self, rollout: str, updates: Iterable[tuple[str, str, float | None]]) -> None:
        """Record servers' NCP status (name, status, seconds from created to RUN or None)."""
        now = self._now()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE servers SET server_status = ?, run_seconds = COALESCE(?, run_seconds),"
                " updated_at = ? WHERE rollout = ? AND name = ?",
                [(status, secs, now, rollout, name) for name, status, secs in updates],
            )
            self._db.execute("COMMIT")

    def set_teardown(
        self, rollout: str, names: Iterable[str], teardown: str, *, message: str | None = None
    ) -> None:
        """Record how far the teardown of these servers has come."""
        now = self._now()
        terminated = now if teardown == "terminated" else None
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE servers SET teardown = ?, terminated_at = COALESCE(?, terminated_at),"
                " error_message = COALESCE(?, error_message), updated_at = ?"
                " WHERE rollout = ? AND name = ?",
                [(teardown, terminated, message, now, rollout, name) for name in names],
            )
            self._db.execute("COMMIT")

    def records(self, rollout: str) -> list[Record]:
        """Return every server of a rollout, in inventory order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM servers WHERE rollout = ?"  # noqa: S608
                " ORDER BY file, line, name",
                (rollout,),
            ).fetchall()
        return [Record(**dict(row)) for row in rows]

    def record(self, rollout: str, name: str) -> Record | None:
        """Return one server's row, if the rollout has it."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM servers"  # noqa: S608
                " WHERE rollout = ? AND name = ?",
                (rollout, name),
            ).fetchone()
        return None if row is None else Record(**dict(row))

    def counts(self, rollout: str) -> dict[str, int]:
        """Return a rollout's count of servers per state, and how many were seen RUN."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*), SUM(server_status = 'RUN') FROM servers"
                " WHERE rollout = ? GROUP BY state",
                (rollout,),
            ).fetchall()
        counts = {state: n for state, n, _ in rows}
        counts["running"] = sum(running or 0 for _, _, running in rows)
        return counts

    def forget(self, rollout: str) -> None:
        """Delete every record of a rollout (for rehearsals against a fresh simulator only)."""
        self._write("DELETE FROM servers WHERE rollout = ?", (rollout,))

    def rollouts(self) -> list[tuple[str, dict[str, int]]]:
        """Return each rollout's name with its count of servers per state."""
        with self._lock:
            rows = self._db.execute(
                "SELECT rollout, state, COUNT(*) FROM servers GROUP BY rollout, state"
                " ORDER BY rollout"
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for rollout, state, count in rows:
            out.setdefault(rollout, {})[state] = count
        return list(out.items())
