"""What a teardown does with one server, given what NCP says of it: a table."""

from __future__ import annotations

import pytest

from fleet.ncp.client import ServerInstance
from fleet.options import TeardownOptions
from fleet.states import Operation, ServerStatus
from fleet.teardown import Action, next_action

KEEP = TeardownOptions()
LIFT = TeardownOptions(lift_protection=True)


def server(status: str, operation: str = "NULL", protected: bool = False) -> ServerInstance:
    return ServerInstance(
        "1", "web-001", ServerStatus(status), Operation(operation), "", "7", protected, "", {}
    )


ROWS = [
    (server("RUN"), 0, KEEP, Action.STOP),
    (server("NSTOP"), 0, KEEP, Action.TERMINATE),
    (server("FSTOP"), 0, KEEP, Action.TERMINATE),  # stuck in a failure: terminate it
    (server("SD_FL"), 0, KEEP, Action.TERMINATE),
    (server("RUN", "SHTDN"), 0, KEEP, Action.WAIT),  # an operation under way: let it finish
    (server("NSTOP", "TERMT"), 0, KEEP, Action.WAIT),
    (server("CREAT", "SETUP"), 0, KEEP, Action.WAIT),  # still being made
    (server("INIT"), 0, KEEP, Action.WAIT),
    (server("REPAIR"), 0, KEEP, Action.WAIT),  # a status NCP added since: wait, never guess
    (server("RUN", protected=True), 0, KEEP, Action.LEAVE),
    (server("RUN", protected=True), 0, LIFT, Action.LIFT_PROTECTION),
    (server("RUN", "SHTDN", protected=True), 0, LIFT, Action.WAIT),
    (None, 1, KEEP, Action.MISSING),  # one read without it: not gone yet
    (None, 2, KEEP, Action.MISSING),
    (None, 3, KEEP, Action.GONE),  # three in a row: gone
    (None, 1, TeardownOptions(gone_after=1), Action.GONE),
]


@pytest.mark.parametrize(("seen", "misses", "options", "action"), ROWS)
def test_each_status_calls_for_one_action(
    seen: ServerInstance | None, misses: int, options: TeardownOptions, action: Action
) -> None:
    """A teardown stops what runs, terminates what stopped, waits out operations, spares none."""
    assert next_action(seen, misses, options) is action
