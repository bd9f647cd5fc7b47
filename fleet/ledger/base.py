"""What every part of the Ledger shares: the database, the clock, opening and closing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from fleet.config import DEFAULT_LEDGER, LedgerLocation

from .rows import iso
from .store import Database, open_database

__all__ = ["DEFAULT_LEDGER", "LedgerBase"]


class LedgerBase:
    """A ledger's database and clock; the Ledger's parts build on it."""

    def __init__(
        self,
        location: str | os.PathLike[str] | LedgerLocation = DEFAULT_LEDGER,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db: Database = open_database(location)
        self._clock = clock

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
        """Return the ledger's clock (epoch seconds)."""
        return self._clock()

    def _stamp(self) -> str:
        return iso(self._clock())
