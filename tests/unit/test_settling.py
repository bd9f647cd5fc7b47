"""When a create's outcome is unknown: the window rule, as a table."""

from __future__ import annotations

import pytest

from fleet.settling import Verdict, epoch, verdict_of

WINDOW, PATIENCE = 60.0, 50.0
SENT = 1_000.0

# (listed?, look-up began at, now, verdict). None: the look-up failed.
ROWS = [
    (True, SENT + 1, SENT + 1, Verdict.FOUND),  # listed: found, whenever
    (True, SENT + 500, SENT + 500, Verdict.FOUND),
    (False, SENT + 1, SENT + 2, Verdict.WAIT),  # not listed yet, too early to trust it
    (False, SENT + 59.9, SENT + 61, Verdict.WAIT),  # began a moment too early: not trusted
    (False, SENT + 60, SENT + 61, Verdict.ABSENT),  # began a window after the send: trusted
    (None, SENT + 70, SENT + 70, Verdict.WAIT),  # the look-up failed: try again
    (None, SENT + 109.9, SENT + 109.9, Verdict.WAIT),
    (None, SENT + 110, SENT + 110, Verdict.UNKNOWN),  # failing past window + patience: give up
    (False, SENT + 30, SENT + 110, Verdict.UNKNOWN),  # a stale early 'no' is never trusted
]


@pytest.mark.parametrize(("listed", "looked_at", "now", "verdict"), ROWS)
def test_not_listed_is_trusted_only_a_window_after_the_send(
    listed: bool | None, looked_at: float, now: float, verdict: Verdict
) -> None:
    """'Not listed' means 'not created' only for a look-up that began a window after the send."""
    assert verdict_of(listed, looked_at, SENT, now, WINDOW, PATIENCE) is verdict


# A rerun settling a create sent long ago began looking at SENT + 3,600: (listed?, now, verdict).
RERUN = [
    (None, SENT + 3_600, Verdict.WAIT),  # its first look-up failed: not given up at once
    (None, SENT + 3_649.9, Verdict.WAIT),
    (None, SENT + 3_650, Verdict.UNKNOWN),  # failing for the whole patience: given up
    (False, SENT + 3_600, Verdict.ABSENT),
]


@pytest.mark.parametrize(("listed", "now", "verdict"), RERUN)
def test_a_rerun_gives_look_ups_its_patience_from_when_it_began_looking(
    listed: bool | None, now: float, verdict: Verdict
) -> None:
    """An old unsettled create is given up on only after its look-ups failed for the patience."""
    assert verdict_of(listed, now, SENT, now, WINDOW, PATIENCE, since=SENT + 3_600) is verdict


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
