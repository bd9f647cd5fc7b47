"""The flow's converging steps: start what was stopped, resize and replace, destroy what went.

Each a task whose body calls into ``fleet``: the actions are ``fleet.plan.changes``', the rules of
who may be touched ``fleet.ownership``'s. What the plan found drifted is told as an event,
``fleet.rollout.drifted``, that automations can alert on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from fleet import (
    Action,
    Change,
    Finished,
    Pace,
    PlannedServer,
    ProvisionOptions,
    Refreshed,
    Reshaped,
    Survey,
    TeardownReport,
    destroy,
    finish,
    replace,
    resize,
    retire,
    start_stopped,
)
from flows import events
from flows.runtime import runtime, teardown_options
from flows.stops import verdicts_as_data
from flows.tasking import engine_for

__all__ = [
    "Drift",
    "counts_of",
    "destroy_removed",
    "drift_of",
    "finish_intents",
    "reshape_servers",
    "restart_stopped",
    "retire_deposed",
    "tell_drift",
]

# Actions a run takes only when asked, and the flag that asks.
ASKED = {Action.RESIZE: "--replace", Action.REPLACE: "--replace", Action.DESTROY: "--prune"}


def counts_of(changes: Sequence[Change]) -> dict[str, int]:
    """Return how many servers each action takes, in the order of ``Action``."""
    counted = Counter(c.action for c in changes)
    return {a.value: counted[a] for a in Action if counted[a]}


@dataclass(frozen=True, slots=True)
class Drift:
    """What NCP no longer holds as the rollout recorded it, by server: the drift a run found."""

    gone: tuple[Change, ...]  # terminated out of band
    stopped: tuple[Change, ...]  # stopped out of band
    by_hand: tuple[Change, ...]  # spec changed in the console, not in the inventory

    @property
    def line(self) -> str:
        """Return the drift in one line, naming the first servers of each kind."""

        def names(changes: Sequence[Change]) -> str:
            shown = ", ".join(c.name for c in changes[:10])
            return f" ({shown}{', ...' if len(changes) > 10 else ''})" if changes else ""

        return (
            f"drift: {len(self.gone)} gone out of band{names(self.gone)}, "
            f"{len(self.stopped)} stopped out of band{names(self.stopped)}, "
            f"{len(self.by_hand)} changed by hand{names(self.by_hand)}"
        )

    def counts(self) -> dict[str, int]:
        """Return how many servers drifted each way."""
        return {
            "gone": len(self.gone),
            "stopped": len(self.stopped),
            "changed_by_hand": len(self.by_hand),
        }


def drift_of(found: Survey, changes: Sequence[Change]) -> Drift | None:
    """Return what drifted (None: nothing): servers gone, stopped, or resized by hand."""
    # A change an earlier run began (resuming) is not drift: it is this project's own, unfinished.
    ours = [c for c in changes if not c.resuming]
    drift = Drift(
        tuple(c for c in ours if c.action == Action.RECREATE),
        tuple(c for c in ours if c.action == Action.START),
        tuple(c for c in ours if c.action == Action.RESIZE and not _row_edited(c, found)),
    )
    return drift if drift.gone or drift.stopped or drift.by_hand else None


def tell_drift(rollout: str, found: Survey, changes: Sequence[Change]) -> Drift | None:
    """Emit fleet.rollout.drifted, naming each server in its related resources; return the drift.

    The event feed shows related resources as links: each server that drifted (100 at most) is
    one, its role saying how (``gone``, ``stopped``, ``changed-by-hand``).
    """
    drift = drift_of(found, changes)
    if drift is None:
        return None
    roles = (("gone", drift.gone), ("stopped", drift.stopped), ("changed-by-hand", drift.by_hand))
    servers = [events.server_resource(rollout, c.name, role, c.instance_no)
               for role, kind in roles for c in kind]  # fmt: skip
    events.emit(
        "fleet.rollout.drifted",
        rollout,
        related=servers[:100],
        gone=[c.name for c in drift.gone][:100],
        stopped=[c.name for c in drift.stopped][:100],
        changed_by_hand=[c.name for c in drift.by_hand][:100],
        counts=counts_of(changes),
    )
    return drift


def _row_edited(change: Change, found: Survey) -> bool:
    return change.name in found.delta.changed


def _pace(options: ProvisionOptions) -> Pace:
    return Pace(interval=options.poll_interval, time_limit=options.wait_timeout)


def _tell(line: str) -> None:
    get_run_logger().info("%s", line)


@task(name="finish-intents", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
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
@verdicts_as_data
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
@verdicts_as_data
async def restart_stopped(key: str, stopped: list[Refreshed]) -> list[str]:
    """Start the rollout's servers that were stopped out of band (the inventory wants them)."""
    rt = runtime(key)
    started = await start_stopped(rt.client, rt.ledger, rt.rollout, stopped)
    get_run_logger().info("started %d servers stopped out of band", len(started))
    return started


@task(name="resize-and-replace", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def reshape_servers(
    key: str,
    changes: list[Change],
    specs: list[PlannedServer],
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
@verdicts_as_data
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
