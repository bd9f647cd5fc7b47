"""The states of things, as types: a ledger row's, an NCP server's, a teardown's.

Each is a ``StrEnum`` so it is stored and shown as its plain value. NCP's own codes (server
statuses and operations) are open sets: a code this module does not name still parses, as a
member of its own, so nothing NCP returns is dropped or refused.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

__all__ = ["ErrorKind", "Operation", "ServerStatus", "State", "TeardownState"]


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
    """Where one server of a rollout stands in the ledger."""

    PLANNED = "planned"  # known, not sent (or looked for after a send, and surely absent)
    IN_FLIGHT = "in_flight"  # a create went out; outcome unknown until answered or looked up
    CREATED = "created"  # NCP returned (or we found) its instance number
    FAILED = "failed"  # NCP refused it, or retries ran out; see error_kind


class ErrorKind(StrEnum):
    """Why a ledger row carries an error: how a call failed, or how the server ended."""

    RETRYABLE = "retryable"  # NCP did not process the call; retries ran out
    THROTTLED = "throttled"  # the gateway kept throttling; retries ran out
    AMBIGUOUS = "ambiguous"  # the call may have been processed; the server may exist
    PERMANENT = "permanent"  # NCP refused the call; sending it again fails the same way
    STATUS = "status"  # the server ended in a failure status
    TIMEOUT = "timeout"  # the server was not ready in time


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


class TeardownState(StrEnum):
    """How far the teardown of one server has come."""

    STOPPING = "stopping"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    PROTECTED = "protected"  # left alone: termination protection is on
    FAILED = "failed"
