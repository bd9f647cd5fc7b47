"""Which chunk failures Prefect may retry: a table, like the error rules."""

from __future__ import annotations

import pytest
from prefect.states import Completed, Failed

from fleet.errors import (
    AmbiguousError,
    InventoryError,
    LeaseLost,
    LedgerConflict,
    LedgerError,
    PermanentError,
    RolloutError,
)
from flows.tasking import infrastructure_only

RETRY = [
    (LedgerError("database is locked"), True),  # the database hiccupped: safe to rerun
    (RuntimeError("a bug, or the machine"), True),  # unexpected: safe to rerun
    (OSError("too many open files"), True),
    (LedgerConflict("a row changed under us"), False),  # someone else's state: stop
    (LeaseLost("taken over"), False),  # another run has the rollout: stop
    (PermanentError("refused", status=400), False),  # NCP's verdict: a retry cannot change it
    (AmbiguousError("unknown"), False),
    (RolloutError("names taken"), False),
    (InventoryError([]), False),
]


@pytest.mark.parametrize(("error", "retried"), RETRY)
def test_only_failures_a_rerun_can_cure_are_retried(error: Exception, retried: bool) -> None:
    """A chunk is retried after an infrastructure failure, never after a verdict."""
    assert infrastructure_only(None, None, Failed(data=error)) is retried


def test_a_completed_chunk_is_not_retried() -> None:
    """Only failures are retried."""
    assert infrastructure_only(None, None, Completed(data=3)) is False
