"""NCP's own clock, as the Date of its answers gives it: what a send's time is judged by.

This machine's clock may be wrong, or step (NTP, a VM resumed), between a create and the run
that looks for its server. NCP's is the one every run of every machine sees alike. Each answer's
``Date`` (whole seconds) is kept with this process's monotonic time when it came, and carried
forward on that monotonic clock, which no step of the wall clock moves.

Both bounds are kept honest: ``now`` is at most NCP's time now (the Date rounds down, and the
answer took time to arrive), and ``latest`` at least (a second for the rounding, and the round
trip of the call that brought the Date). A send is stamped ``latest``, and its age judged by
``now``: the age is never overstated, so no window is ever judged to have passed early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NcpClock"]


@dataclass(slots=True)
class NcpClock:
    """NCP's clock from its answers' Date headers, carried on this process's monotonic clock."""

    clock: Callable[[], float] = time.monotonic
    _date: float | None = None  # the last Date read (epoch seconds)
    _at: float = 0.0  # our monotonic clock when that answer came
    _trip: float = 0.0  # how long that call took, there and back
    dated: int = 0  # answers that carried a readable Date

    def observe(self, date: float | None, sent_at: float) -> None:
        """Take one answer's Date (None: none, or unreadable); ``sent_at``: when it left."""
        if date is None:
            return  # the last good one stands
        now = self.clock()
        self._date, self._at, self._trip = date, now, max(0.0, now - sent_at)
        self.dated += 1

    @property
    def last_date(self) -> float | None:
        """Return the Date of the last answer that carried one, as NCP wrote it."""
        return self._date

    @property
    def known(self) -> bool:
        """Whether an answer has told NCP's clock yet."""
        return self._date is not None

    def now(self) -> float | None:
        """Return NCP's clock now, at most (epoch seconds); None before any answer."""
        if self._date is None:
            return None
        return self._date + (self.clock() - self._at)

    def latest(self) -> float | None:
        """Return NCP's clock now, at least: what a send is stamped with; None before any answer."""
        now = self.now()
        return None if now is None else now + 1.0 + self._trip
