"""What NCP's answers mean: a response read into its payload or our error; httpx's failures.

The only module that reads NCP's error shapes (the gateway's ``error`` and the API's
``responseError``) and catches httpx's exceptions; the client above it sees only ``NcpError``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from fleet.errors import (
    AmbiguousError,
    ErrorKind,
    NcpError,
    PermanentError,
    RetryableError,
    classify,
    error_for,
)

__all__ = [
    "NOT_SENT",
    "answer_date",
    "parse_response",
    "retry_after",
    "translate_transport_errors",
]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the seconds a Retry-After header asks for (a number or an HTTP date), if any."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own back-off
    return max(0.0, when.timestamp() - time.time())


def answer_date(headers: Mapping[str, str]) -> float | None:
    """Return the gateway's clock as its answer's Date header gives it (epoch seconds), if any.

    HTTP dates are whole seconds: the gateway's clock was somewhere in [date, date + 1).
    """
    value = headers.get("date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def parse_response(
    action: str, status: int, body: bytes, headers: Mapping[str, str]
) -> dict[str, Any]:
    """Return the action's response object, or raise the error the answer carries.

    Either NCP error shape, with any status, is a failure. A 2xx whose body cannot be read is
    AMBIGUOUS, not permanent: NCP answered success, so for a create the server may well exist.
    """
    request_id = headers.get("x-ncp-trace-id") or headers.get("x-request-id")
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    success = 200 <= status < 300
    if not isinstance(data, dict):
        text = body[:200].decode("utf-8", "replace").strip() or "no body"
        kind = ErrorKind.AMBIGUOUS if success else None
        raise _error(action, status, None, f"unreadable answer: {text}", request_id, headers, kind)
    if isinstance(data.get("error"), dict):
        err = data["error"]
        message = str(err.get("message", "")) or "gateway error"
        if err.get("details"):
            message += f": {err['details']}"
        code = str(err.get("errorCode", "")) or None
        raise _error(action, status, code, message, request_id, headers)
    if isinstance(data.get("responseError"), dict):
        err = data["responseError"]
        code = str(err.get("returnCode", "")) or None
        rid = err.get("requestId") or request_id
        raise _error(action, status, code, str(err.get("returnMessage", "")), rid, headers)
    if not success:
        raise _error(action, status, None, f"HTTP {status}", request_id, headers)
    payload = data.get(f"{action}Response")
    if not isinstance(payload, dict):
        message = f"no {action}Response in answer"
        raise _error(action, status, None, message, request_id, headers, ErrorKind.AMBIGUOUS)
    if str(payload.get("returnCode", "0")) != "0":
        code = str(payload.get("returnCode"))
        message = str(payload.get("returnMessage", ""))
        raise _error(action, status, code, message, payload.get("requestId"), headers)
    return payload


def _error(
    action: str,
    status: int,
    code: str | None,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str],
    kind: ErrorKind | None = None,
) -> NcpError:
    cls = error_for(kind or classify(status, code))
    return cls(
        message,
        action=action,
        status=status,
        code=code,
        request_id=request_id,
        retry_after=retry_after(headers),
    )


# httpx failures that happen before any byte of the request can have reached NCP.
NOT_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


@contextmanager
def translate_transport_errors(action: str) -> Iterator[None]:
    """Turn httpx's failures into our errors: the only place that catches httpx's."""
    try:
        yield
    except httpx.LocalProtocolError as exc:
        # A request we could not write (a key holding a line break): nothing left, and sending it
        # again would fail the same way.
        raise PermanentError(f"request not sent: {exc}", action=action) from exc
    except NOT_SENT as exc:
        # Nothing reached NCP: safe to send again.
        raise RetryableError(f"{type(exc).__name__}: {exc}", action=action) from exc
    except httpx.RequestError as exc:
        # Anything else after sending began (a read timeout, a dropped connection, an answer that
        # cannot be decoded): NCP may have acted on it.
        raise AmbiguousError(f"{type(exc).__name__}: {exc}", action=action) from exc
