"""The API calls the simulator received, the last ``call_log_size`` of them, for tests to read.

Each entry: ``seq`` (1, 2, ... since the last reset), ``action``, ``method``, ``params`` (the
query and form parameters merged, as the action saw them), ``status`` (the HTTP status answered;
None while unanswered, or when the client left first) and ``fault`` (the fault played, or None).
Keys and signatures travel in headers, which are never logged; a parameter whose name mentions a
secret or signature is logged with its value withheld all the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CallLog"]

_WITHHELD: Final = "(withheld)"
_SECRET_WORDS: Final = ("secret", "signature")


def _safe(params: Mapping[str, str]) -> dict[str, str]:
    return {
        key: _WITHHELD if any(word in key.lower() for word in _SECRET_WORDS) else value
        for key, value in params.items()
    }


class CallLog:
    """A bounded log of API calls: memory stays flat however long a benchmark runs."""

    def __init__(self, size: int) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=size)
        self.total = 0  # calls received since the last reset, the dropped ones included

    def add(self, action: str, method: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Log a call as it arrives; return its entry, for the answer to complete."""
        self.total += 1
        entry: dict[str, Any] = {
            "seq": self.total,
            "action": action,
            "method": method,
            "params": _safe(params),
            "status": None,
            "fault": None,
        }
        self._calls.append(entry)
        return entry

    def resize(self, size: int) -> None:
        """Keep at most ``size`` calls from now on (the newest, when it shrinks)."""
        self._calls = deque(self._calls, maxlen=size)

    def entries(self, action: str | None = None) -> list[dict[str, Any]]:
        """Return the calls kept, oldest first, of one action or all."""
        return [dict(e) for e in self._calls if action is None or e["action"] == action]
