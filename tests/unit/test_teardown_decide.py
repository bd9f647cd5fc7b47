"""What a teardown does with one server, given what NCP says of it: a table."""

from __future__ import annotations

import pytest

from fleet.ncp.client import ServerInstance
from fleet.options import TeardownOptions
from fleet.states import Operation, ServerStatus, is_gone
from fleet.teardown import Action, next_action

KEEP = TeardownOptions()
LIFT = TeardownOptions(lift_protection=True)


def server(status: str, operation: str = "NULL", protected: bool = False) -> ServerInstance:
    return ServerInstance(
        "1", "web-001", ServerStatus(status), Operation(operation), "", "7", protected, "", {}
    )


ROWS = [
    (server("RUN"), KEEP, Action.STOP),
    (server("NSTOP"), KEEP, Action.TERMINATE),
    (server("FSTOP"), KEEP, Action.TERMINATE),  # stuck in a failure: terminate it
    (server("SD_FL"), KEEP, Action.TERMINATE),
    (server("RUN", "SHTDN"), KEEP, Action.WAIT),  # an operation under way: let it finish
    (server("NSTOP", "TERMT"), KEEP, Action.WAIT),
    (server("CREAT", "SETUP"), KEEP, Action.WAIT),  # still being made
    (server("INIT"), KEEP, Action.WAIT),
    (server("REPAIR"), KEEP, Action.WAIT),  # a status NCP added since: wait, never guess
    (server("RUN", protected=True), KEEP, Action.LEAVE),
    (server("RUN", protected=True), LIFT, Action.LIFT_PROTECTION),
    (server("RUN", "SHTDN", protected=True), LIFT, Action.WAIT),
]


@pytest.mark.parametrize(("seen", "options", "action"), ROWS)
def test_each_status_calls_for_one_action(
    seen: ServerInstance, options: TeardownOptions, action: Action
) -> None:
    """A teardown stops what runs, terminates what stopped, waits out operations, spares none."""
    assert next_action(seen, options) is action


# A server missing from a read: (listed before?, our terminate accepted?, misses, action).
MISSING = [
    (False, False, 1, Action.MISSING),  # never listed: it exists, not listed yet
    (False, False, 50, Action.MISSING),  # ... however many reads miss it
    (True, False, 1, Action.MISSING),  # listed, one read without it: not gone yet
    (True, False, 2, Action.GONE),  # listed, two reads in a row without it: gone
    (False, True, 1, Action.GONE),  # our terminate was accepted, then it disappeared
    (True, True, 1, Action.GONE),
]


@pytest.mark.parametrize(("listed", "accepted", "misses", "action"), MISSING)
def test_a_missing_server_is_gone_only_by_the_one_rule(
    listed: bool, accepted: bool, misses: int, action: Action
) -> None:
    """Gone only if our terminate was accepted, or if NCP listed it and two reads miss it."""
    assert next_action(None, KEEP, listed=listed, accepted=accepted, misses=misses) is action
    assert is_gone(listed=listed, terminate_accepted=accepted, misses=misses) is (
        action is Action.GONE
    )
