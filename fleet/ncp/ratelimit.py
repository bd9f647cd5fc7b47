"""Client-side rate limiting: exact pacing, at a rate found from the gateway's own answers.

NCP publishes no per-account rate limit, so the limiter can find it (``--rate auto``), much as
boto3's adaptive retry mode does:

- slow start: from START_RATE, every call that goes through adds GROWTH calls/s, so the rate
  doubles about every tenth of a second while nothing is throttled (TCP's slow start, in calls/s);
- a throttle is news about the rate its call was sent at, so the cut is taken from that rate, at
  most once per round trip: the answers to calls sent before the last cut are counted, not acted
  on (a burst of 429s is one signal);
- the gateway's bucket is empty at every throttle, so between two throttles it let through
  exactly its rate, provided calls were queued behind the limiter all along: a span with an idle
  gap in it (a staged rollout waiting for its servers, a small one, an approval) measures our
  own pace, not the gateway's, and is not taken. That measurement, when there is one, bounds the
  estimate of its limit; the spans measured add up to the rate a run remembers (``found``);
- the rate drops to BETA times the estimate, then climbs back along a cubic that flattens at the
  estimate and only later probes above it (CUBIC, relative to the estimate): it holds just under
  the limit, and an overestimate given by the user is left behind for good after the first cuts.

A rate remembered from an earlier run is a hint, not a ceiling: the limiter starts there (or at
START_RATE, if that is higher) and climbs on in a gentler slow start until throttled.

A rate the user names is a ceiling: the limiter starts there, never exceeds it, and backs off
under it the same way. ``RateControl`` is the feedback law alone (pure, on an injected clock);
``AdaptiveRateLimiter`` paces calls at its rate (GCRA) with a cap on calls in flight. Written
here rather than taken from aiolimiter: that library reads the event loop's clock and cannot
change its rate under feedback, and both are the point of this one.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = [
    "START_RATE",
    "AdaptiveRateLimiter",
    "Limiter",
    "LimiterStats",
    "Measure",
    "Permit",
    "RateControl",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

START_RATE = 10.0  # calls/s a discovery starts from: the rate every run was given before


@dataclass(frozen=True, slots=True)
class Permit:
    """One call let through: when it left, and the rate in force then (its answer is read so)."""

    sent_at: float  # when it was let through, then (``on_send``) when it really left
    rate: float
    number: int  # the how-manieth call the limiter let through
    idle: float = 0.0  # seconds the limiter sat idle (nothing queued) before it, in all
    busy_since: float = -math.inf  # when the limiter last had calls queued after sitting idle


@dataclass(frozen=True, slots=True)
class Measure:
    """The gateway's rate as measured between its throttles, and over how long a time."""

    rate: float  # calls/s let through between throttles, over the spans measured
    seconds: float  # of steady sending (calls queued all along) those spans add up to
    spans: int


@dataclass(slots=True)
class LimiterStats:
    """What the limiter has seen: calls let through, their outcomes, rate cuts, time waited."""

    acquired: int = 0
    succeeded: int = 0
    throttled: int = 0
    decreases: int = 0
    waited_seconds: float = 0.0


class Limiter:
    """The seam the client calls: hold a slot for one request, and report how it went."""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit | None]:
        """Wait for permission to send one request, and hold an in-flight place while it runs."""
        yield None

    def on_send(self, permit: Permit | None) -> Permit | None:
        """Tell the limiter a request leaves now (after any work between slot and send)."""
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


