"""The rate limiter on a fake clock: pacing, slow start, cuts, CUBIC, rollouts in virtual time."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest

from fleet.ncp.ratelimit import START_RATE, AdaptiveRateLimiter, Permit, RateControl
from fleet.simulator.gateway import TokenBucket
from tests.support.clock import FakeClock
from tests.support.virtual_time import Rollout, gateway_rollout, run_virtual


async def _release_times(limiter: AdaptiveRateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire()
        times.append(clock.now)
    return times


@pytest.mark.anyio
async def test_paces_calls_at_the_rate_after_the_burst(clock: FakeClock) -> None:
    """Calls beyond the burst leave exactly 1/rate apart."""
    limiter = AdaptiveRateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    times = await _release_times(limiter, clock, 13)
    start = times[0]
    assert times[:3] == [start] * 3  # the burst goes at once
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(times[2:])]
    assert gaps == [0.1] * 10


@pytest.mark.anyio
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


@pytest.mark.anyio
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


@pytest.mark.anyio
async def test_a_stall_or_a_gap_with_nothing_queued_counts_as_idle(clock: FakeClock) -> None:
    """Time the limiter sent nothing though the rate allowed it is carried by the next permit."""
    stall = [1.0]

    async def late_sleep(seconds: float) -> None:
        await clock.sleep(seconds + (stall.pop() if stall else 0.0))

    limiter = AdaptiveRateLimiter(10, burst=1, clock=clock, sleep=late_sleep)
    first, stalled = [await limiter.acquire() for _ in range(2)]  # the second wakes 1 s late
    paced = await limiter.acquire()  # queued, on time: no idle
    clock.now += 5.0  # nothing to send for 5 s
    after_gap = await limiter.acquire()
    assert first.idle == 0.0 and stalled.idle == pytest.approx(1.0)
    assert paced.idle == stalled.idle and after_gap.idle == pytest.approx(1.0 + 4.9)


@pytest.mark.anyio
async def test_a_stall_shorter_than_the_leaving_burst_is_not_idle(clock: FakeClock) -> None:
    """A busy machine's short stalls (a clump the burst takes) still let the rate be measured."""
    stalls = {3: 0.6, 6: 1.5}  # the third sleep overruns by 0.6 s, the sixth by 1.5 s
    sleeps = itertools.count(1)

    async def late_sleep(seconds: float) -> None:
        await clock.sleep(seconds + stalls.get(next(sleeps), 0.0))

    # At 10/s with burst 5, three may leave at once: a stall is idle from 0.3 s late.
    limiter = AdaptiveRateLimiter(10, burst=5, clock=clock, sleep=late_sleep)
    permits = [await limiter.acquire() for _ in range(14)]
    left = [round(p.sent_at - 1_000.0, 9) for p in permits]
    assert left[6] == 0.8 and left[12] == 2.5  # the two stalls
    assert [p.idle for p in permits[:12]] == [0.0] * 12  # 0.2 s late: a clump, not idle
    assert permits[12].idle == pytest.approx(1.1)  # 1.1 s late: the gateway's bucket refilled


@pytest.mark.anyio
async def test_waking_a_little_late_does_not_lower_the_rate(clock: FakeClock) -> None:
    """Timers that fire a millisecond late cost nothing: 100 calls at 100/s still take ~1 s."""

    async def sloppy_sleep(seconds: float) -> None:
        await clock.sleep(seconds + 0.001)

    limiter = AdaptiveRateLimiter(100, burst=1, clock=clock, sleep=sloppy_sleep)
    for _ in range(101):
        await limiter.acquire()
    assert clock.now - 1_000.0 == pytest.approx(1.0, abs=0.002)


@pytest.mark.anyio
async def test_requests_admitted_together_leave_one_interval_apart(clock: FakeClock) -> None:
    """A burst admitted at once and held up together (one commit) leaves at most half at once."""
    limiter = AdaptiveRateLimiter(100, burst=6, clock=clock, sleep=clock.sleep)
    admitted = [await limiter.acquire() for _ in range(6)]
    assert {p.sent_at for p in admitted} == {1_000.0}  # the burst is admitted at once
    clock.advance(0.05)  # the work between admission and the send took 50 ms, for all six
    left = []
    for permit in admitted:
        sent = await limiter.depart(permit)
        assert sent is not None
        left.append(round(sent.sent_at - 1_000.0, 9))
    assert left == [0.05, 0.05, 0.05, 0.06, 0.07, 0.08]


