"""What a takedown round (a teardown, the probe's cleanup) does with one server: a table."""

from __future__ import annotations

import pytest

from fleet.ncp.client import ServerInstance
from fleet.states import Operation, ServerStatus, is_gone
from fleet.watch.steps import Look, Step, next_step

KEEP = False  # lift_protection
LIFT = True


def server(status: str, operation: str = "NULL", protected: bool = False) -> ServerInstance:
    return ServerInstance(
        "1", "web-001", ServerStatus(status), Operation(operation), "", "7", protected, "", {}
    )


ROWS = [
    (server("RUN"), KEEP, Step.STOP),
    (server("NSTOP"), KEEP, Step.TERMINATE),
    (server("FSTOP"), KEEP, Step.TERMINATE),  # stuck in a failure: terminate it
    (server("SD_FL"), KEEP, Step.TERMINATE),
    (server("RUN", "SHTDN"), KEEP, Step.WAIT),  # an operation under way: let it finish
    (server("NSTOP", "TERMT"), KEEP, Step.WAIT),
    (server("CREAT", "SETUP"), KEEP, Step.WAIT),  # still being made
    (server("INIT"), KEEP, Step.WAIT),
    (server("REPAIR"), KEEP, Step.WAIT),  # a status NCP added since: wait, never guess
    (server("RUN", protected=True), KEEP, Step.LEAVE),
    (server("RUN", protected=True), LIFT, Step.LIFT_PROTECTION),
    (server("RUN", "SHTDN", protected=True), LIFT, Step.WAIT),
]


@pytest.mark.parametrize(("seen", "lift", "action"), ROWS)
def test_each_status_calls_for_one_action(seen: ServerInstance, lift: bool, action: Step) -> None:
    """A teardown stops what runs, terminates what stopped, waits out operations, spares none."""
    assert next_step(Look(seen), lift_protection=lift)[0] is action


# A server missing from a read: (listed before?, our terminate accepted?, misses, action).
MISSING = [
    (False, False, 1, Step.MISSING),  # never listed: it exists, not listed yet
    (False, False, 50, Step.MISSING),  # ... however many reads miss it
    (True, False, 1, Step.MISSING),  # listed, one read without it: not gone yet
    (True, False, 2, Step.GONE),  # listed, two reads in a row without it: gone
    (False, True, 1, Step.GONE),  # our terminate was accepted, then it disappeared
    (True, True, 1, Step.GONE),
]


@pytest.mark.parametrize(("listed", "accepted", "misses", "action"), MISSING)
def test_a_missing_server_is_gone_only_by_the_one_rule(
    listed: bool, accepted: bool, misses: int, action: Step
) -> None:
    """Gone only if our terminate was accepted, or if NCP listed it and two reads miss it."""
    look = Look(None, accepted=accepted, misses=misses, listed=listed)
    assert next_step(look)[0] is action
    assert is_gone(listed=listed, terminate_accepted=accepted, misses=misses) is (
        action is Step.GONE
    )
