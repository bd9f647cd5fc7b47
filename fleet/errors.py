"""The project's own errors, and the one table that says what each NCP failure means.

    FleetError
    ├── ConfigError          bad configuration: missing keys, unknown site, unsafe endpoint
    ├── InventoryError       an inventory failed validation; carries every problem found
    ├── RolloutError         a rollout cannot start safely (a name someone else owns, ...)
    │   ├── RolloutRetired   the rollout was torn down: created again only when revived
    │   ├── LeaseHeld        another run holds the rollout: says who, and since when
    │   ├── BindingError     the rollout lives at another endpoint or in another account
    │   └── PreflightError   references NCP would refuse (every one listed), or a read that failed
    ├── RunAborted           a run stopped part-way (ledger or lease lost): rerun to finish
    ├── LedgerError          the ledger cannot be opened, read or written (corrupt, foreign, lost)
    │   ├── LedgerConflict   a compare-and-set found a row changed under us: nothing was sent
    │   └── LeaseLost        this run's lease expired or was taken: it stops sending
    └── NcpError             NCP or the network failed one call; carries status, code, request id
        ├── RetryableError   NCP did not process it: safe to send again
        │   └── ThrottledError   429 410/420: safe to send again, and slow down
        ├── AmbiguousError   it may have been processed: look before creating again
        └── PermanentError   sending it again will fail the same way

The class carries the retry decision, so callers branch on the type, never on numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "ACCOUNT_LIMIT_CODES",
    "AmbiguousError",
    "BindingError",
    "ConfigError",
    "ErrorKind",
    "FleetError",
    "InventoryError",
    "LeaseHeld",
    "LeaseLost",
    "LedgerConflict",
    "LedgerError",
    "NcpError",
    "PermanentError",
    "PreflightError",
    "Problem",
    "RetryableError",
    "RolloutError",
    "RolloutRetired",
    "RunAborted",
    "ThrottledError",
    "classify",
    "error_for",
    "is_verdict",
]


class ErrorKind(StrEnum):
    """What a failure means: how a call failed (the first four), or how a server ended."""

    RETRYABLE = "retryable"  # NCP did not process the call; retries ran out
    THROTTLED = "throttled"  # the gateway kept throttling; retries ran out
    AMBIGUOUS = "ambiguous"  # the call may have been processed; the server may exist
    PERMANENT = "permanent"  # NCP refused the call; sending it again fails the same way
    STATUS = "status"  # the server ended in a failure status
    TIMEOUT = "timeout"  # the server was not ready in time


class FleetError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(FleetError):
    """The configuration (keys, site, endpoint, options) is missing or wrong."""


class RolloutError(FleetError):
    """A rollout cannot proceed safely; nothing more is sent."""


class RolloutRetired(RolloutError):
    """The rollout was torn down: no run creates it again unless it is revived."""


class LeaseHeld(RolloutError):
    """Another run holds the rollout's lease; this one must not send anything."""

    def __init__(self, rollout: str, holder: str, since: str, until: str) -> None:
        self.rollout, self.holder, self.since, self.until = rollout, holder, since, until
        super().__init__(
            f"rollout {rollout!r} is being run by {holder} since {since} (lease valid until "
            f"{until} unless renewed); nothing was sent. Pass --wait-for-lease to queue behind it."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.rollout, self.holder, self.since, self.until))


class BindingError(RolloutError):
    """The rollout's servers live at another endpoint or in another account than this run's."""