@pytest.mark.anyio
async def test_a_request_alone_on_its_way_leaves_at_once(clock: FakeClock) -> None:
    """Calls one after another (a preflight's reads) are paced by admission alone, as before."""
    limiter = AdaptiveRateLimiter(10, burst=5, clock=clock, sleep=clock.sleep)
    left = []
    for _ in range(5):
        async with limiter.slot() as permit:
            sent = await limiter.depart(permit)
            assert sent is not None
            left.append(sent.sent_at - 1_000.0)
            clock.advance(0.01)  # its answer
    assert left == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])  # the burst, not 10/s


@pytest.mark.anyio
async def test_leaving_late_makes_up_the_turns_missed(clock: FakeClock) -> None:
    """Each wake 3 ms late (a busy loop) at 200/s: 201 requests still leave within ~1 s."""

    async def late_sleep(seconds: float) -> None:
        await clock.sleep(seconds + 0.003)

    limiter = AdaptiveRateLimiter(200, burst=5, clock=clock, sleep=late_sleep)
    for _ in range(201):
        await limiter.depart(None)
    assert clock.now - 1_000.0 == pytest.approx(1.0, abs=0.01)


def test_a_sparse_throttle_costs_little_and_a_dense_one_cuts(clock: FakeClock) -> None:
    """Past slow start, a throttle after 1% or fewer of the calls cuts to GENTLE, else to BETA."""
    control = RateControl(200, clock=clock)
    for _ in range(RateControl.SPARSE):
        clock.advance(0.005)
        control.succeeded(control.sent(clock.now))
    control.throttled(control.sent(clock.now))  # the first in 100 calls: jitter, say
    assert control.rate == pytest.approx(200 * RateControl.GENTLE)
    assert control.rate_at(clock.now + 0.6) == pytest.approx(200, rel=0.005)  # back in 0.6 s
    for _ in range(10):
        clock.advance(0.005)
        control.succeeded(control.sent(clock.now))
    control.throttled(control.sent(clock.now))  # another after only ten: too fast
    assert control.rate == pytest.approx(200 * RateControl.BETA, rel=0.05)
    assert control.stats.sparse == 1 and control.stats.decreases == 2


def test_a_named_rate_starts_at_its_ceiling_and_never_passes_it(clock: FakeClock) -> None:
    """A rate the user names is where it starts, and calls that go through do not raise it."""
    control = RateControl(40, clock=clock)
    for _ in range(100):
        control.succeeded(control.sent(clock.now))
    assert control.rate == 40 and not control.slow_start


def test_discovery_starts_low_and_doubles_while_nothing_is_throttled(clock: FakeClock) -> None:
    """Slow start: from START_RATE, each call that goes through adds GROWTH, up to the ceiling."""
    control = RateControl(100, discover=True, clock=clock)
    assert control.rate == START_RATE and control.slow_start
    control.succeeded(control.sent(clock.now))
    assert control.rate == START_RATE + RateControl.GROWTH
    for _ in range(50):
        control.succeeded(control.sent(clock.now))
    assert control.rate == 100  # the ceiling (--max-rate) holds


def test_a_throttle_ends_slow_start_under_the_rate_its_call_left_at(clock: FakeClock) -> None:
    """The cut is taken from the rate the throttled call was sent at, not the one grown since."""
    control = RateControl(1_000, discover=True, clock=clock)
    for _ in range(10):
        control.succeeded(control.sent(clock.now))
    permit = control.sent(clock.now)  # sent at 90/s
    for _ in range(10):
        control.succeeded(control.sent(clock.now))  # grown to 170/s since
    control.throttled(permit)
    assert not control.slow_start
    assert control.rate == pytest.approx(90 * RateControl.BETA)
    assert control.found is None  # one throttle measures nothing yet


