"""The states of things, as types: a server's life in the ledger, an NCP server's status.

Each is a ``StrEnum`` so it is stored and shown as its plain value. NCP's own codes (server
statuses and operations) are open sets: a code this module does not name still parses, as a
member of its own, so nothing NCP returns is dropped or refused.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

__all__ = [
    "ENDED",
    "INTENTS",
    "KEPT",
    "LIVE",
    "MOVES",
    "Operation",
    "ServerStatus",
    "State",
    "is_gone",
]


class _OpenCodes(StrEnum):
    """An enum that also takes codes it does not name (NCP adds codes without notice)."""

    @classmethod
    def _missing_(cls, value: Any) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member


class State(StrEnum):
    """Where one server of a rollout stands: one state from this closed set, its whole life.

    Every report (status, ``--json``, the last lines, artifacts, results, export, events) reads
    it, and nothing else; every move is a compare-and-set in the ledger. A state that names a
    change (``starting``, ``resizing``, ``deposed``, ``terminating``) is an intent: written before
    the change's first call, it tells any later run what to finish.
    """

    PLANNED = "planned"  # in the inventory, not sent (or looked for after a send: surely absent)
    IN_FLIGHT = "in_flight"  # a create went out; its outcome is unknown until answered or found
    FAILED = "failed"  # NCP refused its create, or retries ran out: no server (see error_kind)
    CREATED = "created"  # NCP made it (its number recorded); not seen running (yet)
    RUNNING = "running"  # seen RUN with no operation under way
    STOPPED = "stopped"  # seen stopped, and not by a change of ours: to start
    STARTING = "starting"  # intent: start it
    RESIZING = "resizing"  # intent: stop it, change its spec, start it
    DEPOSED = "deposed"  # intent: take it down once its replacement runs (a replace's old server)
    TERMINATING = "terminating"  # intent: stop and terminate it (teardown, prune, rollback)
    TERMINATED = "terminated"  # gone after our terminate was accepted
    GONE = "gone"  # gone, and not by us (terminated out of band): created anew by the next run

    @property
    def made(self) -> bool:
        """Whether a create made its server (whatever became of it since)."""
        return self not in (State.PLANNED, State.IN_FLIGHT, State.FAILED)

    @property
    def live(self) -> bool:
        """Whether a server exists in this state (billed, until it is gone)."""
        return self in LIVE

    @property
    def kept(self) -> bool:
        """Whether this is the server its name keeps: it exists, and no run is taking it down."""
        return self in KEPT

    @property
    def ended(self) -> bool:
        """Whether the server is gone for good: terminated by us, or gone out of band."""
        return self in ENDED


# A server exists: NCP holds (and bills) it.
LIVE = frozenset(
    {
        State.CREATED,
        State.RUNNING,
        State.STOPPED,
        State.STARTING,
        State.RESIZING,
        State.DEPOSED,
        State.TERMINATING,
    }
)
# The server a name keeps (what the inventory wants): it exists and is not being taken down.
KEPT = frozenset({State.CREATED, State.RUNNING, State.STOPPED, State.STARTING, State.RESIZING})
ENDED = frozenset({State.TERMINATED, State.GONE})
# Intents: a change a run began, which any later run finishes.
INTENTS = frozenset({State.STARTING, State.RESIZING, State.DEPOSED, State.TERMINATING})


# Every move of a recorded server's life: the state it goes to -> the states it may come from.
# The ledger's compare-and-set reads this table; a server in any other state is left as it is.
# (planned, in_flight and failed, before a server exists, are the engine's: ``ledger.outcomes``.)
MOVES: dict[State, frozenset[State]] = {
    # Seen running: made, started (ours or out of band), resized, or kept after all (restored,
    # or left by a teardown: termination protection).
    State.RUNNING: frozenset(
        {
            State.CREATED,
            State.STOPPED,
            State.STARTING,
            State.RESIZING,
            State.DEPOSED,
            State.TERMINATING,
        }
    ),
    State.STOPPED: frozenset({State.CREATED, State.RUNNING, State.DEPOSED, State.TERMINATING}),
    State.CREATED: frozenset({State.DEPOSED, State.TERMINATING}),
    State.STARTING: frozenset({State.STOPPED, State.CREATED, State.RUNNING}),
    State.RESIZING: frozenset({State.CREATED, State.RUNNING, State.STOPPED, State.STARTING}),
    State.DEPOSED: frozenset(KEPT),
    State.TERMINATING: frozenset(LIVE - {State.TERMINATING}),
    State.TERMINATED: frozenset({State.TERMINATING}),
    State.GONE: frozenset(LIVE),
}


def is_gone(*, listed: bool, terminate_accepted: bool, misses: int) -> bool:
    """Return whether a server is gone: the one rule, read by refresh, waiting and teardown.

    A server is gone only if our own terminate was accepted and a read by its number then misses
    it, or if NCP listed or read it before and two reads by its number, a pause apart, then miss
    it. A server NCP never showed (a create's answer came long before its listing) is never
    gone: it exists, not listed yet. ``misses`` counts the reads in a row that missed it.
    """
    if terminate_accepted:
        return misses >= 1
    return listed and misses >= 2


class ServerStatus(_OpenCodes):
    """An NCP server instance status code (serverInstanceStatus.code)."""

    INIT = "INIT"
    CREAT = "CREAT"
    RUN = "RUN"
    NSTOP = "NSTOP"
    TERMT = "TERMT"
    FSTOP = "FSTOP"
    SD_FL = "SD_FL"
    ST_FL = "ST_FL"
    RS_FL = "RS_FL"


class Operation(_OpenCodes):
    """An NCP server instance operation code (serverInstanceOperation.code)."""

    NULL = "NULL"
    START = "START"
    SHTDN = "SHTDN"
    RESTA = "RESTA"
    TERMT = "TERMT"
    SETUP = "SETUP"
    CHNG = "CHNG"
    COPY = "COPY"