class RateControl:
    """The rate to pace at, from what went through and what was throttled: no waiting, no I/O.

    ``RateControl(n)`` is a rate the user named: it starts at ``n``, never exceeds it, and backs
    off under it. ``RateControl(m, discover=True)`` finds the rate, never above ``m``: from
    START_RATE in slow start, or, given the rate a previous run found (``known``) above that,
    from that rate, in a gentler slow start: it is a hint, not a ceiling, and a low one is left
    in a second.
    """

    BETA = 0.85  # keep this share of the estimate on a throttle
    SCALE = 0.15  # the cubic's C, relative to the estimate, per s^3: ~1 s back to it after a cut
    GROWTH = 8.0  # slow start: calls/s added per call that went through
    HINT_GROWTH = 4.0  # the same from a remembered rate: doubles about every sixth of a second
    MEASURE = 0.25  # seconds: the shortest span between throttles that measures the gateway
    SLACK = 1  # calls added to a span's count, so that a short span errs high, not low
    IDLE = 0.1  # the share of a span the limiter may sit idle in for the span to measure

    def __init__(
        self,
        ceiling: float,
        *,
        discover: bool = False,
        known: float | None = None,
        min_rate: float = 0.5,
        adaptive: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        if not ceiling > 0 or (known is not None and not known > 0):
            raise ValueError("rate must be > 0")
        self.ceiling = float(ceiling)
        self.min_rate = min(min_rate, self.ceiling)
        self.adaptive = adaptive
        self._clock = clock
        now = clock()
        self._slow_start = discover
        self._w_max = self.ceiling  # the estimate the cubic climbs back to
        self._epoch = now  # when the cubic started
        self._k = 0.0  # seconds from the epoch until the cubic is back at _w_max
        self._last_cut: float | None = None
        self._sent = 0  # calls let through so far: a permit's number
        self._empty: deque[Permit] = deque(maxlen=8)  # the calls of the last cuts
        self._refused: list[int] = []  # numbers of the calls throttled, in order
        self._idle = 0.0  # seconds the limiter sat idle so far (a permit carries the sum)
        self._busy_since = -math.inf  # when it last came back from idle
        self._anchor: Permit | None = None  # the cut the span being measured starts at
        self._spans: list[tuple[Permit, Permit]] = []  # the cuts of each span measured
        self._growth = self.GROWTH  # slow start's, from START_RATE or from a remembered rate
        self.stats = LimiterStats()
        if discover and known is not None and known > START_RATE:
            # A hint, not a limit: the gateway may allow more today, or the run that found it
            # measured badly; from there the rate climbs on, more gently, until throttled. One
            # under START_RATE is no better than starting afresh (and is where slow start is slow).
            self._rate, self._growth = min(known, self.ceiling), self.HINT_GROWTH
        elif discover:
            self._rate = min(self.ceiling, START_RATE)
        else:
            self._rate = self.ceiling

    @property
    def rate(self) -> float:
        """Return the rate in force now."""
        return self.rate_at(self._clock())

    def rate_at(self, now: float) -> float:
        """Return the rate in force at ``now``, a time of this control's clock."""
        self._advance(now)
        return self._rate

    @property
    def slow_start(self) -> bool:
        """Whether the rate still doubles (discovering, and nothing throttled yet)."""
        return self._slow_start

    @property
    def measure(self) -> Measure | None:
        """Return the gateway's rate over every span measured between throttles, if any was."""
        if not self._spans:
            return None
        # Counted now, not at the cut: the answers to calls still in flight then are in since.
        calls = sum(self._passed(start, end) + self.SLACK for start, end in self._spans)
        seconds = sum(end.sent_at - start.sent_at for start, end in self._spans)
        return Measure(calls / seconds, seconds, len(self._spans))

    @property
    def found(self) -> float | None:
        """Return the gateway's rate as measured between its throttles, if it was."""
        measure = self.measure
        return None if measure is None else measure.rate

    def sent(self, now: float) -> Permit:
        """Return the permit of one call let through at ``now``: its number and the rate then."""
        self._sent += 1
        self.stats.acquired += 1
        return Permit(now, self.rate_at(now), self._sent, self._idle, self._busy_since)

    def idle(self, seconds: float) -> None:
        """Count time the limiter had no call queued: a span across it measures our own pace."""
        self._idle += seconds
        self._busy_since = self._clock()

    def succeeded(self, permit: Permit | None = None) -> None:
        """Count a call that went through; in slow start, raise the rate."""
        del permit  # what went through is counted as 'not throttled' (see _measured)
        self.stats.succeeded += 1
        if self.adaptive and self._slow_start:
            self._rate = min(self.ceiling, self._rate + self._growth)

    def throttled(self, permit: Permit | None = None) -> None:
        """Cut the rate under the one the throttled call was sent at, once per round trip."""
        self.stats.throttled += 1
        if permit is not None:
            bisect.insort(self._refused, permit.number)
        if not self.adaptive:
            return
        now = self._clock()
        self._advance(now)
        if self._last_cut is not None:
            # Without a permit, a throttle more than a second after the last cut is news.
            sent_at = permit.sent_at if permit is not None else now - 1.0
            if sent_at < self._last_cut:
                return  # sent before the last cut: news about a rate already left
        estimate = self._rate
        if permit is not None:
            estimate = min(estimate, permit.rate)
            measured = self._measured(permit)
            if measured is not None:
                estimate = min(estimate, measured)
            self._record(permit)
            self._empty.append(permit)
        self.stats.decreases += 1
        self._cut_to(now, estimate)
        log.debug("throttled: estimate %.1f calls/s, rate now %.1f", estimate, self._rate)

    def _cut_to(self, now: float, estimate: float) -> None:
        """Drop under the estimate and start the cubic back up to it."""
        self._slow_start = False
        self._w_max = estimate
        self._epoch = now
        self._k = ((1 - self.BETA) / self.SCALE) ** (1 / 3)
        self._rate = max(self.min_rate, estimate * self.BETA)
        self._last_cut = now

    def _measured(self, permit: Permit) -> float | None:
        """Return the rate the gateway let calls through at, up to this throttled call.

        The gateway's bucket was empty when each throttled call reached it, so between two of
        them it let through exactly its rate: the calls sent in between and not throttled, over
        the time between. A call not answered yet counts as let through, and SLACK is added, so
        the measure errs high rather than low. The span starts at the latest earlier cut at least
        MEASURE seconds back, else at the last one; a span with an idle gap is not taken.
        """
        start = None
        for earlier in reversed(self._empty):
            if not self._steady(earlier, permit):
                break
            start = earlier
            if permit.sent_at - earlier.sent_at >= self.MEASURE:
                break
        if start is None:
            return None
        return (self._passed(start, permit) + self.SLACK) / (permit.sent_at - start.sent_at)

    def _record(self, permit: Permit) -> None:
        """Add the span from the last cut measured to this one to what the run found.

        Spans do not overlap, each lasts MEASURE seconds at least (a shorter one runs on to a
        later cut), and one with an idle gap is dropped: the next span starts here. Nor does a
        span start in the burst that follows an idle gap: calls that leave at once reach the
        gateway in any order, and some sent after the throttled one still find tokens there.
        """
        start = self._anchor
        settled = start is not None and start.sent_at - start.busy_since >= self.MEASURE
        if start is None or not settled or not self._steady(start, permit):
            self._anchor = permit
        elif permit.sent_at - start.sent_at >= self.MEASURE:
            self._spans.append((start, permit))
            self._anchor = permit

    def _steady(self, start: Permit, end: Permit) -> bool:
        """Whether calls were queued behind the limiter from one call to the other, near enough."""
        span = end.sent_at - start.sent_at
        return span > 0 and end.idle - start.idle <= self.IDLE * span

    def _passed(self, start: Permit, end: Permit) -> int:
        """Return how many calls after ``start`` up to ``end`` were not throttled."""
        refused = bisect.bisect_right(self._refused, end.number) - bisect.bisect_right(
            self._refused, start.number
        )
        return end.number - start.number - refused

    def _advance(self, now: float) -> None:
        if not self.adaptive or self._slow_start or self._last_cut is None:
            return
        # W(t) = W_max (1 + C (t - K)^3): concave up to the estimate, flat there, then convex.
        target = self._w_max * (1 + self.SCALE * (now - self._epoch - self._k) ** 3)
        self._rate = min(self.ceiling, max(self.min_rate, target, self._rate))


class AdaptiveRateLimiter(Limiter):
    """Calls paced at the rate ``RateControl`` sets, with a burst and a cap on calls in flight.

    Scheduling is GCRA (a token bucket kept as one timestamp): callers queue in order and each
    leaves when the bucket holds a token at the moment it wakes, so calls go at exactly the rate
    even after the event loop stalls. ``rate`` is the ceiling; with ``discover`` the limiter
    finds the gateway's limit under it (from ``known``, the rate a previous run found, if any).
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
        self._clock = clock
        self._sleep = sleep
        self._tat = clock()  # theoretical arrival time of the next call (GCRA) ...
        self._tat_rate = self.control.rate  # ... reckoned at this rate
        self._turn = asyncio.Lock()  # FIFO: callers leave in the order they came
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
            gap = now - max(self._idle_from, self._tat)
            if gap > 0:
                self.control.idle(gap)
        self._queued += change
        if self._queued == 0:
            self._idle_from = now

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
                if slept and late >= interval:
                    # A stall: the loop was busy, nothing left, and the gateway's bucket refilled.
                    self.control.idle(late)
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
        try:
            async with self._in_flight:
                permit = await self.acquire()
                self._queue(-1)
                queued = False
                yield permit
        finally:
            if queued:
                self._queue(-1)

    def on_send(self, permit: Permit | None) -> Permit | None:
        """Return the permit stamped with the time its request really leaves."""
        return None if permit is None else dataclasses.replace(permit, sent_at=self._clock())

    def on_success(self, permit: Permit | None = None) -> None:
        """Count the call; in slow start, raise the rate."""
        self.control.succeeded(permit)

    def on_throttle(self, permit: Permit | None = None) -> None:
        """Cut the rate under the one the throttled call left at, and hold the next call back."""
        cuts = self.stats.decreases
        self.control.throttled(permit)
        if self.stats.decreases > cuts:
            # The gateway just said its bucket is empty: so is ours, the next call waits.
            now = self._clock()
            self._tat = max(self._tat, now + self.burst / self._rescale(now))
