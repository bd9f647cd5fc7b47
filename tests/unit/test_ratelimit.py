"""The adaptive rate limiter, on a fake clock: exact pacing, back-off, CUBIC recovery."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from fleet.ratelimit import AdaptiveRateLimiter
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio


async def _release_times(limiter: AdaptiveRateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire()
        times.append(clock.now)
    return times


async def test_paces_calls_at_the_rate_after_the_burst(clock: FakeClock) -> None:
    """Calls beyond the burst leave exactly 1/rate apart."""
    limiter = AdaptiveRateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    times = await _release_times(limiter, clock, 13)
    start = times[0]
    assert times[:3] == [start] * 3  # the burst goes at once
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(times[2:])]
    assert gaps == [0.1] * 10


async def test_concurrent_callers_queue_in_order_without_exceeding_the_rate(
    clock: FakeClock,
) -> None:
    """Many callers at once are spread out: the n-th leaves at n/rate, not all together."""
    limiter = AdaptiveRateLimiter(5, burst=1, clock=clock, sleep=clock.sleep)
    left: list[tuple[int, float]] = []

    async def call(i: int) -> None:
        await limiter.acquire()
        left.append((i, round(clock.now - 1_000.0, 9)))

    await asyncio.gather(*(call(i) for i in range(5)))
    assert left == [(0, 0.0), (1, 0.2), (2, 0.4), (3, 0.6), (4, 0.8)]


async def test_a_stalled_loop_does_not_release_a_burst(clock: FakeClock) -> None:
    """Callers that wake late (the loop was busy) still leave one interval apart."""
    stall = [1.0]  # the first sleep overruns by a whole second

    async def late_sleep(seconds: float) -> None:
        await clock.sleep(seconds + (stall.pop() if stall else 0.0))

    limiter = AdaptiveRateLimiter(10, burst=1, clock=clock, sleep=late_sleep)
    left: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        left.append(round(clock.now - 1_000.0, 9))

    await asyncio.gather(*(call() for _ in range(4)))
    assert left == [0.0, 1.1, 1.2, 1.3]


async def test_waking_a_little_late_does_not_lower_the_rate(clock: FakeClock) -> None:
    """Timers that fire a millisecond late cost nothing: 100 calls at 100/s still take ~1 s."""

    async def sloppy_sleep(seconds: float) -> None:
        await clock.sleep(seconds + 0.001)

    limiter = AdaptiveRateLimiter(100, burst=1, clock=clock, sleep=sloppy_sleep)
    for _ in range(101):
        await limiter.acquire()
    assert clock.now - 1_000.0 == pytest.approx(1.0, abs=0.002)


async def test_throttle_cuts_the_rate_once_per_cooldown(clock: FakeClock) -> None:
    """A burst of 429s is one signal: the rate drops by 30% once, not once per answer."""
    limiter = AdaptiveRateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.on_throttle()
    limiter.on_throttle()
    limiter.on_throttle()
    assert limiter.rate == pytest.approx(70)
    assert limiter.stats.throttled == 3 and limiter.stats.decreases == 1
    clock.now += 0.5
    limiter.on_throttle()  # still inside the cool-down
    assert limiter.stats.decreases == 1


async def test_rate_recovers_along_a_cubic_to_the_ceiling(clock: FakeClock) -> None:
    """After a throttle the rate climbs back: quickly at first, flat near the old ceiling."""
    limiter = AdaptiveRateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.on_throttle()
    seen = []
    for _ in range(8):
        clock.now += 1
        seen.append(limiter.rate)
    assert seen == sorted(seen)  # never drops without a throttle
    assert 70 < seen[0] < 90
    assert seen[-1] == pytest.approx(100)  # K = cbrt(100*0.3/0.4) ~ 4.2 s to get back


async def test_repeated_throttles_settle_under_the_real_limit(clock: FakeClock) -> None:
    """Throttled whenever above 60/s, a limiter set to 100/s spends its time near 60/s."""
    limiter = AdaptiveRateLimiter(100, clock=clock, sleep=clock.sleep)
    rates = []
    for _ in range(600):  # 60 s in 0.1 s steps
        clock.now += 0.1
        if limiter.rate > 60:
            limiter.on_throttle()
        rates.append(limiter.rate)
    late = rates[200:]
    assert 40 < sum(late) / len(late) <= 60
    assert max(late) <= 61


async def test_not_adaptive_keeps_the_rate(clock: FakeClock) -> None:
    """With adaptation off, throttles are counted but the rate stays as configured."""
    limiter = AdaptiveRateLimiter(20, adaptive=False, clock=clock, sleep=clock.sleep)
    limiter.on_throttle()
    assert limiter.rate == 20 and limiter.stats.throttled == 1


async def test_in_flight_cap_holds_further_calls_until_one_finishes(clock: FakeClock) -> None:
    """With two places in flight, a third call starts only after one of the first two ends."""
    limiter = AdaptiveRateLimiter(1000, burst=10, max_in_flight=2, clock=clock, sleep=clock.sleep)
    release = asyncio.Event()
    started: list[int] = []

    async def call(i: int) -> None:
        async with limiter.slot():
            started.append(i)
            await release.wait()

    tasks = [asyncio.create_task(call(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    assert started == [0, 1]
    release.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2]


def test_rejects_nonsense_settings() -> None:
    """A zero rate or burst is a configuration error, said at once."""
    with pytest.raises(ValueError, match="rate"):
        AdaptiveRateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        AdaptiveRateLimiter(1, burst=0)
