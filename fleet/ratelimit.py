"""Client-side rate limiting: a token bucket that backs off on throttling and recovers like CUBIC.

Written here rather than taken from aiolimiter: that library reads the event loop's clock and has
no way to change its rate under feedback, and both are the point of this one. The clock and the
sleep are injected, so tests run it on a fake clock without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = ["AdaptiveRateLimiter", "Limiter", "LimiterStats"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class LimiterStats:
    """What the limiter has seen: calls let through, throttles, rate decreases."""

    acquired: int = 0
    throttled: int = 0
    decreases: int = 0
    waited_seconds: float = 0.0


class Limiter:
    """The seam the client calls: hold a slot for one request, and report how it went."""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for permission to send one request, and hold an in-flight place while it runs."""
        yield

    def on_success(self) -> None:
        """Tell the limiter a request went through."""

    def on_throttle(self) -> None:
        """Tell the limiter the gateway answered 'too fast'."""


class AdaptiveRateLimiter(Limiter):
    """A rate (calls/s) with a burst and a cap on calls in flight, adapting to throttling.

    Scheduling is GCRA (a token bucket kept as one timestamp): callers queue in order and each
    leaves when the bucket holds a token at the moment it wakes, so calls go at exactly the rate
    even after the event loop stalls. On a throttle the rate
    drops multiplicatively (at most once per cool-down, since one burst of 429s is one signal); it
    then grows back along a cubic curve towards the rate where it was throttled and, past it,
    slowly on to the configured ceiling (the CUBIC scheme boto3's adaptive mode uses).
    """

    BETA = 0.7  # keep 70% of the rate on a throttle
    SCALE = 0.4  # CUBIC's C: how fast the curve climbs back, in calls/s per s^3

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        max_in_flight: int = 16,
        min_rate: float = 0.5,
        adaptive: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1 or max_in_flight < 1:
            raise ValueError("rate must be > 0, burst and max_in_flight at least 1")
        self.max_rate = float(rate)
        self.min_rate = min(min_rate, self.max_rate)
        self.burst = burst
        self.adaptive = adaptive
        self._clock = clock
        self._sleep = sleep
        self._rate = self.max_rate
        self._tat = clock()  # theoretical arrival time of the next call (GCRA)
        self._turn = asyncio.Lock()  # FIFO: callers leave in the order they came
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._w_max = self.max_rate  # rate at the last throttle
        self._last_throttle: float | None = None
        self.stats = LimiterStats()

    @property
    def rate(self) -> float:
        """Return the rate in force now, after any back-off and recovery."""
        self._recover(self._clock())
        return self._rate

    async def acquire(self) -> None:
        """Wait until the rate allows one more call."""
        # One caller at a time decides when it may leave, and only leaves once the bucket has a
        # token at the moment it wakes: after a stall of the event loop, late callers do not all
        # leave at once on the strength of reservations made before the stall.
        async with self._turn:
            while True:
                now = self._clock()
                self._recover(now)
                interval = 1.0 / self._rate
                # Theoretical arrival time (GCRA). A caller that wakes a little late (timer
                # granularity, a busy loop) keeps its slot, or the lateness would add up into a
                # lower rate; after a longer gap the bucket starts afresh from now.
                late = now - self._tat
                tat = self._tat if late < interval else now
                allowed_at = tat - (self.burst - 1) * interval
                if allowed_at <= now:
                    self._tat = tat + interval
                    self.stats.acquired += 1
                    return
                self.stats.waited_seconds += allowed_at - now
                await self._sleep(allowed_at - now)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a place in flight and for the rate, then hold the place until done."""
        async with self._in_flight:
            await self.acquire()
            yield

    def on_success(self) -> None:
        """Let the rate keep recovering (recovery is driven by time, so nothing to do)."""

    def on_throttle(self) -> None:
        """Cut the rate, once per cool-down, and remember where the ceiling was."""
        self.stats.throttled += 1
        if not self.adaptive:
            return
        now = self._clock()
        self._recover(now)
        cooldown = max(1.0, 2.0 / self._rate)
        if self._last_throttle is not None and now - self._last_throttle < cooldown:
            return
        self._w_max = self._rate
        self._rate = max(self.min_rate, self._rate * self.BETA)
        self._last_throttle = now
        self.stats.decreases += 1
        # The gateway just said its bucket is empty: so is ours, the next call waits an interval.
        self._tat = max(self._tat, now + self.burst / self._rate)

    def _recover(self, now: float) -> None:
        if self._last_throttle is None or self._rate >= self.max_rate:
            return
        # CUBIC: W(t) = C (t - K)^3 + W_max, with K the time to climb back to W_max.
        k = (self._w_max * (1 - self.BETA) / self.SCALE) ** (1 / 3)
        t = now - self._last_throttle
        target = self.SCALE * (t - k) ** 3 + self._w_max
        self._rate = min(self.max_rate, max(self.min_rate, target, self._rate))
