"""Exit codes: one table of error types, read first match first."""

from __future__ import annotations

import pytest

from fleet.errors import (
    AmbiguousError,
    BindingError,
    ConfigError,
    InventoryError,
    LeaseHeld,
    LeaseLost,
    LedgerConflict,
    LedgerError,
    PermanentError,
    RolloutError,
    RunAborted,
)
from flows.cli.exits import exit_code

ROWS = [
    (InventoryError([]), 2),  # nothing was sent
    (ConfigError("no keys"), 2),
    (RolloutError("names taken"), 2),
    (LeaseHeld("r", "host pid 1", "then", "later"), 2),
    (BindingError("elsewhere"), 2),
    (LedgerError("corrupt"), 2),
    (LedgerConflict("row changed"), 2),
    (PermanentError("Authentication Failed", status=401), 2),  # keys refused: nothing sent
    (PermanentError("Forbidden", status=403), 2),
    (RunAborted("stopped part-way"), 1),  # the run went ahead, then stopped
    (LeaseLost("taken over"), 1),
    (PermanentError("limit", status=400, code="1015009"), 1),
    (AmbiguousError("timeout", status=504), 1),
    (RuntimeError("a bug"), 1),
]


@pytest.mark.parametrize(("error", "code"), ROWS)
def test_exit_code_says_whether_anything_was_sent(error: BaseException, code: int) -> None:
    """2 when nothing was sent (bad input or setup), 1 when the run went ahead and fell short."""
    assert exit_code(error) == code