@pytest.mark.parametrize(
    ("sent_after_cut", "cuts"),
    [
        (-0.01, 1),  # sent before the first cut: old news, counted only
        (0.0, 2),  # sent at the cut, at the new rate: news
        (0.05, 2),  # sent after: news
    ],
)
def test_one_cut_per_round_trip(clock: FakeClock, sent_after_cut: float, cuts: int) -> None:
    """Only a throttled call sent at or after the last cut cuts again; the others are counted."""
    control = RateControl(100, clock=clock)
    early = [control.sent(clock.now) for _ in range(3)]
    clock.now += 0.01
    control.throttled(control.sent(clock.now))
    late = control.sent(clock.now + sent_after_cut)
    clock.now += 0.1
    for permit in early:
        control.throttled(permit)
    control.throttled(late)
    assert control.stats.decreases == cuts and control.stats.throttled == 5


def test_without_permits_a_burst_of_throttles_is_one_signal(clock: FakeClock) -> None:
    """Callers that pass no permit get at most one cut a second: one burst of 429s, one signal."""
    control = RateControl(100, clock=clock)
    for _ in range(3):
        control.throttled()
    assert control.stats.decreases == 1 and control.rate == pytest.approx(85)
    clock.now += 0.5
    control.throttled()
    assert control.stats.decreases == 1
    clock.now += 0.6
    control.throttled()
    assert control.stats.decreases == 2


@pytest.mark.parametrize(
    ("answered", "found"),
    [
        (99, 100.0),  # every call between the two throttles went through: 99 + SLACK in 1 s
        (90, 100.0),  # nine not answered yet: counted as let through, to err high
    ],
)
def test_the_rate_between_two_throttles_is_the_gateways(
    clock: FakeClock, answered: int, found: float
) -> None:
    """From one throttle to the next, the calls not throttled are what the gateway allows."""
    control = RateControl(200, clock=clock)
    control.throttled(control.sent(clock.now))
    assert control.found is None
    permits = []
    for _ in range(100):  # 100 calls in one second
        clock.now += 0.01
        permits.append(control.sent(clock.now))
    for permit in permits[:answered]:
        control.succeeded(permit)
    control.throttled(permits[-1])
    assert control.found == pytest.approx(found)
    assert control.rate == pytest.approx(found * RateControl.BETA)
    assert control.measure is not None and control.measure.seconds == pytest.approx(1.0)


@pytest.mark.parametrize("idle", [0.2, 5.0])
def test_a_span_with_an_idle_gap_measures_nothing(clock: FakeClock, idle: float) -> None:
    """Between two throttles with the limiter idle a while (nothing queued), nothing is found."""
    control = RateControl(200, clock=clock)
    control.throttled(control.sent(clock.now))
    for i in range(20):  # 20 calls in one second, then a wait with nothing to send
        clock.now += 0.05
        if i == 10:
            control.idle(idle)
        control.succeeded(control.sent(clock.now))
    control.throttled(control.sent(clock.now))
    assert control.found is None and control.measure is None
    assert control.rate == pytest.approx(200 * RateControl.BETA)  # cut from the rate sent at


def test_spans_are_summed_and_a_short_one_runs_on_to_the_next_throttle(clock: FakeClock) -> None:
    """The found rate adds up the steady spans between cuts, each at least MEASURE seconds."""
    control = RateControl(200, clock=clock)
    control.throttled(control.sent(clock.now))
    for seconds in (0.1, 0.3, 0.6):  # 100 calls/s let through, cuts 0.1, 0.4 and 1.0 s in
        for _ in range(round(100 * seconds)):
            clock.now += 0.01
            control.succeeded(control.sent(clock.now))
        control.throttled(control.sent(clock.now))
    measure = control.measure
    assert measure is not None and measure.spans == 2
    assert measure.seconds == pytest.approx(1.0)
    assert measure.rate == pytest.approx((100 + 2 * RateControl.SLACK) / 1.0)


