"""Client-side rate limiting: exact pacing, at the rate ``ratecontrol`` finds from the gateway.

``AdaptiveRateLimiter`` paces calls at the control's rate (GCRA) with a cap on calls in flight,
and paces them again at the send, so that nothing between admission and the wire (the engine's
claim, a busy loop) sends them in clumps. Written here rather than taken from aiolimiter: that
library reads the event loop's clock and cannot change its rate under feedback, and both are the
point of this one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from .ratecontrol import START_RATE, LimiterStats, Measure, Permit, RateControl

__all__ = [
    "START_RATE",
    "AdaptiveRateLimiter",
    "Limiter",
    "LimiterStats",
    "Measure",
    "Permit",
    "RateControl",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Limiter:
    """The seam the client calls: hold a slot for one request, and report how it went."""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit | None]:
        """Wait for permission to send one request, and hold an in-flight place while it runs."""
        yield None

    async def depart(self, permit: Permit | None) -> Permit | None:
        """Wait for the request's turn to leave (after any work between slot and send)."""
        return permit

    def on_success(self, permit: Permit | None = None) -> None:
        """Tell the limiter a request went through."""

    def on_throttle(self, permit: Permit | None = None) -> None:
        """Tell the limiter the gateway answered 'too fast'."""

    @property
    def rate(self) -> float | None:
        """Return the calls/s in force now (None: no limit)."""
        return None

    @property
    def found_rate(self) -> float | None:
        """Return the gateway's limit as measured between its throttles, if it throttled twice."""
        return None

    @property
    def measure(self) -> Measure | None:
        """Return what the found rate was measured over, if anything was."""
        return None


