"""The run's closing lines: what the user is told about the call rate."""

from __future__ import annotations

import pytest

from fleet.ledger import RolloutCounts
from fleet.report.summary import RolloutSummary


def summary(**rate: object) -> RolloutSummary:
    """Return a summary of a 16-server run with the given rate facts."""
    base: dict[str, object] = {
        "rollout": "demo",
        "results": "demo.csv",
        "counts": RolloutCounts(created=16),
        "servers": 16,
        "sent": 16,
        "settled": 0,
        "reconciled": 0,
        "adopted": 0,
        "changed": 0,
        "seconds": 1.0,
        "api_calls": 31,
        "throttled": 0,
        "unprocessed": 0,
        "ambiguous": 0,
        "lookups": 0,
        "retries": 0,
    }
    return RolloutSummary(**{**base, **rate})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "line"),
    [
        (
            {"rate_found": 49.94, "rate_seconds": 6.27, "throttled": 12},
            "call rate auto: the gateway allowed about 49.9 calls/s, measured over 6.3 s of "
            "steady sending between throttles (remembered for the next run)",
        ),
        (
            {"rate_asked": 20.0, "rate_found": 18.0, "rate_seconds": 0.5, "throttled": 3},
            "call rate 20/s: the gateway allowed about 18.0 calls/s, measured over 0.5 s of "
            "steady sending between throttles",
        ),
        (
            {"rate_final": 130.0},
            "call rate auto: never throttled; ended at 130.0 calls/s; nothing new remembered",
        ),
        # Throttles that measure nothing (one alone, or with idle gaps between): not "never".
        (
            {"rate_final": 110.5, "throttled": 4},
            "call rate auto: throttled 4x, never long enough while sending steadily to measure; "
            "ended at 110.5 calls/s; nothing new remembered",
        ),
        (
            {"rate_asked": 20.0, "rate_final": 17.0, "throttled": 1},
            "call rate 20/s: throttled 1x, never long enough while sending steadily to measure; "
            "ended at 17.0 calls/s",
        ),
    ],
)
def test_rate_line_says_what_was_learnt(rate: dict[str, object], line: str) -> None:
    """The rate line names a measured limit, or says why there is none."""
    assert summary(**rate).rate_line == line


def test_this_runs_line_counts_its_servers_never_sent() -> None:
    """A run that stopped part-way says how many of its servers it never sent."""
    from fleet.report.summary import RunCounts

    line = RunCounts(to_do=20, created=8, failed=4, skipped=3).line
    assert line == (
        "this run: 8 created, 0 settled, 4 failed, 0 unknown, 8 not sent, of 20 to do; "
        "3 skipped (done or failed before)"
    )
