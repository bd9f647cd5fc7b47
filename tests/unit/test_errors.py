"""Error classification: what each NCP failure means for a retry, as a table."""

from __future__ import annotations

import pickle

import pytest

from fleet.errors import (
    AmbiguousError,
    BindingError,
    ErrorKind,
    InventoryError,
    LeaseLost,
    LedgerConflict,
    LedgerError,
    NcpError,
    PermanentError,
    Problem,
    RetryableError,
    ThrottledError,
    classify,
    error_for,
    is_verdict,
)

R, T, A, P = ErrorKind.RETRYABLE, ErrorKind.THROTTLED, ErrorKind.AMBIGUOUS, ErrorKind.PERMANENT

TABLE = [
    (400, "100", P),  # Bad Request Exception
    (401, "200", P),  # Authentication Failed
    (401, "210", P),  # Permission Denied
    (403, "230", P),  # Forbidden
    (404, "300", P),  # Not Found Exception
    (413, "430", P),  # Request Entity Too Large
    (429, "400", P),  # Quota Exceeded: permanent for this run
    (429, "410", T),  # Throttle Limited
    (429, "420", T),  # Rate Limited
    (429, None, T),  # throttled without a body
    (503, "500", R),  # Endpoint Error: backend not reached
    (504, "510", A),  # Endpoint Timeout: may have been done
    (500, "900", A),  # Unexpected Error
    (500, "1000", A),  # "Please try your call again later": may have been done
    (502, None, A),  # any other 5xx
    (503, None, A),  # a 503 that is not the gateway's Endpoint Error
    (400, "1100031", R),  # server busy in SETUP: nothing done
    (400, "1015009", P),  # account product limit
    (400, "1413", P),  # product code does not match image
    (200, "1015009", P),  # an error body inside a 2xx
]


@pytest.mark.parametrize(("status", "code", "kind"), TABLE)
def test_classification_table(status: int, code: str | None, kind: ErrorKind) -> None:
    """Each (HTTP status, NCP code) pair means what NCP's documentation says it does."""
    assert classify(status, code) is kind


@pytest.mark.parametrize(
    ("kind", "cls", "parent"),
    [
        (R, RetryableError, NcpError),
        (T, ThrottledError, RetryableError),
        (A, AmbiguousError, NcpError),
        (P, PermanentError, NcpError),
    ],
)
def test_class_carries_the_kind(
    kind: ErrorKind, cls: type[NcpError], parent: type[NcpError]
) -> None:
    """The exception class says the retry decision, so callers branch on the type."""
    assert error_for(kind) is cls
    assert issubclass(cls, parent)
    assert cls("x").kind is kind


def test_ncp_error_survives_pickle_with_every_field() -> None:
    """Prefect persists exceptions: status, code, message, request id survive the round trip."""
    err = ThrottledError(
        "Throttle Limited",
        action="createServerInstances",
        status=429,
        code="410",
        request_id="rid-1",
        retry_after=1.5,
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ThrottledError
    assert (back.status, back.code, back.message, back.request_id, back.retry_after) == (
        429,
        "410",
        "Throttle Limited",
        "rid-1",
        1.5,
    )
    assert str(back) == str(err)
    assert "HTTP 429" in str(err) and "code 410" in str(err) and "request rid-1" in str(err)


def test_inventory_error_survives_pickle_and_lists_every_problem() -> None:
    """An inventory error carries each problem as FILE:LINE: COLUMN: message."""
    err = InventoryError(
        [Problem("a.csv", 3, "vpcNo", "required"), Problem("b.csv", None, None, "empty file")]
    )
    back = pickle.loads(pickle.dumps(err))
    assert back.problems == err.problems
    assert str(back).splitlines() == ["a.csv:3: vpcNo: required", "b.csv: empty file"]


VERDICTS = [
    (InventoryError([]), True),  # a bad inventory stays bad
    (PermanentError("refused"), True),  # NCP refused: it refuses again
    (BindingError("bound elsewhere"), True),
    (LedgerConflict("another run has it"), True),
    (LeaseLost("taken over"), True),
    (LedgerError("database is locked"), False),  # a hiccup: a retry may cure it
    (RuntimeError("a bug"), False),  # not raised on purpose: retried, keeps its traceback
]


@pytest.mark.parametrize(("error", "verdict"), VERDICTS)
def test_a_verdict_is_what_no_retry_changes(error: BaseException, verdict: bool) -> None:
    """The one rule a task's retry and a task's stop both read."""
    assert is_verdict(error) is verdict
