"""The read rate and burst the gateway allows, found by being throttled on purpose, on a budget.

NCP publishes neither; its gateway behaves as a token bucket. Reads (``getRegionList``: small,
unpaged, changing nothing) go in volleys, each sent at once:

1. **burst**: after a rest of ``rest`` seconds (a full bucket), volleys of 16, 32, 64 ... reads
   until one is throttled. What went through until then, less what the rate refilled meanwhile
   (nothing, when the volleys take no time), is the bucket's size.
2. **rate**: the bucket is empty then. Volleys follow every ``step`` seconds, each larger than
   what can have refilled since the last (a volley that meets no 429 did not empty the bucket:
   the next is twice as large, and the count starts again). Once the bucket is empty, what goes
   through is the refill alone, so the reads passed in the volleys after the first one that
   emptied it, over the time since that one, are the rate, to within one read over that time.
   The refill of a step must stay under the bucket's size (a full bucket drops the rest): a
   volley that takes nearly a burst halves the step and the count starts again; one that takes
   almost nothing doubles it (a slow gateway needs longer steps).

It stops once PASSED reads were counted over at least STEADY volleys, after ``max_seconds`` of
counting, or before ``max_calls`` reads in all, whichever comes first; so it makes at most
``max_calls`` calls. The first 429 gives the throttle's shape (status, code, Retry-After).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from fleet.errors import NcpError, ThrottledError

from .profile import Throttle

__all__ = ["RateFinding", "RateProbe", "Read"]

# One read: None when it went through, else the error it met.
Read = Callable[[], Awaitable[NcpError | None]]

REST: Final = 2.0  # seconds idle before the burst: the bucket refills
FIRST_VOLLEY: Final = 16
MAX_VOLLEY: Final = 96  # reads at once at most (the client's pool holds 100 connections)
FIRST_STEP: Final = 0.1  # seconds between the rate's volleys, at first
MAX_STEP: Final = 2.0
MIN_STEP: Final = 0.005
PASSED: Final = 50  # reads counted that make a rate good to 2%
STEADY: Final = 4  # volleys counted at least


@dataclass(frozen=True, slots=True)
class Volley:
    """Reads sent at once: when, and how many went through, were throttled, failed otherwise."""

    at: float
    passed: int
    throttled: int
    failed: int


@dataclass(frozen=True, slots=True)
class RateFinding:
    """The rate and burst measured (None: not measured), the throttle's shape, and the cost."""

    rate: float | None
    burst: int | None
    throttle: Throttle | None
    calls: int
    seconds: float
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Tally:
    calls: int = 0
    throttle: Throttle | None = None
    shapes: set[tuple[int | None, str | None, bool]] = field(default_factory=set)
    failure: NcpError | None = None


