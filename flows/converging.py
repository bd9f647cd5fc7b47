"""The flow's converging steps: start what was stopped, resize and replace, destroy what went.

Each a task whose body calls into ``fleet``: the actions are ``fleet.changes``', the rules of who
may be touched ``fleet.ownership``'s. What the plan found drifted is told as an event,
``fleet.rollout.drifted``, that automations can alert on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from fleet import converge
from fleet.changes import Action, Change
from fleet.converge import Seen
from fleet.intents import Finished, finish
from fleet.options import ProvisionOptions
from fleet.reshape import Pace, Reshaped, destroy, replace, resize, retire
from fleet.spec import ServerSpec
from fleet.survey import Survey
from fleet.teardown import TeardownReport
from flows import events
from flows.runtime import runtime, teardown_options
from flows.tasking import engine_for
from flows.verdicts import verdicts

__all__ = [
    "counts_of",
    "destroy_removed",
    "finish_intents",
    "reshape_servers",
    "retire_deposed",
    "start_stopped",
    "tell_drift",
]

# Actions a run takes only when asked, and the flag that asks.
ASKED = {Action.RESIZE: "--replace", Action.REPLACE: "--replace", Action.DESTROY: "--prune"}


def counts_of(changes: Sequence[Change]) -> dict[str, int]:
    """Return how many servers each action takes, in the order of ``Action``."""
    counted = Counter(c.action for c in changes)
    return {a.value: counted[a] for a in Action if counted[a]}


def tell_drift(rollout: str, found: Survey, changes: Sequence[Change]) -> None:
    """Emit fleet.rollout.drifted when NCP no longer matches what the rollout recorded."""
    drifted = [c for c in changes if c.action in (Action.RECREATE, Action.START)]
    by_hand = [c for c in changes if c.action == Action.RESIZE and not _row_edited(c, found)]
    if not drifted and not by_hand:
        return
    events.emit(
        "fleet.rollout.drifted",
        rollout,
        gone=[c.name for c in drifted if c.action == Action.RECREATE][:100],
        stopped=[c.name for c in drifted if c.action == Action.START][:100],
        changed_by_hand=[c.name for c in by_hand][:100],
        counts=counts_of(changes),
    )


def _row_edited(change: Change, found: Survey) -> bool:
    return change.name in found.delta.changed


def _pace(options: ProvisionOptions) -> Pace:
    return Pace(interval=options.poll_interval, time_limit=options.wait_timeout)


def _tell(line: str) -> None:
    get_run_logger().info("%s", line)


@task(name="finish-intents", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def finish_intents(key: str, options: ProvisionOptions) -> Finished:
    """Finish the changes earlier runs began and did not end (teardowns, resizes, starts)."""
    rt = runtime(key)
    done = await finish(
        rt.client, rt.ledger, rt.rollout, teardown_options(options), _pace(options), _tell
    )
    for name, what in done.done.items():
        get_run_logger().info("%s: %s (an earlier run began it)", name, what)
    for name, why in done.left.items():
        get_run_logger().warning("%s: not finished: %s", name, why)
    return done


@task(name="retire-deposed", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def retire_deposed(key: str, options: ProvisionOptions) -> Finished:
    """Take down what earlier replaces left deposed, once their new servers run."""
    rt = runtime(key)
    retired = await retire(
        rt.client, rt.ledger, rt.rollout, teardown_options(options), _pace(options), None, _tell
    )
    return Finished(
        dict.fromkeys(retired.done, "retired: its replacement runs"), dict(retired.failed)
    )


@task(name="start-stopped", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def start_stopped(key: str, stopped: list[Seen]) -> list[str]:
    """Start the rollout's servers that were stopped out of band (the inventory wants them)."""
    rt = runtime(key)
    started = await converge.start(rt.client, rt.ledger, rt.rollout, stopped)
    get_run_logger().info("started %d servers stopped out of band", len(started))
    return started


@task(name="resize-and-replace", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def reshape_servers(
    key: str,
    changes: list[Change],
    specs: list[ServerSpec],
    options: ProvisionOptions,
    protected: list[str],
) -> Reshaped:
    """Resize in place, then replace (new before old), the rollout's servers that changed."""
    rt = runtime(key)
    pace = _pace(options)
    resized = await resize(rt.client, rt.ledger, rt.rollout, changes, specs, pace, _tell)
    engine = engine_for(rt, options)
    replaced = await replace(
        engine, changes, specs, teardown_options(options), pace, protected, _tell
    )
    rt.lookups += engine.lookups
    rt.ambiguous += engine.ambiguous
    return Reshaped(
        resized.done + replaced.done,
        {**resized.failed, **replaced.failed},
        {**resized.left, **replaced.left},
    )


@task(name="destroy-removed", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def destroy_removed(
    key: str, changes: list[Change], options: ProvisionOptions
) -> TeardownReport:
    """Take down the rollout's servers no longer in the inventory (made by fleet only)."""
    rt = runtime(key)
    return await destroy(
        rt.client, rt.ledger, rt.rollout, changes, teardown_options(options), _tell
    )


def staged_reshaping(
    changes: Sequence[Change], found: Survey, options: ProvisionOptions
) -> list[Change]:
    """Return the resizes and replaces a staged run makes wave by wave (``--replace`` only)."""
    if not (options.staged and options.replace):
        return []
    protected = {s.name for s in found.seen if s.server is not None and s.server.protected}
    return [
        c
        for c in changes
        if c.action in (Action.RESIZE, Action.REPLACE)
        and not (c.action == Action.REPLACE and c.name in protected)
    ]


def pending(changes: Sequence[Change], options: ProvisionOptions) -> dict[str, int]:
    """Return the changes this run leaves for a flag it was not given: action -> count."""
    skipped = [
        c
        for c in changes
        if not c.resuming  # an earlier run's change: finished by every run
        and (
            (c.action in (Action.RESIZE, Action.REPLACE) and not options.replace)
            or (c.action == Action.DESTROY and not options.prune)
        )
    ]
    return counts_of(skipped)