def test_the_rate_climbs_back_along_a_cubic_and_flattens_under_the_estimate(
    clock: FakeClock,
) -> None:
    """After a cut the rate rises, quickly at first, flat near the estimate, then beyond it."""
    control = RateControl(200, clock=clock)
    control.throttled(Permit(clock.now, 100.0, 1))  # a call sent at 100 calls/s, throttled
    assert control.rate == pytest.approx(85)
    seen = []
    for _ in range(30):
        clock.now += 0.1
        seen.append(control.rate)
    assert seen == sorted(seen)  # never drops without a throttle
    k = round(10 * ((1 - RateControl.BETA) / RateControl.SCALE) ** (1 / 3))
    assert seen[k - 1] == pytest.approx(100, abs=0.5)  # back at the estimate after K seconds
    assert seen[k + 2] < 101  # and flat there for a while
    assert seen[-1] > 110  # before probing above it


@dataclass(frozen=True)
class Case:
    """One rollout against a token-bucket gateway, and what the limiter must achieve."""

    gateway: float  # calls/s the gateway allows
    told: float | None  # calls/s the user named (None: --rate auto)
    servers: int
    at_least: float  # servers/s, as a share of the gateway's rate
    throttled_at_most: float  # share of calls answered 429


CASES = {
    "auto at 50/s": Case(50, None, 2_000, 0.95, 0.03),
    "auto at 200/s": Case(200, None, 2_000, 0.93, 0.02),
    "told the rate, 50/s": Case(50, 50, 1_000, 0.97, 0.0),
    "told the rate, 200/s": Case(200, 200, 1_000, 0.97, 0.0),
    "told twice the rate, 50/s": Case(50, 100, 1_000, 0.95, 0.03),
    "told 4x the rate, 50/s": Case(50, 200, 1_000, 0.95, 0.04),
    "told 4x the rate, 200/s": Case(200, 800, 1_000, 0.9, 0.03),
    "told half the rate": Case(50, 25, 500, 0.49, 0.0),
}


@dataclass(frozen=True)
class Tight:
    """A gateway with a burst of 5 and calls held up before the send, as the engine's claims do."""

    gateway: float
    told: float | None
    at_least: float
    throttled_at_most: float


TIGHT = {
    "told the rate, 200/s": Tight(200, 200, 0.98, 0.001),
    "told the rate, 500/s": Tight(500, 500, 0.98, 0.001),
    "auto at 200/s": Tight(200, None, 0.95, 0.02),
    "auto at 500/s": Tight(500, None, 0.95, 0.02),
}


@pytest.mark.parametrize("case", TIGHT.values(), ids=TIGHT.keys())
def test_calls_held_up_together_do_not_reach_a_tight_gateway_in_clumps(case: Tight) -> None:
    """Claims committed 8 at a time (20 ms each), 3 ms of jitter on the way: the rate holds."""

    async def main() -> Rollout:
        clock = asyncio.get_running_loop().time
        if case.told is None:
            limiter = AdaptiveRateLimiter(600, 5, discover=True, max_in_flight=48, clock=clock)
        else:
            limiter = AdaptiveRateLimiter(case.told, 5, max_in_flight=48, clock=clock)
        return await gateway_rollout(
            limiter,
            20_000,
            gateway_rate=case.gateway,
            gateway_burst=5,
            latency=0.005,
            jitter=0.015,
            workers=64,
            claims=(8, 0.02),
            transit=0.003,
        )

    done = run_virtual(main)
    assert done.per_second >= case.at_least * case.gateway, done
    assert done.throttled_share <= case.throttled_at_most, done


