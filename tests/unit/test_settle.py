"""When a create's outcome is unknown: the window rule, as a table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.create.settle import Pending, SendClocks, Settler, Sighting, sighting_of
from fleet.errors import RetryableError
from fleet.ownership import epoch
from tests.support.clock import FakeClock
from tests.support.engine import specs
from tests.support.records import record

WINDOW, PATIENCE = 60.0, 3
SENT = 1_000.0

# (listed?, look-up began at, failed look-ups in a row, sighting). None: the look-up failed.
ROWS = [
    (True, SENT + 1, 0, Sighting.FOUND),  # listed: found, whenever
    (True, SENT + 500, 0, Sighting.FOUND),
    (False, SENT + 1, 0, Sighting.WAIT),  # not listed yet, too early to trust it
    (False, SENT + 59.9, 0, Sighting.WAIT),  # began a moment too early: not trusted
    (False, SENT + 60, 0, Sighting.ABSENT),  # began a window after the send: trusted
    (False, SENT + 30, 0, Sighting.WAIT),  # an early 'no', however late it is read: look again
    (None, SENT + 70, 1, Sighting.WAIT),  # the look-up failed: try again
    (None, SENT + 70, 2, Sighting.WAIT),
    (None, SENT + 70, 3, Sighting.UNKNOWN),  # the third failure in a row: given up
    (None, SENT + 99_999, 1, Sighting.WAIT),  # hours later, one failure is still one failure
]


@pytest.mark.parametrize(("listed", "looked_at", "failures", "sighting"), ROWS)
def test_not_listed_is_trusted_only_a_window_after_the_send(
    listed: bool | None, looked_at: float, failures: int, sighting: Sighting
) -> None:
    """'Not listed' means 'not created' only for a look-up begun a window after the send."""
    assert sighting_of(listed, looked_at, SENT, WINDOW, failures, PATIENCE) is sighting


# A rerun settling a create the ledger stamped: NCP's clock ages it, else the ledger's.
AGES = [
    (SendClocks(ncp=5_000.0, ledger=9_999.0), 4_990.0, "2024-01-01T00:00:00+00:00", 10.0),
    (SendClocks(ncp=None, ledger=1_704_067_230.0), 4_990.0, "2024-01-01T00:00:00+00:00", 30.0),
    (SendClocks(ncp=5_000.0, ledger=1_704_067_230.0), None, "2024-01-01T00:00:00+00:00", 30.0),
    (SendClocks(ncp=4_000.0, ledger=0.0), 4_990.0, None, 0.0),  # never older than now
]


@pytest.mark.parametrize(("clocks", "sent_ncp", "sent_at", "age"), AGES)
def test_an_earlier_runs_send_is_aged_by_ncps_clock_where_it_was_stamped(
    clocks: SendClocks, sent_ncp: float | None, sent_at: str | None, age: float
) -> None:
    """A send stamped with NCP's Date is aged by NCP's clock: this machine's clock never counts."""
    r = replace(record("web-001"), sent_ncp=sent_ncp, sent_at=sent_at)
    assert clocks.age(r) == age


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-01T12:00:00+0900", 1_704_078_000.0),  # NCP's createDate
        ("2024-01-01T03:00:00.000+00:00", 1_704_078_000.0),  # the ledger's times
        ("", None),
        (None, None),
        ("not a time", None),
    ],
)
def test_times_from_ncp_and_the_ledger_read_alike(
    stamp: str | None, expected: float | None
) -> None:
    """NCP's createDate and the ledger's ISO times are compared on one scale."""
    assert epoch(stamp) == expected


class SlowLookups:
    """A client whose look-ups by name find nothing and take ``busy`` seconds of the clock."""

    def __init__(self, clock: FakeClock, busy: float, fail: bool = False) -> None:
        self.clock, self.busy, self.fail = clock, busy, fail
        self.calls = 0

    async def find_by_name(self, name: str, **_: object) -> list[object]:
        self.calls += 1
        self.clock.advance(self.busy)  # a busy machine: the answer is read long after it left
        if self.fail:
            raise RetryableError("busy", action="getServerInstanceList")
        return []


def pending(sent_at: float) -> Pending:
    (spec,) = specs(1)
    return Pending(spec, 1, sent_at, "", "75001")


@pytest.mark.anyio
async def test_a_busy_machine_never_gives_up_on_a_server_its_look_ups_never_judged() -> None:
    """A look-up begun before the window, read back long after: looked up again, never unknown."""
    clock = FakeClock(SENT)
    client = SlowLookups(clock, busy=500.0)
    settler = Settler(client, window=WINDOW, patience=3, clock=clock)  # type: ignore[arg-type]
    settler.add(pending(SENT))
    (first,) = await settler.round()
    assert first.sighting is Sighting.WAIT  # began at SENT, judged at SENT + 500: too early
    (second,) = await settler.round()
    assert second.sighting is Sighting.ABSENT  # this one began after the window


@pytest.mark.anyio
async def test_look_ups_are_given_up_on_after_so_many_failures_however_long_they_took() -> None:
    """Patience counts failed look-ups: three failures, whatever the clock did meanwhile."""
    clock = FakeClock(SENT + WINDOW)
    client = SlowLookups(clock, busy=10_000.0, fail=True)
    settler = Settler(client, window=WINDOW, patience=3, clock=clock)  # type: ignore[arg-type]
    settler.add(pending(SENT))
    sightings = [(await settler.round())[0].sighting for _ in range(3)]
    assert sightings == [Sighting.WAIT, Sighting.WAIT, Sighting.UNKNOWN]
    assert client.calls == 3
