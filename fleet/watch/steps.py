"""What a takedown round does with one server, by what NCP says of it now: one decision.

A teardown and the probe's cleanup take servers down the same way, round after round: each server
is read by its number; what runs is stopped (NCP terminates only stopped servers), what stopped is
terminated, an operation under way is waited out, a protected server is left (or its protection
lifted, when asked), and a server missing from a read counts as gone only by the one rule
(``fleet.states.is_gone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleet.ncp.client import ServerInstance
from fleet.states import Operation, ServerStatus, is_gone

__all__ = ["TERMINABLE", "Look", "Step", "next_step"]

# Stopped, or stuck in a failure: what terminateServerInstances may be asked to remove.
TERMINABLE = frozenset(
    {
        ServerStatus.NSTOP,
        ServerStatus.FSTOP,
        ServerStatus.SD_FL,
        ServerStatus.ST_FL,
        ServerStatus.RS_FL,
    }
)


class Step(StrEnum):
    """What a takedown round does with one server."""

    WAIT = "wait"  # an operation is under way, or it is still being made: look again
    STOP = "stop"
    TERMINATE = "terminate"
    LIFT_PROTECTION = "lift-protection"
    LEAVE = "leave"  # termination protection is on and may not be lifted: left alone
    MISSING = "missing"  # not in this read, and not gone by the rule: look again
    GONE = "gone"  # gone by the rule


@dataclass(frozen=True, slots=True)
class Look:
    """What one round knows of one server."""

    server: ServerInstance | None  # as NCP lists it now; None: not in this read
    accepted: bool = False  # NCP accepted our terminate of it
    misses: int = 0  # reads in a row without it, this one included
    listed: bool = False  # NCP listed it in an earlier read


def next_step(look: Look, *, lift_protection: bool = False) -> tuple[Step, str]:
    """Return what to do with one server this round, and why."""
    server = look.server
    if server is None:
        if is_gone(listed=look.listed, terminate_accepted=look.accepted, misses=look.misses):
            return Step.GONE, "no longer listed"
        return Step.MISSING, "not listed: not yet (the listing lags), or not any more"
    if server.operation != Operation.NULL:
        return Step.WAIT, f"an operation is under way ({server.operation})"
    if server.protected:
        if lift_protection:
            return Step.LIFT_PROTECTION, "termination protection is on: lifting it, as asked"
        return Step.LEAVE, "termination protection is on: someone turned it on; left alone"
    if server.status == ServerStatus.RUN:
        return Step.STOP, "running: NCP terminates only stopped servers"
    if server.status in TERMINABLE:
        return Step.TERMINATE, f"stopped ({server.status})"
    return Step.WAIT, f"booting, or a status to wait out ({server.status})"