@pytest.mark.parametrize("gateway", [100.0, 200.0, 500.0])
def test_from_nothing_the_gateways_rate_is_reached_within_a_second(gateway: float) -> None:
    """Nothing remembered: slow start doubles until the first throttle, at R within a second."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveRateLimiter(600, 5, discover=True, max_in_flight=48, clock=loop.time)
        sent: list[float] = []
        depart = limiter.depart

        async def counted(permit: Permit | None) -> Permit | None:
            sent.append(loop.time())
            return await depart(permit)

        limiter.depart = counted  # type: ignore[method-assign]
        await gateway_rollout(
            limiter,
            int(3 * gateway),
            gateway_rate=gateway,
            gateway_burst=5,
            latency=0.005,
            jitter=0.015,
            workers=64,
            transit=0.003,
        )
        return [t - sent[0] for t in sent]

    times = run_virtual(main)
    first_at_r = next(i for i in range(30) if _sent_within(times, i / 10, 0.1) >= 0.1 * gateway)
    assert first_at_r <= 7, first_at_r  # one tenth of a second at the rate, 0.7 s in at the latest
    assert _sent_within(times, 1.0, 1.0) >= 0.9 * gateway  # and the next second near it


def _sent_within(times: list[float], start: float, seconds: float) -> int:
    return sum(1 for t in times if start <= t < start + seconds)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rollouts_against_a_token_bucket(case: Case) -> None:
    """In virtual time, against the simulator's own token bucket, each case meets its figures."""

    async def main() -> Rollout:
        clock = asyncio.get_running_loop().time
        if case.told is None:
            limiter = AdaptiveRateLimiter(250, 5, discover=True, clock=clock)
        else:
            limiter = AdaptiveRateLimiter(case.told, 5, clock=clock)
        return await gateway_rollout(limiter, case.servers, gateway_rate=case.gateway)

    done = run_virtual(main)
    assert done.per_second >= case.at_least * case.gateway, done
    assert done.throttled_share <= case.throttled_at_most, done
    if done.throttled:
        assert done.found == pytest.approx(case.gateway, rel=0.05), done


def test_a_known_rate_is_where_discovery_starts() -> None:
    """Given the rate a previous run found, discovery starts there, not from the bottom."""

    async def main() -> tuple[Rollout, float]:
        clock = asyncio.get_running_loop().time
        limiter = AdaptiveRateLimiter(250, 5, discover=True, known=200, clock=clock)
        first = limiter.rate
        return await gateway_rollout(limiter, 1_000, gateway_rate=200), first

    done, first = run_virtual(main)
    assert first == pytest.approx(200)
    assert done.per_second >= 0.95 * 200 and done.throttled_share <= 0.02, done


@pytest.mark.parametrize("known", [2.0, 20.0, 60.0])
def test_a_known_rate_is_a_hint_not_a_ceiling(known: float) -> None:
    """From a remembered rate far under the gateway's, the run climbs to it in a second or so.

    One under START_RATE is where a fresh run starts anyway: it starts there, in slow start.
    """

    async def main() -> tuple[Rollout, float]:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveRateLimiter(250, 5, discover=True, known=known, clock=loop.time)

        async def rate_later() -> float:
            await asyncio.sleep(2.0)
            return limiter.rate

        later = asyncio.create_task(rate_later())
        return await gateway_rollout(limiter, 1_000, gateway_rate=100), await later

    done, rate_after_2s = run_virtual(main)
    assert RateControl(250, discover=True, known=known).rate == max(known, START_RATE)
    assert rate_after_2s >= 0.8 * 100, rate_after_2s
    assert done.per_second >= 0.9 * 100, done  # 1,000 servers: 10 s at the gateway's rate


@pytest.mark.parametrize(
    ("waves", "gateway"),
    [((2, 14, 14), 30), ((2, 14, 14), 100), ((2, 50, 50), 100), ((2, 100, 200), 100)],
)
def test_a_staged_rollout_finds_the_gateways_rate_or_nothing(
    waves: tuple[int, ...], gateway: float
) -> None:
    """Waves with waits between them (a look every half second) never measure the waits."""

    async def main() -> float | None:
        clock = asyncio.get_running_loop().time
        limiter = AdaptiveRateLimiter(250, 16, discover=True, clock=clock)
        bucket = TokenBucket(gateway, 10, clock)
        for wave in waves:
            await gateway_rollout(limiter, wave, gateway_rate=gateway, bucket=bucket)
            for _ in range(10):  # waiting for the wave's servers to run
                await asyncio.sleep(0.5)
                await gateway_rollout(limiter, 1, gateway_rate=gateway, workers=1, bucket=bucket)
        return limiter.found_rate

    found = run_virtual(main)
    assert found is None or found == pytest.approx(gateway, rel=0.1), found


@pytest.mark.anyio
async def test_not_adaptive_keeps_the_rate(clock: FakeClock) -> None:
    """With adaptation off, throttles are counted but the rate stays as configured."""
    limiter = AdaptiveRateLimiter(20, adaptive=False, clock=clock, sleep=clock.sleep)
    limiter.on_throttle()
    assert limiter.rate == 20 and limiter.stats.throttled == 1


@pytest.mark.anyio
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
