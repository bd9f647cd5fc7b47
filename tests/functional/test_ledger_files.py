"""The SQLite ledger file: private, fully synced, migrated from the first release, never misread."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from fleet.errors import LedgerError
from fleet.ledger import SCHEMA_VERSION, Ledger, State

# The first release's schema, as its ledger files hold it (no version stamp).
V1_SCHEMA = """
CREATE TABLE servers (
    rollout TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL,
    vpc_no TEXT NOT NULL, params_hash TEXT NOT NULL, state TEXT NOT NULL, instance_no TEXT,
    request_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, error_kind TEXT, error_code TEXT,
    error_message TEXT, http_status INTEGER, adopted INTEGER NOT NULL DEFAULT 0,
    server_status TEXT, run_seconds REAL, response TEXT, teardown TEXT, planned_at TEXT,
    sent_at TEXT, created_at TEXT, updated_at TEXT, terminated_at TEXT,
    PRIMARY KEY (rollout, name)
);
CREATE INDEX servers_instance ON servers (instance_no);
"""


def test_ledger_is_private_and_fully_synced(tmp_path: Path) -> None:
    """The file is 0600 in a 0700 folder, and every commit is synced to disk (power cuts too)."""
    path = tmp_path / "state" / "ledger.db"
    with Ledger(path) as book, book.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not a database, it is a shopping list\n" * 100, "not a database"),
        (b"SQLite format 3\x00" + b"\x07" * 2000, "ledger"),
    ],
)
def test_a_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes, expected: str) -> None:
    """A damaged or foreign file is refused with the path and the cause, never a traceback."""
    path = tmp_path / "ledger.db"
    path.write_bytes(content)
    with pytest.raises(LedgerError, match=expected) as caught:
        Ledger(path)
    assert str(path) in str(caught.value)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    """A SQLite file of some other program is not taken for a ledger, nor written to."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(LedgerError, match=r"not a fleet ledger.*customers"):
        Ledger(path)
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["customers"]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A ledger written by a newer fleet is not touched by an older one."""
    path = tmp_path / "l.db"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE fleet_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match="version 99 is newer"):
        Ledger(path)


def test_a_first_release_ledger_is_migrated_with_nothing_lost(tmp_path: Path) -> None:
    """Version 1 files open as version 2: every row, number and error kept, instances listed."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO servers (rollout, name, file, line, vpc_no, params_hash, state,"
            " instance_no, request_id, attempts, response, sent_at, created_at)"
            " VALUES ('r', 'web-001', 'a.csv', 2, '75001', 'h1', 'created', '1001', 'rid', 1,"
            " '{\"serverName\": \"web-001\"}', '2026-01-01T00:00:00.000+00:00',"
            " '2026-01-01T00:00:01.000+00:00')"
        )
        db.execute(
            "INSERT INTO servers (rollout, name, file, line, vpc_no, params_hash, state,"
            " attempts, error_kind, error_code, error_message, http_status, sent_at)"
            " VALUES ('r', 'web-002', 'a.csv', 2, '75001', 'h1', 'in_flight', 1, 'ambiguous',"
            " '510', 'Endpoint Timeout', 504, '2026-01-01T00:00:02.000+00:00')"
        )
    with Ledger(path) as book:
        created, flying = book.records("r")
        (instance,) = book.instances("r")
        with book.db.engine.connect() as conn:
            version = conn.exec_driver_sql(
                "SELECT value FROM fleet_meta WHERE key = 'schema_version'"
            ).scalar()
    assert version == str(SCHEMA_VERSION)
    assert (created.state, created.instance_no, created.request_id) == (
        State.CREATED,
        "1001",
        "rid",
    )
    assert (flying.state, flying.error_code, flying.http_status) == (State.IN_FLIGHT, "510", 504)
    assert flying.first_sent_at == "2026-01-01T00:00:02.000+00:00" and flying.unsettled
    assert (instance.instance_no, instance.name, instance.role) == ("1001", "web-001", "primary")


def _open_handles(path: Path) -> int:
    """How many of this process's file descriptors point at the ledger file."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if fd.exists() and fd.resolve() == path.resolve())


def test_closing_the_ledger_lets_go_of_the_file(tmp_path: Path) -> None:
    """The connections kept open between transactions (one per thread) close with the ledger."""
    import threading

    path = tmp_path / "ledger.db"
    book = Ledger(path)
    worker = threading.Thread(target=book.counts, args=("r",))  # a second thread's connection
    worker.start()
    worker.join()
    book.counts("r")
    assert _open_handles(path) >= 1
    book.close()
    assert _open_handles(path) == 0


def test_a_hot_statement_converts_values_as_any_statement_does() -> None:
    """A hot statement runs through SQLAlchemy's public execute: its column types convert values."""
    import datetime

    import sqlalchemy as sa

    from fleet.ledger.hot import Hot

    stamps = sa.Table("stamps", sa.MetaData(), sa.Column("at", sa.Date))
    engine = sa.create_engine("sqlite://")
    hot = Hot(lambda _: stamps.insert().values(at=sa.bindparam("b_at")))
    at = datetime.date(2026, 12, 6)  # stored by SQLite as text: converted both ways
    with engine.begin() as conn:
        stamps.create(conn)
        assert hot.execute(conn, {"b_at": at}).rowcount == 1
        assert conn.execute(sa.select(stamps.c.at)).scalar_one() == at
