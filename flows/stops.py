"""Expected stops leave a task as data, so Prefect logs no traceback for them.

A task that raises gets its whole Python traceback logged at ERROR, in the terminal and in the UI,
however expected the stop (a bad inventory, a preflight problem, another run's lease, a refused
rebind). So a task body hands a verdict (``fleet.errors.is_verdict``) back as ``Stopped``; the flow
raises it again in its own body with ``decided``, where the flow's ``except FleetError`` turns it
into ``Failed(message=...)``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from fleet import FleetError, is_verdict

__all__ = ["Stopped", "decided", "sync_verdicts_as_data", "verdicts_as_data"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stopped:
    """A verdict a task reached: the flow ends Failed with its message, no traceback."""

    error: FleetError


def verdicts_as_data(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T | Stopped]]:
    """Wrap an async task's function so its verdicts come back as ``Stopped``.

    A ledger hiccup still raises, so that the task's retry (flows.tasking) can take it.
    """

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T | Stopped:
        try:
            return await fn(*args, **kwargs)
        except FleetError as exc:
            if not is_verdict(exc):
                raise
            return Stopped(exc)

    return run


def sync_verdicts_as_data(fn: Callable[P, T]) -> Callable[P, T | Stopped]:
    """Wrap a sync task's function so its verdicts come back as ``Stopped``."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T | Stopped:
        try:
            return fn(*args, **kwargs)
        except FleetError as exc:
            if not is_verdict(exc):
                raise
            return Stopped(exc)

    return run


def decided(value: T | Stopped) -> T:
    """Return a task's result, or raise the verdict it carried (in the flow's own body)."""
    if isinstance(value, Stopped):
        raise value.error
    return value
