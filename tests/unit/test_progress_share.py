"""The terminal's progress bar counts this run's share from the rollout's counts alone."""

from __future__ import annotations

from dataclasses import replace

from fleet.ledger import RolloutCounts
from fleet.states import ServerStatus, State
from flows.cli.progress import _Share
from tests.support.records import record


def test_a_run_counts_only_what_was_not_settled_before_it_began() -> None:
    """Created before: not this run's; failed before: this run's only with --retry-failed."""
    before = [
        replace(record("a"), server_status=ServerStatus.RUN),
        record("b", "no quota"),
        replace(record("c"), state=State.PLANNED, instance_no=None),
    ]
    names = ["a", "b", "c", "d"]
    share = _Share(names, before, retry_failed=False)
    now = RolloutCounts(failed=2, running=2)  # a and c running, b and d failed
    assert share.count(now) == (2, 2, "1 created, 1 failed, 1 running (this run)")
    again = _Share(names, before, retry_failed=True)
    assert again.count(now)[:2] == (3, 3)


def test_done_never_passes_this_runs_total() -> None:
    """Rows outside the inventory that change meanwhile never push the bar past its end."""
    share = _Share(["x"], [], retry_failed=False)
    assert share.count(RolloutCounts(created=5)) == (
        1,
        1,
        "5 created, 0 failed, 0 running (this run)",
    )