class PreflightError(RolloutError):
    """The inventory names what NCP does not hold, or a read API failed; nothing was sent.

    ``problems`` lists every bad reference, each located like a validation problem; it is empty
    when the check could not be done at all (``message`` says which read failed).
    """

    def __init__(self, problems: Sequence[Problem], message: str | None = None) -> None:
        self.problems = list(problems)
        self.message = message
        super().__init__(message or "\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems, self.message))


class RunAborted(FleetError):
    """A run stopped part-way; what it did is recorded, and a rerun settles and finishes it."""


class LedgerError(FleetError):
    """The ledger cannot be opened, read or written; what it says is unknown, so nothing is sent."""


class LedgerConflict(LedgerError):
    """A compare-and-set changed no row: the row is not in the state this run believed."""


class LeaseLost(LedgerError):
    """The lease on the rollout expired or was taken over: the run holding it stops sending."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an inventory, located by file, line and column."""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        column = f" {self.column}:" if self.column else ""
        return f"{where}:{column} {self.message}"


class InventoryError(FleetError):
    """One or more inventories are invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class NcpError(FleetError):
    """A call to NCP failed; says how (HTTP status, NCP code and message, request id)."""

    kind: ErrorKind = ErrorKind.PERMANENT

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.action = action
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"{self.action}: " if self.action else "", self.message]
        details = [
            f"HTTP {self.status}" if self.status is not None else "",
            f"code {self.code}" if self.code else "",
            f"request {self.request_id}" if self.request_id else "",
        ]
        detail = ", ".join(d for d in details if d)
        return "".join(parts) + (f" ({detail})" if detail else "")

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect persists exceptions; keyword-only fields need an explicit recipe.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[NcpError], message: str, state: dict[str, Any]) -> NcpError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    err.args = (err._describe(),)
    return err


class RetryableError(NcpError):
    """NCP did not process the call; sending it again is safe."""

    kind = ErrorKind.RETRYABLE


class ThrottledError(RetryableError):
    """The gateway rejected the call for rate; send again, more slowly."""

    kind = ErrorKind.THROTTLED


class AmbiguousError(NcpError):
    """The call may have been processed; for a create, look the server up before retrying."""

    kind = ErrorKind.AMBIGUOUS


class PermanentError(NcpError):
    """The call was refused and would be refused again."""

    kind = ErrorKind.PERMANENT


# (HTTP status or None for any, NCP code or None for any, kind). First match wins, so the
# specific rows come before the general ones. Status first: NCP publishes no exhaustive code list.
MEANINGS: tuple[tuple[int | None, str | None, ErrorKind], ...] = (
    (429, "400", ErrorKind.PERMANENT),  # day/month quota: no retry in this run will pass
    (429, None, ErrorKind.THROTTLED),  # 410 Throttle Limited, 420 Rate Limited: not processed
    (503, "500", ErrorKind.RETRYABLE),  # Endpoint Error: the backend was not reached
    (None, "1100031", ErrorKind.RETRYABLE),  # server busy in SETUP: nothing done, wait and retry
    (500, None, ErrorKind.AMBIGUOUS),  # 900 Unexpected Error, 1000 try later: may have been done
    (504, None, ErrorKind.AMBIGUOUS),  # 510 Endpoint Timeout: the backend may have done it
)


# Refusals of the account, not of the row: its server or product limit (1015009), its creation
# limit setting (10102). Permanent for this run, but a raised quota clears them: the next run
# sends those servers again, unasked.
ACCOUNT_LIMIT_CODES = frozenset({"1015009", "10102"})


def classify(status: int | None, code: str | None) -> ErrorKind:
    """Return what a failed call with this HTTP status and NCP code means."""
    for rule_status, rule_code, kind in MEANINGS:
        if (rule_status is None or rule_status == status) and (
            rule_code is None or rule_code == code
        ):
            return kind
    if status is not None and status >= 500:
        return ErrorKind.AMBIGUOUS  # any other 5xx: we cannot know how far it got
    return ErrorKind.PERMANENT  # 4xx, and error bodies inside a 2xx


_CLASSES: dict[ErrorKind, type[NcpError]] = {
    ErrorKind.RETRYABLE: RetryableError,
    ErrorKind.THROTTLED: ThrottledError,
    ErrorKind.AMBIGUOUS: AmbiguousError,
    ErrorKind.PERMANENT: PermanentError,
}


def error_for(kind: ErrorKind) -> type[NcpError]:
    """Return the exception class that carries this kind."""
    return _CLASSES[kind]


def is_verdict(error: BaseException) -> bool:
    """Return whether an error is a verdict on the rollout, which no retry of the task changes.

    NCP's answers and our own refusals (a bad inventory, a spent budget) are verdicts, and so are
    a ledger conflict and a lost lease: another run has the rollout. The database's other failures
    are hiccups a retry may cure, and so is anything we did not raise on purpose (a bug keeps its
    traceback).
    """
    if isinstance(error, LedgerConflict | LeaseLost):
        return True
    return isinstance(error, FleetError) and not isinstance(error, LedgerError)
