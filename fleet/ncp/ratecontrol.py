"""The call rate's feedback law: what to pace at, from what went through and what was throttled.

NCP publishes no per-account rate limit, so the rate can be found (``--rate auto``), much as
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
  the limit, and an overestimate given by the user is left behind for good after the first cuts;
- a sparse throttle (one in SPARSE calls or fewer) is jitter on the way, or a rate a hair above
  the gateway's: the cut is GENTLE and quickly undone, and the span before it, which measured our
  own pace (the gateway's bucket had refilled), bounds nothing.

A rate remembered from an earlier run is a hint, not a ceiling: the control starts there (or at
START_RATE, if that is higher) and climbs on in a gentler slow start until throttled. A rate the
user names is a ceiling: it starts there, never exceeds it, and backs off under it the same way.
Pure, on an injected clock; ``ratelimit`` paces calls at its rate.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["START_RATE", "LimiterStats", "Measure", "Permit", "RateControl"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

START_RATE = 10.0  # calls/s a discovery starts from: the rate every run was given before


@dataclass(frozen=True, slots=True)
class Permit:
    """One call let through: when it left, and the rate in force then (its answer is read so)."""

    sent_at: float  # when it was let through, then (``depart``) when it really left
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
    sparse: int = 0  # cuts on a sparse throttle (gentle)
    waited_seconds: float = 0.0


class RateControl:
    """The rate to pace at, from what went through and what was throttled: no waiting, no I/O.

    ``RateControl(n)`` is a rate the user named: it starts at ``n``, never exceeds it, and backs
    off under it. ``RateControl(m, discover=True)`` finds the rate, never above ``m``: from
    START_RATE in slow start, or, given the rate a previous run found (``known``) above that,
    from that rate, in a gentler slow start: it is a hint, not a ceiling, and a low one is left
    in a second.
    """

    BETA = 0.85  # keep this share of the estimate on a throttle
    GENTLE = 0.97  # ... and this share on a sparse throttle: back at the estimate in 0.6 s
    SPARSE = 100  # calls through since the last cut that make the next throttle sparse (1%)
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

    def throttled(self, permit: Permit | None = None) -> bool:
        """Cut the rate under the one the throttled call was sent at, once per round trip.

        Returns whether it cut (the limiter then holds the next call back). A sparse throttle
        (SPARSE calls or more went through since the last cut, past slow start) says the
        gateway's bucket ran dry once, by jitter on the way or a rate a hair above its own: the
        cut is GENTLE, back in about half a second, and what went through since the last cut,
        which measured our own pace (the gateway's bucket had refilled), is not taken as its rate.
        """
        self.stats.throttled += 1
        if permit is not None:
            bisect.insort(self._refused, permit.number)
        if not self.adaptive:
            return False
        now = self._clock()
        self._advance(now)
        if self._last_cut is not None:
            # Without a permit, a throttle more than a second after the last cut is news.
            sent_at = permit.sent_at if permit is not None else now - 1.0
            if sent_at < self._last_cut:
                return False  # sent before the last cut: news about a rate already left
        estimate, beta = self._rate, self.BETA
        if permit is not None:
            estimate = min(estimate, permit.rate)
            measured = self._measured(permit)
            if not self._slow_start and self._since_last(permit) >= self.SPARSE:
                beta = self.GENTLE
                self.stats.sparse += 1
            elif measured is not None:
                estimate = min(estimate, measured)
            self._record(permit)
            self._empty.append(permit)
        self._cut_to(now, estimate, beta)
        log.debug("throttled: estimate %.1f calls/s, rate now %.1f", estimate, self._rate)
        return True

    def _cut_to(self, now: float, estimate: float, beta: float) -> None:
        """Drop to ``beta`` of the estimate and start the cubic back up to it."""
        self.stats.decreases += 1
        self._slow_start = False
        self._w_max = estimate
        self._epoch = now
        self._k = ((1 - beta) / self.SCALE) ** (1 / 3)
        self._rate = max(self.min_rate, estimate * beta)
        self._last_cut = now

    def _since_last(self, permit: Permit) -> int:
        """Return how many calls went through from the last cut (or the start) to this one."""
        last = self._empty[-1].number if self._empty else 0
        refused = bisect.bisect_left(self._refused, permit.number) - bisect.bisect_right(
            self._refused, last
        )
        return permit.number - last - 1 - refused

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
