"""Approval between stages: a form in the Prefect UI, ``fleet approve``, or the terminal.

With a Prefect server, the flow run pauses (``pause_flow_run(wait_for_input=...)``) and shows a
form: go on or abort, and optionally another size for the next wave. ``fleet approve ROLLOUT``
and ``fleet abort ROLLOUT`` fill that form from a terminal. With the temporary server the
command line starts (no UI to approve in), the command line asks on its own terminal instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run, aresume_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field

__all__ = ["Approval", "ask", "resume", "set_local_approver"]


class Approval(RunInput):
    """The form a paused rollout shows: go on (or abort), and the next wave's size."""

    approve: bool = Field(True, description="Go on with the next wave; untick to abort.")
    next_wave: str | None = Field(
        None, description="Size of the next wave (N or N%), if not as planned."
    )


# (rollout, what to decide, in words) -> the decision. Set by the command line for a run on
# the temporary Prefect server, where nobody could see a form.
LocalApprover = Callable[[str, str], Approval]
_LOCAL: list[LocalApprover] = []


def set_local_approver(approver: LocalApprover | None) -> None:
    """Decide approvals in this process (a terminal prompt, or --yes), not in the Prefect UI."""
    _LOCAL.clear()
    if approver is not None:
        _LOCAL.append(approver)


async def ask(rollout: str, key: str, summary: str, patience: float, poll: float) -> Approval:
    """Wait for a decision on going on after a stage; the summary so far goes with the question."""
    if _LOCAL:
        return await asyncio.to_thread(_LOCAL[0], rollout, summary)
    form = Approval.with_initial_data(description=summary, approve=True)
    try:
        decision = await apause_flow_run(
            wait_for_input=form, timeout=int(patience), poll_interval=max(1, int(poll)), key=key
        )
    except FlowPauseTimeout:
        # Nobody answered in time: that is an abort. Prefect leaves the run paused and would
        # fail it on the spot; running again, it ends as an abort does (rollback, events).
        await _running_again()
        return Approval(approve=False)
    return decision if isinstance(decision, Approval) else Approval(approve=False)


async def _running_again() -> None:
    """Put this flow run back in Running, past a pause that timed out."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    async with get_client() as client:
        await client.set_flow_run_state(context.flow_run.id, Running(), force=True)


async def resume(rollout: str, approve: bool, next_wave: str | None = None) -> list[str]:
    """Answer every paused run of the rollout; return the names of the runs answered."""
    answered: list[str] = []
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[rollout]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )
    for run in runs:
        await aresume_flow_run(run.id, run_input={"approve": approve, "next_wave": next_wave})
        answered.append(run.name)
    return answered
