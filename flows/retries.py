"""Which task failures Prefect may retry: only those a rerun of the task can cure."""

from __future__ import annotations

from typing import Any

from prefect import State

from fleet.errors import FleetError, LeaseLost, LedgerConflict, LedgerError

__all__ = ["infrastructure_only"]


def infrastructure_only(task: Any, task_run: Any, state: State) -> bool:
    """Retry a chunk task only for failures that are not a verdict on the rollout."""
    # The sync form: Prefect calls this inside the event loop, where result() would hand back
    # a coroutine, and an unawaited coroutine never says no (nor yes).
    error = state.result(raise_on_failure=False, _sync=True)  # type: ignore[call-overload]
    if not isinstance(error, BaseException):
        return False
    if isinstance(error, LedgerConflict | LeaseLost):
        return False  # another run has the rollout, or the ledger says otherwise: stop
    if isinstance(error, LedgerError):
        # The database hiccupped. The chunk is safe to run again: its workers were all awaited,
        # what the ledger holds as created is skipped, what it holds in flight is looked up.
        return True
    # NCP's answer or our own refusal cannot change on a retry; anything unexpected can.
    return not isinstance(error, FleetError)
