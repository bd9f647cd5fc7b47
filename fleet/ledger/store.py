"""Opening a ledger (SQLite file or PostgreSQL database), its transactions, and its errors.

Both backends speak SQLAlchemy Core with the same semantics. SQLite: WAL, ``synchronous=FULL``
(a committed ``in_flight`` mark survives a power cut, not only a killed process), and every
transaction ``BEGIN IMMEDIATE``, so a compare-and-set cannot interleave with another process's.
PostgreSQL: READ COMMITTED with row locks taken by the statements that need them (``FOR UPDATE``
on the lease), and an advisory lock around schema creation and migration.

The file and its folder are created private (0600 in 0700): it holds the rollout's record and the
parameters sent, never a key.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from fleet.config import LedgerLocation, redact_url
from fleet.errors import ConfigError, LedgerError

from .schema import SCHEMA_VERSION, TABLE_NAMES, meta, metadata, migrate

__all__ = ["Database", "open_database"]

# An advisory lock key for schema work on PostgreSQL (any constant shared by every fleet).
_SCHEMA_LOCK = 0x666C656574


class Database:
    """A ledger's SQLAlchemy engine, with transactions that can join a caller's batch."""

    def __init__(self, engine: sa.Engine, shown: str) -> None:
        self.engine = engine
        self.shown = shown  # the location as shown to people: a path, or a URL without password
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._held: list[sa.Connection] = []
        self._held_lock = threading.Lock()
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def __repr__(self) -> str:
        return f"Database({self.shown!r})"

    def now(self, conn: sa.Connection) -> float:
        """Return the database's clock in this transaction (epoch seconds).

        PostgreSQL's own, read once per transaction (as ``now()`` is); SQLite's is this host's.
        """
        if self.is_sqlite:
            return time.time()
        transaction = conn.get_transaction()
        kept = conn.info.get("db_now")
        if kept is not None and kept[0] is transaction:
            return float(kept[1])
        read = conn.exec_driver_sql("SELECT extract(epoch from clock_timestamp())")
        value = float(read.scalar_one())
        conn.info["db_now"] = (transaction, value)
        return value

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """Run a transaction, or join the batch this thread is running (see ``batch``)."""
        joined: sa.Connection | None = getattr(self._local, "conn", None)
        if joined is not None:
            yield joined
            return
        with self.errors(), self._begin() as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[sa.Connection]:
        """Open one transaction that every ``transaction()`` on this thread joins until it ends."""
        with self.errors(), self._begin() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """Begin a transaction: on SQLite on this thread's own connection, kept open between them.

        Checking a connection out of the pool and back costs more than a claim's statements; a
        SQLite connection has nothing to lose by staying open. A PostgreSQL one could, across a
        server restart, so those come from the pool, pinged first.
        """
        if not self.is_sqlite:
            with self.engine.begin() as pooled:
                yield pooled
            return
        held: sa.Connection | None = getattr(self._local, "held", None)
        if held is None or held.closed or held.invalidated:
            held = self.engine.connect()
            self._local.held = held
            with self._held_lock:
                self._held.append(held)
        with held.begin():
            yield held

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn the driver's failures into LedgerError, with any password redacted."""
        try:
            yield
        except (sa.exc.DBAPIError, self._driver_error) as exc:
            # The driver's own error, wrapped by SQLAlchemy or not.
            cause: BaseException = exc
            if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
                cause = exc.orig
            detail = redact_url(str(cause).strip().splitlines()[0] if str(cause).strip() else "")
            raise LedgerError(
                f"ledger {self.shown}: {type(cause).__name__}: {detail or 'database error'}"
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(f"ledger {self.shown}: {redact_url(str(exc))}") from None

    def close(self) -> None:
        """Close every connection, kept or pooled."""
        with self._held_lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        self.engine.dispose()


def _private_file(path: Path) -> None:
    """Create the ledger file and its folder private to this user, if they do not exist yet."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def _sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": 30.0, "check_same_thread": False},
        poolclass=sa.pool.QueuePool,
        pool_size=4,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Transactions are begun by us (BEGIN IMMEDIATE below), not by the driver's guesswork.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # Take the write lock at the start: a compare-and-set must not read a row that another
        # process changes before this transaction writes (SQLAlchemy's recipe for SQLite).
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _engine(location: LedgerLocation) -> sa.Engine:
    if location.path is not None:
        try:
            _private_file(location.path)
        except OSError as exc:
            why = exc.strerror or exc
            raise LedgerError(f"ledger {location}: cannot create it ({why})") from None
        if location.path.is_dir():
            raise LedgerError(f"ledger {location}: a directory, not a ledger file")
        return _sqlite_engine(location.path)
    try:
        return sa.create_engine(
            location.sqlalchemy_url, pool_pre_ping=True, pool_size=4, max_overflow=8
        )
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise LedgerError(f"ledger {location}: {redact_url(str(exc))}") from None


def _version(conn: sa.Connection) -> int:
    """Return the schema version found (0 for an empty database); refuse foreign contents."""
    tables = set(sa.inspect(conn).get_table_names())
    if meta.name in tables:
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
        if row is None or not str(row[0]).isdigit():
            raise LedgerError("its fleet_meta table has no schema version")
        return int(row[0])
    if "servers" in tables:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("servers")}
        if {"rollout", "name", "params_hash", "state"} <= columns:
            return 1  # the first release's ledger, which carried no version stamp
        raise LedgerError("it holds a 'servers' table that is not a fleet ledger's")
    if conn.dialect.name == "sqlite" and tables:
        raise LedgerError(f"it is not a fleet ledger (tables: {', '.join(sorted(tables))})")
    return 0


def _prepare(db: Database) -> None:
    with db.transaction() as conn:
        if not db.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        version = _version(conn)
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"its schema version {version} is newer than this fleet's ({SCHEMA_VERSION}):"
                " upgrade fleet to use it"
            )
        if version == 0:
            clash = TABLE_NAMES & set(sa.inspect(conn).get_table_names())
            if clash:
                raise LedgerError(f"it holds tables named like a ledger's: {', '.join(clash)}")
            metadata.create_all(conn)
            conn.execute(meta.insert().values(key="application", value="fleet"))
            migrate(conn, SCHEMA_VERSION)
        elif version < SCHEMA_VERSION:
            migrate(conn, version)


def open_database(target: str | os.PathLike[str] | LedgerLocation) -> Database:
    """Open (creating or migrating as needed) the ledger at a path or PostgreSQL URL.

    Raises:
        LedgerError: the location is malformed, unreachable, corrupt, foreign or of a newer
            schema.

    """
    if isinstance(target, LedgerLocation):
        location = target
    else:
        try:
            location = LedgerLocation.parse(os.fspath(target))
        except ConfigError as exc:
            raise LedgerError(str(exc)) from None
    shown = str(location)
    db = Database(_engine(location), shown)
    try:
        _prepare(db)
    except LedgerError as exc:
        db.close()
        message = str(exc)
        prefix = f"ledger {shown}: "
        raise LedgerError(message if message.startswith(prefix) else prefix + message) from None
    return db
