"""What every part of the Ledger shares: the database, its clock, the leases held, opening.

One clock: every time the ledger writes or compares (a claim's stamp, a lease's expiry, the
settle window's start) is the database's own. PostgreSQL's clock is shared by every machine that
writes the ledger, so a worker whose clock is minutes off neither judges a window early nor takes
a live lease; a SQLite file lives on one machine, whose clock is the database's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import Self

import sqlalchemy as sa

from fleet.config import DEFAULT_LEDGER, LedgerLocation
from fleet.errors import LeaseLost

from . import leases
from .rows import iso
from .store import Database, open_database

__all__ = ["DEFAULT_LEDGER", "LedgerBase"]


class LedgerBase:
    """A ledger's database and clock; the Ledger's parts build on it."""

    def __init__(
        self,
        location: str | os.PathLike[str] | LedgerLocation = DEFAULT_LEDGER,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.db: Database = open_database(location)
        self._clock = clock  # tests only: a fake clock instead of the database's
        # rollout -> the lease owner token this process holds it with: every write is fenced.
        self._owners: dict[str, str] = {}

    @property
    def shown(self) -> str:
        """Return where the ledger is, as it may be shown (a URL's password redacted)."""
        return self.db.shown

    def __repr__(self) -> str:
        return f"Ledger({self.shown!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connections."""
        self.db.close()

    def now(self) -> float:
        """Return the ledger's clock (epoch seconds): the database's, shared by every writer."""
        with self.db.transaction() as conn:
            return self._now(conn)

    def _now(self, conn: sa.Connection) -> float:
        if self._clock is not None:
            return self._clock()
        return self.db.now(conn)

    def _stamp(self, conn: sa.Connection) -> str:
        return iso(self._now(conn))

    def _fence(self, conn: sa.Connection, rollout: str) -> None:
        """Refuse a write unless this process still holds the rollout's lease (fencing)."""
        owner = self._owners.get(rollout)
        if owner is None:
            raise LeaseLost(f"rollout {rollout!r}: this run holds no lease on it; nothing written")
        leases.fence(conn, rollout, owner)
