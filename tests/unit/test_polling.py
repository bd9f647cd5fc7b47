"""The cadence of looks while servers boot, on a fake clock: seldom while booting, fast when due."""

from __future__ import annotations

import pytest

from fleet.watch.polling import Cadence, Poller
from tests.support.clock import FakeClock


@pytest.mark.parametrize(
    ("ages", "wait"),
    [
        ([0.0], 0.5),  # just created: as fast as allowed
        ([8.0, 2.0], 2.0),  # a quarter of the oldest's age
        ([100.0], 10.0),  # never longer than the poll interval
    ],
)
def test_until_one_is_ready_the_wait_is_a_quarter_of_the_oldest_age(
    ages: list[float], wait: float
) -> None:
    """With no boot seen yet, the first RUN is seen at most a quarter of its age late."""
    assert Cadence(0.5, 10.0).wait(ages) == pytest.approx(wait)


@pytest.mark.parametrize(
    ("ages", "wait"),
    [
        ([2.0], 8.0),  # due in 8 s: the next look then, not before
        ([12.0], 0.5),  # booted 10 s: 2 s overdue, a quarter of that is under the fastest
        ([9.9, 2.0], 0.5),  # one is about due: as fast as allowed
        ([30.0], 5.0),  # 20 s overdue: looked at a quarter of that later
        ([70.0], 10.0),  # and never longer than the poll interval
    ],
)
def test_once_a_boot_is_seen_the_next_look_is_when_the_next_server_is_due(
    ages: list[float], wait: float
) -> None:
    """A server is due once the shortest boot seen has passed since its create."""
    cadence = Cadence(0.5, 10.0)
    cadence.seen(11.0, ready=True)
    cadence.seen(10.0, ready=True)  # the shortest counts
    cadence.seen(3.0, ready=False)
    assert cadence.booted == 10.0
    assert cadence.wait(ages) == pytest.approx(wait)


def test_looks_stay_within_their_share_of_the_rate() -> None:
    """1,000 servers (10 calls a look) at 20 calls/s: a look every 2 s at most, a quarter of it."""
    cadence = Cadence(0.5, 10.0)
    assert cadence.wait([0.0], calls=10, rate=20.0) == pytest.approx(2.0)
    assert cadence.wait([0.0], calls=10, rate=1_000.0) == pytest.approx(0.5)


@pytest.mark.anyio
async def test_a_wait_ends_within_a_look_of_the_last_run(clock: FakeClock) -> None:
    """Ten servers created a second apart, booting 10 s: done 0.5 s after the last, in few looks."""
    created = [clock.now + i for i in range(10)]
    clock.advance(10.0)  # the creating is over when the wait begins
    booted = 10.0
    cadence = Cadence(0.5, 10.0)
    pending = set(range(10))
    looks = 0

    async def round_() -> bool:
        nonlocal looks
        looks += 1
        for i in list(pending):
            age = clock.now - created[i]
            cadence.seen(age, ready=age >= booted)
            if age >= booted:
                pending.discard(i)
        return not pending

    def next_wait() -> float:
        return cadence.wait([clock.now - created[i] for i in pending])

    poller = Poller(10.0, 600.0, clock, clock.sleep, cadence=next_wait)
    assert await poller.run(round_)
    last_run = created[-1] + booted
    assert last_run <= clock.now <= last_run + 0.5
    # A fixed look every 0.5 s from the start would take 20; every 10 s would end 10 s late.
    assert looks <= 14, looks
