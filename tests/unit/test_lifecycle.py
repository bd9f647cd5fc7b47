"""One life per server: the closed set of states, its moves, and NCP's clock, as tables."""

from __future__ import annotations

import pytest

from fleet.ncp.clock import NcpClock
from fleet.states import ENDED, INTENTS, KEPT, LIVE, MOVES, State
from fleet.watch.polling import Told
from tests.support.clock import FakeClock

# (from, to, allowed): the moves a report could be wrong about if the table allowed them.
MOVE_ROWS = [
    (State.TERMINATING, State.TERMINATED, True),  # our terminate, then gone
    (State.RUNNING, State.TERMINATED, False),  # never terminated without the intent first
    (State.CREATED, State.GONE, True),  # gone out of band
    (State.TERMINATED, State.RUNNING, False),  # an ended server never runs again
    (State.GONE, State.RUNNING, False),
    (State.RUNNING, State.DEPOSED, True),  # a replace begins
    (State.DEPOSED, State.TERMINATING, True),  # its replacement runs: retired
    (State.DEPOSED, State.RUNNING, True),  # its replacement failed: restored
    (State.RESIZING, State.RUNNING, True),  # resized
    (State.RESIZING, State.STOPPED, False),  # a resize's stop is not "stopped out of band"
    (State.STARTING, State.RUNNING, True),
    (State.TERMINATING, State.TERMINATING, False),  # an intent is never written over
    (State.TERMINATING, State.RUNNING, True),  # left: termination protection
]


@pytest.mark.parametrize(("start", "to", "allowed"), MOVE_ROWS)
def test_each_move_is_allowed_only_from_the_states_that_make_sense(
    start: State, to: State, allowed: bool
) -> None:
    """The ledger's compare-and-set reads one table: a server moves only where it makes sense."""
    assert (start in MOVES[to]) is allowed


def test_the_sets_of_states_say_what_exists_and_what_is_kept() -> None:
    """Live servers are billed; kept ones are the name's; ended ones are gone for good."""
    assert KEPT < LIVE and INTENTS - {State.STARTING, State.RESIZING} <= LIVE - KEPT
    assert not LIVE & ENDED
    assert {s for s in State if not s.made} == {State.PLANNED, State.IN_FLIGHT, State.FAILED}
    assert set(State) == LIVE | ENDED | {State.PLANNED, State.IN_FLIGHT, State.FAILED}


def test_ncps_clock_is_read_off_its_answers_and_never_overstated() -> None:
    """A send is stamped NCP's latest time, and its age judged by NCP's earliest: never early."""
    clock = FakeClock(100.0)
    ncp = NcpClock(clock)
    assert ncp.now() is None and ncp.latest() is None
    sent = clock.now
    clock.advance(0.2)  # the call's round trip
    ncp.observe(1_704_078_000.0, sent)  # an answer's Date: Mon, 01 Jan 2024 03:00:00 GMT
    assert ncp.now() == 1_704_078_000.0
    assert ncp.latest() == pytest.approx(1_704_078_000.0 + 1.0 + 0.2)
    clock.advance(30.0)  # this machine's wall clock may step; the monotonic one does not
    assert ncp.now() == pytest.approx(1_704_078_030.0)
    ncp.observe(None, clock.now)  # no Date, or an unreadable one: the last good one stands
    assert ncp.now() == pytest.approx(1_704_078_030.0)


def test_a_wait_says_what_it_waits_for_at_least_every_30_seconds() -> None:
    """The first round says it at once; then no more often than every 30 s, never less."""
    clock, said = FakeClock(0.0), list[str]()
    told = Told(said.append, clock)
    for _ in range(7):  # a round every 10 s, for a minute
        told(lambda: f"waiting at {clock.now:.0f}")
        clock.advance(10.0)
    assert said == ["waiting at 0", "waiting at 30", "waiting at 60"]