class AdaptiveRateLimiter(Limiter):
    """Calls paced at the rate ``RateControl`` sets, with a burst and a cap on calls in flight.

    Two gates, both at the rate. ``slot`` admits a call (GCRA, a token bucket kept as one
    timestamp, with ``burst``): callers queue in order and each is admitted when the bucket holds
    a token at the moment it wakes, so work before the send (the engine's claim) starts at the
    rate even after the event loop stalls. ``depart`` then lets each request leave one interval
    after the last, with no burst: what happened between the two (a claim committed for several
    at once, a busy loop) would otherwise send them in a clump, and a gateway whose own burst is
    small answers a clump with 429s. A caller woken late makes up the turns it missed, but no
    more than half the burst at once: the other half of the gateway's stays a reserve for the
    jitter on the way. ``rate`` is the ceiling; with ``discover`` the limiter finds the gateway's
    limit under it (from ``known``, the rate a previous run found, if any).
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        discover: bool = False,
        known: float | None = None,
        max_in_flight: int = 16,
        min_rate: float = 0.5,
        adaptive: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1 or max_in_flight < 1:
            raise ValueError("rate must be > 0, burst and max_in_flight at least 1")
        self.control = RateControl(
            rate, discover=discover, known=known, min_rate=min_rate, adaptive=adaptive, clock=clock
        )
        self.burst = burst
        # Half the burst at the send, at most: the other half of the gateway's is left for the
        # jitter on the way (a clump that reaches it faster than it was sent).
        self.leave_burst = -(-burst // 2)
        self._clock = clock
        self._sleep = sleep
        self._tat = clock()  # theoretical arrival time of the next call (GCRA) ...
        self._tat_rate = self.control.rate  # ... reckoned at this rate
        self._turn = asyncio.Lock()  # FIFO: callers leave in the order they came
        self._leave_at = self._tat  # when the next request may leave (``depart``) ...
        self._leaving = asyncio.Lock()  # ... one at a time, in order
        self._out: set[int] = set()  # permits of the requests on their way (left, not done)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._queued = 0  # callers waiting for a place in flight or for the rate
        self._idle_from = self._tat  # when the last of them left

    @property
    def max_rate(self) -> float:
        """Return the ceiling: the rate never exceeded."""
        return self.control.ceiling

    @property
    def rate(self) -> float:
        """Return the rate in force now, after any back-off and recovery."""
        return self.control.rate

    @property
    def found_rate(self) -> float | None:
        """Return the gateway's limit as measured between its throttles, if it was."""
        return self.control.found

    @property
    def measure(self) -> Measure | None:
        """Return what the found rate was measured over, if anything was."""
        return self.control.measure

    @property
    def stats(self) -> LimiterStats:
        """Return what the limiter has seen."""
        return self.control.stats

    async def acquire(self) -> Permit:
        """Wait until the rate allows one more call; return its permit."""
        self._queue(1)
        try:
            return await self._acquire()
        finally:
            self._queue(-1)

    def _queue(self, change: int) -> None:
        """Count callers waiting; time with none waiting while the rate allowed one is idle."""
        now = self._clock()
        if change > 0 and self._queued == 0:
            # The gateway's bucket refilled meanwhile: a measure across this gap would be ours.
            self._idle(now - max(self._idle_from, self._tat), now)
        self._queued += change
        if self._queued == 0:
            self._idle_from = now

    def _idle(self, gap: float, now: float) -> None:
        """Count a gap in sending as idle, unless it is shorter than the leaving burst.

        A busy machine stalls the loop for a few intervals now and then; the calls due meanwhile
        leave as one clump of at most ``leave_burst`` (see ``depart``), which the gateway's own
        burst takes. Only a longer gap lets its bucket refill past that, and so measure our pace.
        """
        if gap >= self.leave_burst / self.control.rate_at(now):
            self.control.idle(gap)

    async def _acquire(self) -> Permit:
        # One caller at a time decides when it may leave, and only leaves once the bucket has a
        # token at the moment it wakes: after a stall of the event loop, late callers do not all
        # leave at once on the strength of reservations made before the stall.
        async with self._turn:
            slept = False
            while True:
                now = self._clock()
                rate = self._rescale(now)
                interval = 1.0 / rate
                # Theoretical arrival time (GCRA). A caller that wakes a little late (timer
                # granularity, a busy loop) keeps its slot, or the lateness would add up into a
                # lower rate; after a longer gap the bucket starts afresh from now.
                late = now - self._tat
                tat = self._tat if late < interval else now
                if slept:
                    # A stall: the loop was busy, nothing left, and the gateway's bucket refilled.
                    self._idle(late, now)
                allowed_at = tat - (self.burst - 1) * interval
                if allowed_at <= now:
                    self._tat = tat + interval
                    return self.control.sent(now)
                self.stats.waited_seconds += allowed_at - now
                await self._sleep(allowed_at - now)
                slept = True

    def _rescale(self, now: float) -> float:
        """Return the rate now; calls reserved ahead at an older rate are respaced at this one."""
        rate = self.control.rate_at(now)
        if rate != self._tat_rate:
            if self._tat > now:
                self._tat = now + (self._tat - now) * self._tat_rate / rate
            self._tat_rate = rate
        return rate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        """Wait for a place in flight and for the rate, then hold the place until done."""
        self._queue(1)  # waiting for a place in flight is waiting too
        queued = True
        permit: Permit | None = None
        try:
            async with self._in_flight:
                permit = await self.acquire()
                self._queue(-1)
                queued = False
                yield permit
        finally:
            if queued:
                self._queue(-1)
            if permit is not None:
                self._out.discard(permit.number)

    async def depart(self, permit: Permit | None) -> Permit | None:
        """Wait until one interval after the last request left; return the permit stamped then.

        A request with none other on its way leaves at once: one alone makes no clump, and its
        admission kept the rate (calls one after another, a preflight's reads, go as before).
        """
        async with self._leaving:
            while True:
                now = self._clock()
                interval = 1.0 / self.control.rate_at(now)
                # Woken late (a busy loop), the turns missed are made up at once, up to the
                # leaving burst: the gateway's bucket refilled as much meanwhile.
                at = max(self._leave_at, now - (self.leave_burst - 1) * interval)
                if at <= now or (permit is not None and not self._out):
                    self._leave_at = at + interval
                    break
                await self._sleep(at - now)
        if permit is None:
            return None
        self._out.add(permit.number)
        return dataclasses.replace(permit, sent_at=now)

    def on_success(self, permit: Permit | None = None) -> None:
        """Count the call; in slow start, raise the rate."""
        self.control.succeeded(permit)

    def on_throttle(self, permit: Permit | None = None) -> None:
        """Cut the rate under the one the throttled call left at, and hold the next call back."""
        if self.control.throttled(permit):
            # The gateway just said its bucket is empty: so is ours, the next call waits.
            now = self._clock()
            pause = self.burst / self._rescale(now)
            self._tat = max(self._tat, now + pause)
            self._leave_at = max(self._leave_at, now + pause)
