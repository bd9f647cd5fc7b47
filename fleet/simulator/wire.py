"""NCP's wire conventions shared by every action: the success envelope, paging, list parameters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from fleet.simulator.errors import INVALID_PARAMETER, Problems, raise_first

__all__ = [
    "Action",
    "index_list",
    "int_param",
    "is_digits",
    "page",
    "paged_response",
    "paging",
    "response",
]

_T = TypeVar("_T")
# An API action: the call's merged parameters in, NCP's JSON answer out (errors raise ApiError).
Action = Callable[[Mapping[str, str]], dict[str, Any]]
_DIGITS = re.compile(r"[0-9]+")


def is_digits(value: str) -> bool:
    """Return whether a value is a plain decimal number (NCP's instance numbers, counts)."""
    return _DIGITS.fullmatch(value) is not None


def response(
    action: str, list_key: str, items: list[dict[str, Any]], total: int | None = None
) -> dict[str, Any]:
    """Return NCP's success envelope ``{"<action>Response": {..., "<list_key>": items}}``."""
    return {
        f"{action}Response": {
            "totalRows": len(items) if total is None else total,
            list_key: items,
            "requestId": str(uuid.uuid4()),
            "returnCode": "0",
            "returnMessage": "success",
        }
    }


def int_param(
    params: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: Problems,
) -> int:
    """Return an integer parameter within [low, high], or note a problem and return the default."""
    raw = params.get(name)
    if raw is None:
        return default
    if not is_digits(raw) or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        problems.append((INVALID_PARAMETER, f"{name} must be an integer {bounds}: {raw!r}"))
        return default
    return int(raw)


def index_list(
    params: Mapping[str, str], name: str, problems: Problems, *, digits: bool = True
) -> list[str]:
    """Return the values of a flat 1-based list parameter ``name.N`` in index order."""
    prefix = name + "."
    found: list[tuple[int, str]] = []
    for key, value in params.items():
        if key.startswith(prefix):
            index = key[len(prefix) :]
            if not is_digits(index) or int(index) < 1 or (digits and not is_digits(value)):
                problems.append((INVALID_PARAMETER, f"{key}: not a valid entry: {value!r}"))
            else:
                found.append((int(index), value))
    return [value for _, value in sorted(found)]


def paging(
    params: Mapping[str, str], default_size: int, max_size: int, problems: Problems
) -> tuple[int, int]:
    """Return (pageNo, pageSize) from the parameters, pageSize capped at ``max_size``."""
    page_no = int_param(params, "pageNo", 1, 1, None, problems)
    page_size = int_param(params, "pageSize", default_size, 1, None, problems)
    return page_no, min(page_size, max_size)


def page(rows: Sequence[_T], page_no: int, page_size: int) -> Sequence[_T]:
    """Return the rows of one 1-based page."""
    start = (page_no - 1) * page_size
    return rows[start : start + page_size]


def paged_response(
    params: Mapping[str, str],
    action: str,
    list_key: str,
    rows: list[dict[str, Any]],
    default_size: int,
    max_size: int,
) -> dict[str, Any]:
    """Return the success envelope of the call's page of ``rows``; totalRows counts them all."""
    problems: Problems = []
    page_no, page_size = paging(params, default_size, max_size, problems)
    raise_first(problems)
    return response(action, list_key, list(page(rows, page_no, page_size)), len(rows))