class RateProbe:
    """One measurement of the gateway's read rate and burst (see the module's docstring)."""

    def __init__(
        self,
        read: Read,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        max_calls: int,
        max_seconds: float,
        rest: float = REST,
    ) -> None:
        self._read = read
        self._clock = clock
        self._sleep = sleep
        self._max_calls = max_calls
        self._max_seconds = max_seconds
        self._rest = rest
        self._tally = _Tally()
        self._started = clock()  # when the burst's volleys began

    async def run(self) -> RateFinding:
        """Measure the burst, then the rate; say how, or why a figure was not measured."""
        began = self._clock()
        burst = await self._burst()
        found = await self._rate(burst[0]) if burst is not None else None
        tally, notes = self._tally, {}
        seconds = self._clock() - began
        rate = size = None
        if found is not None and burst is not None:
            rate, window, counted = found
            size = max(1, round(burst[0] - rate * burst[1]))
            notes["rate_per_s"] = (
                f"{counted} reads went through over {window:.2f} s once the bucket was empty "
                f"(within {1 / window:.2f}/s); {tally.calls} reads in {seconds:.1f} s in all"
            )
            notes["burst"] = f"{burst[0]} reads went through at once after a {self._rest:g} s rest"
        else:
            reason = self._why_not()
            notes["rate_per_s"] = notes["burst"] = reason
        if tally.throttle is None:
            notes["throttle"] = f"no read was throttled in {tally.calls} reads"
        else:
            notes["throttle"] = self._shape_note()
        return RateFinding(rate, size, tally.throttle, tally.calls, seconds, notes)

    def _why_not(self) -> str:
        tally = self._tally
        if tally.failure is not None:
            return f"reads failed while measuring: {tally.failure}"
        if tally.throttle is None:
            span = self._clock() - self._started
            pace = f", at least {tally.calls / span:.0f}/s" if span > 0 else ""
            return f"no read was throttled: {tally.calls} reads went through in {span:.2f} s{pace}"
        return f"the budget of {self._max_calls} reads ran out before a rate could be counted"

    def _shape_note(self) -> str:
        tally = self._tally
        parts = []
        if tally.throttle is not None and tally.throttle.retry_after is None:
            parts.append("the answer carried no Retry-After header")
        if len(tally.shapes) > 1:
            parts.append(f"{len(tally.shapes)} different answers; the first is given")
        return "; ".join(parts) or "as answered"

    async def _volley(self, size: int) -> Volley:
        at = self._clock()
        errors = await asyncio.gather(*(self._read() for _ in range(size)))
        tally = self._tally
        tally.calls += size
        throttled = failed = 0
        for error in errors:
            if isinstance(error, ThrottledError):
                throttled += 1
                shape = (error.status, error.code, error.retry_after is not None)
                tally.shapes.add(shape)
                if tally.throttle is None:
                    tally.throttle = Throttle(error.status or 0, error.code, error.retry_after)
            elif error is not None:
                failed += 1
                tally.failure = tally.failure or error
        return Volley(at, size - throttled - failed, throttled, failed)

    async def _burst(self) -> tuple[int, float] | None:
        """Return the reads that went through until the first 429, and over how long."""
        await self._sleep(self._rest)
        start = self._started = self._clock()
        passed, size = 0, FIRST_VOLLEY
        while self._tally.calls + size <= self._max_calls // 2:
            volley = await self._volley(size)
            passed += volley.passed
            if volley.failed:
                return None
            if volley.throttled:
                return passed, volley.at - start
            size = min(MAX_VOLLEY, 2 * size)
        return None

    async def _rate(self, burst: int) -> tuple[float, float, int] | None:
        """Return the rate, the time it was counted over and the reads counted."""
        # A step's refill must stay below what the bucket holds, or the bucket fills and what a
        # volley takes is its size, not the refill: a volley near it halves the step.
        full = max(1, burst - 1)
        size, step = min(MAX_VOLLEY, max(8, 2 * burst + 2)), FIRST_STEP
        anchor: float | None = None
        passed = volleys = most = 0
        last = self._clock()
        while self._tally.calls + size <= self._max_calls:
            await self._sleep(max(0.0, last + step - self._clock()))
            volley = await self._volley(size)
            last = volley.at
            if volley.failed:
                return None
            if not volley.throttled:  # the bucket outlasted the volley: larger, count afresh
                size, anchor, passed, volleys = min(MAX_VOLLEY, 2 * size), None, 0, 0
            elif anchor is None or (volley.passed >= full and step > MIN_STEP):
                # emptied: from here on only the refill goes through (over shorter steps if the
                # bucket may have filled)
                anchor, passed, volleys = volley.at, 0, 0
                step = step / 2 if volley.passed >= full and step > MIN_STEP else step
            else:
                passed, volleys, most = (
                    passed + volley.passed,
                    volleys + 1,
                    max(most, volley.passed),
                )
                size = min(size, max(8, 2 * most + 4))
                if (passed >= PASSED and volleys >= STEADY) or last - anchor >= self._max_seconds:
                    break
                if volley.passed < 2 and 2 * (volley.passed + 1) < full:
                    step = min(MAX_STEP, 2 * step)  # a slow gateway: longer steps
        if anchor is None or volleys == 0 or last <= anchor:
            return None
        return passed / (last - anchor), last - anchor, passed
