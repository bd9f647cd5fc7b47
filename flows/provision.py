"""The provision-fleet flow: load and validate -> plan -> provision in chunks -> wait -> record."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from prefect import State, flow, get_run_logger, task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

from fleet import (
    SKIPPED,
    Action,
    Change,
    Finished,
    FleetError,
    Ledger,
    PlannedServer,
    Progress,
    ProvisionOptions,
    RolloutRetired,
    RolloutSummary,
    RunAborted,
    Survey,
    Tally,
    TeardownReport,
    Twin,
    WaitReport,
    WaveOutcome,
    counts_words,
    load_inventories,
    plan_changes,
    preflight,
    results_path,
    survey,
    tally,
    twins_of,
    wait_running,
)
from flows import converging, events
from flows.artifacts import publish_results
from flows.runtime import (
    Runtime,
    artifact_key,
    ledger_target,
    open_runtime,
    resolve_credentials,
    rollout_name,
    runtime,
    teardown_options,
)
from flows.stops import Stopped, decided, sync_verdicts_as_data, verdicts_as_data
from flows.tasking import CHUNK_TASK, provision_in, unvisited
from flows.waves import run_stages

T = TypeVar("T")

MAX_CHUNKS = 20  # tens of task runs, never one per server: a task run costs 5-40 ms here
# Each chunk is a task run and an engine's set-up: a few large chunks, not many small ones.
# 20 chunks of 100 made a 2,000-server flow 17% slower than the engine alone, 4 of 500 about 5%
# (bench_throughput, R=100/s).
MIN_CHUNK = 500


def chunks(specs: Sequence[PlannedServer], size: int | None = None) -> list[list[PlannedServer]]:
    """Split servers into at most MAX_CHUNKS chunks (or chunks of ``size``)."""
    if not specs:
        return []
    size = size or max(MIN_CHUNK, math.ceil(len(specs) / MAX_CHUNKS))
    return [list(specs[i : i + size]) for i in range(0, len(specs), size)]


@task(name="load-inventories", cache_policy=NO_CACHE, persist_result=False)
@sync_verdicts_as_data
def load(inventories: list[str]) -> list[PlannedServer]:
    """Read, validate and expand the inventories; every problem at once, before any call."""
    return load_inventories(inventories)


async def plan_rollout(
    rt: Runtime,
    specs: Sequence[PlannedServer],
    options: ProvisionOptions,
    *,
    owner: str | None,
    tell: Callable[[str], None],
) -> Survey:
    """Check the inventory's references (if asked), then compare it with the ledger and NCP.

    The flow's plan step and ``fleet plan`` alike: ``owner`` None writes nothing (a dry plan);
    ``tell`` is handed the preflight's report.
    """
    if options.preflight:  # every bad reference at once, before the survey writes anything
        tell(str(await preflight(rt.client, specs)))
    return await survey(
        rt.client,
        rt.ledger,
        rt.rollout,
        specs,
        owner=owner,
        adopt_existing=options.adopt_existing,
        retry_failed=options.retry_failed,
        request_timeout=options.request_timeout,
    )


@task(name="plan", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def plan(key: str, specs: list[PlannedServer], options: ProvisionOptions) -> Survey:
    """Check the inventory's references, then compare it with the ledger and with NCP."""
    rt = runtime(key)
    logger = get_run_logger()
    if not options.preflight:
        logger.warning(SKIPPED)
    return await plan_rollout(
        rt, specs, options, owner=rt.owner, tell=lambda report: logger.info("%s", report)
    )


@task(name="provision-chunk", **CHUNK_TASK)
@verdicts_as_data
async def provision_chunk(key: str, specs: list[PlannedServer], options: ProvisionOptions) -> None:
    """Create (or settle) one chunk of servers; per-server failures are recorded, not raised."""
    await provision_in(runtime(key), specs, options)


@task(name="wait-for-run", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def wait_for_run(key: str, options: ProvisionOptions) -> WaitReport:
    """Poll the created servers, a batch per call, until each is RUN or has failed."""
    rt = runtime(key)

    async def report(running: int, total: int) -> None:
        rt.progress.running = running
        rt.ready = (running, total)

    result = await wait_running(
        rt.client,
        rt.ledger,
        rt.rollout,
        time_limit=options.wait_timeout,
        interval=options.poll_interval,
        on_progress=report,
        tell=lambda line: get_run_logger().info("%s", line),
    )
    get_run_logger().info(
        "%d running, %d failed, %d timed out",
        len(result.running),
        len(result.failed),
        len(result.timed_out),
    )
    return result


@task(name="find-twins", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def find_twins(key: str, names: list[str], before: list[Twin]) -> list[Twin]:
    """Read again the names this run created: a second server under one is said, never silent."""
    rt = runtime(key)
    after = await twins_of(rt.client, rt.ledger, rt.rollout, names) if names else []
    twins = list({(t.name, t.instance_no): t for t in [*before, *after]}.values())
    for twin in twins:
        get_run_logger().warning("%s", twin)
    if twins:
        shown = [{"name": t.name, "instance_no": t.instance_no, "why": t.why} for t in twins]
        shown = shown[: events.BATCH]
        events.emit("fleet.rollout.twins", rt.rollout, servers=shown, count=len(twins))
    return twins


@task(name="record-results", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def record(key: str, summary: RolloutSummary, tally: Tally) -> None:
    """Write the results CSV and the Prefect artifacts."""
    await publish_results(runtime(key), summary, tally)


def _describe(p: Progress, ready: tuple[int, int] | None) -> str:
    """Return this run's progress in words: its own creates, of its own total."""
    text = (
        f"this run: {p.created} created, {p.failed} failed, {p.settling} being looked up, "
        f"{p.unknown} unknown, of {p.total}"
    )
    return text + (f"; {ready[0]} of {ready[1]} running" if ready else "")


def percent_done(p: Progress, ready: tuple[int, int] | None = None) -> float:
    """Return this run's share done, 0 to 100: its creates, then (when waiting) its servers ready.

    ``ready`` is (running, waited for) as the wait counts them; a run with nothing to do is done.
    """
    created = p.done / p.total if p.total else 1.0
    if not p.waiting:
        return round(100.0 * min(created, 1.0), 1)
    running, of = ready or (0, 0)
    up = running / of if of else 0.0
    return round(100.0 * min((created + up) / 2, 1.0), 1)


async def _report_progress(key: str, artifact_id: Any, every: float = 1.0) -> None:
    """Update the progress artifact about once a second (one PATCH each), not per server."""
    rt = runtime(key)
    last = -1.0
    while True:
        p = rt.progress
        percent = percent_done(p, rt.ready)
        if percent != last:
            last = percent
            await aupdate_progress_artifact(
                artifact_id, percent, description=_describe(p, rt.ready)
            )
        await asyncio.sleep(every)


async def _decided(run: Coroutine[Any, Any, T | Stopped]) -> T:
    """Await a task run; raise its verdict here, in the flow, where no traceback is logged."""
    return decided(await run)


async def _provision(key: str, work: Sequence[PlannedServer], options: ProvisionOptions) -> None:
    """Run the chunk tasks together; one failing (after its retry) cancels and awaits the rest.

    A few of them send at once (``Runtime.sending``); the others wait for a slot.
    """
    try:
        async with asyncio.TaskGroup() as group:
            for i, chunk in enumerate(chunks(work, options.chunk_size), 1):
                task_ = provision_chunk.with_options(name=f"provision-chunk-{i:02d}")
                group.create_task(_decided(task_(key, unvisited(chunk), options)))
    except BaseExceptionGroup as errors:
        first = errors.exceptions[0]
        raise RunAborted(
            f"the run stopped part-way: {first}. What it did is recorded; run it again to "
            "settle what was in flight and create the rest."
        ) from first


def _log_plan(name: str, specs: Sequence[PlannedServer], found: Survey) -> None:
    logger = get_run_logger()
    logger.info(
        "rollout %s: %d servers, %d to create, %d to settle, %d already created, "
        "%d reconciled, %d adopted, %d failed permanently before",
        name,
        len(specs),
        len(found.to_create),
        len(found.unsettled),
        len(found.done),
        len(found.reconciled),
        len(found.adopted),
        len(found.skipped_failed),
    )
    if found.gone or found.stopped:
        logger.warning(
            "drift: %d gone out of band (created again: %s), %d stopped out of band (started: %s)",
            len(found.gone),
            ", ".join(found.gone[:10]),
            len(found.stopped),
            ", ".join(s.name for s in found.stopped[:10]),
        )
    if found.delta.changed:
        logger.warning(
            "%d created servers differ from the inventory now (not changed on NCP): %s",
            len(found.delta.changed),
            ", ".join(found.delta.changed[:10]),
        )
    for name_, numbers in found.duplicates:
        logger.warning("%s: more than one server carries this name: %s", name_, numbers)


def _summary(
    rt: Runtime,
    specs: Sequence[PlannedServer],
    found: Survey,
    created: _Created,
    options: ProvisionOptions,
    tally: Tally,
) -> RolloutSummary:
    """Return the one summary of this run, which everything after reads."""
    stats = rt.client.stats
    path = options.results or str(results_path(rt.ledger.sync.shown, rt.rollout))
    return RolloutSummary(
        rollout=rt.rollout,
        results=path,
        counts=tally.counts,
        servers=len(specs),
        sent=len(found.to_create),
        settled=len(found.unsettled),
        reconciled=len(found.reconciled),
        adopted=len(found.adopted),
        changed=len(found.delta.changed),
        seconds=created.seconds,
        api_calls=sum(stats.calls.values()),
        throttled=stats.throttled,
        unprocessed=stats.errors.get("retryable", 0) + stats.errors.get("throttled", 0),
        ambiguous=rt.ambiguous,
        lookups=rt.lookups,
        retries=stats.retries,
        waited=options.wait or options.staged,
        waves=tuple(created.waves),
        stopped=created.stopped,
        rate_asked=options.rate if isinstance(options.rate, float) else None,
        rate_found=rt.limiter.found_rate,
        rate_seconds=rt.limiter.measure.seconds if rt.limiter.measure else 0.0,
        rate_final=created.rate_final,
        run_tag=rt.run,
        run=tally.run,
    )


@dataclass(frozen=True, slots=True)
class _Created:
    """How the creating went: its seconds, and for a staged rollout its stages and any stop."""

    seconds: float
    waves: Sequence[WaveOutcome] = ()
    stopped: str | None = None
    rate_final: float | None = None  # calls/s the limiter was at when creating ended


async def _create(
    rt: Runtime,
    found: Survey,
    options: ProvisionOptions,
    reshaping: Sequence[Change] = (),
    specs: Sequence[PlannedServer] = (),
) -> _Created:
    """Create the servers: all at once in chunk tasks (waiting after, if asked), or in stages.

    A staged run resizes and replaces (``reshaping``) wave by wave with the creates.
    """
    if found.stopped:
        decided(await converging.restart_stopped(rt.key, list(found.stopped)))
    started = time.monotonic()
    if options.staged:
        waves, stopped = await run_stages(rt, found.work, options, reshaping, specs)
        return _Created(time.monotonic() - started, waves, stopped, rt.limiter.rate)
    await _provision(rt.key, found.work, options)
    elapsed, rate_final = time.monotonic() - started, rt.limiter.rate
    if options.wait:
        rt.progress.waiting = True
        decided(await wait_for_run(rt.key, options))
    return _Created(elapsed, rate_final=rate_final)


def _final(summary: RolloutSummary) -> str:
    """Return the progress artifact's last words: this run's work, then the rollout's counts."""
    c = summary.counts
    return f"{summary.run.line}. Rollout: {counts_words(c)}" + (
        f"; stopped: {summary.stopped}" if summary.stopped else ""
    )


async def _roll_out(name: str, inventories: list[str], options: ProvisionOptions) -> RolloutSummary:
    """Load, plan, create (in chunks or stages), wait if asked, record: the flow's body."""
    specs = decided(load(inventories))
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    async with open_runtime(name, options, credentials) as rt:
        await _unless_retired(rt, options)
        finished = decided(await converging.finish_intents(rt.key, options))
        found = decided(await plan(rt.key, unvisited(specs), options))
        changes, drift = await _changes(rt, specs, found, options)
        rt.progress.total = len(found.work)
        progress_id = await acreate_progress_artifact(
            0.0, key=artifact_key(name, "progress"), description=f"Provisioning {name}"
        )
        reporter = asyncio.create_task(_report_progress(rt.key, progress_id))
        try:
            staged = converging.staged_reshaping(changes, found, options)
            created = await _create(rt, found, options, staged, specs)
            # A run that stopped and rolls back leaves its replaces' old servers to the rollback.
            keep_deposed = bool(created.stopped) and options.on_failure == "rollback"
            applied = await _apply(rt, changes, specs, found, options, keep_deposed)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        # Counted a page at a time: at no point are all the rollout's records held at once.
        counted = await asyncio.to_thread(
            tally,
            rt.ledger.sync,
            name,
            {s.name for s in found.to_create},
            {s.name for s in found.unsettled},
            len(specs) - len(found.work),
        )
        if not options.staged:
            events.failed_servers(name, counted.failed)  # a staged rollout told them wave by wave
        summary = replace(
            _summary(rt, specs, found, created, options, counted),
            planned=converging.counts_of(changes),
            pending=converging.pending(changes, options),
            drifted=drift.counts() if drift else {},
            reshaped=applied.reshaped,
            destroyed=applied.destroyed,
            unchanged=applied.unchanged,
            finished={**finished.done, **applied.retired.done},
            unfinished={**finished.left, **applied.retired.left},
            twins=applied.twins,
        )
        get_run_logger().info("%s", summary.rate_line)
        decided(await record(rt.key, summary, counted))
        await aupdate_progress_artifact(progress_id, 100.0, description=_final(summary))
    return summary


async def _unless_retired(rt: Runtime, options: ProvisionOptions) -> None:
    """Refuse a torn-down rollout (nothing sent), or revive it when asked.

    Raises:
        RolloutRetired: the rollout was torn down and ``--revive`` was not given.

    """
    retired = await rt.ledger.retired(rt.rollout)
    if retired is None:
        return
    if not options.revive:
        raise RolloutRetired(
            f"rollout {rt.rollout!r} was torn down ({retired}): it is retired, and no run (a "
            "scheduled one included) creates it again. Pass --revive to create it anew; "
            "nothing was sent."
        )
    await rt.ledger.retire(rt.rollout, revive=True)
    get_run_logger().warning("rollout %s revived: torn down %s, created anew", rt.rollout, retired)


async def _changes(
    rt: Runtime, specs: Sequence[PlannedServer], found: Survey, options: ProvisionOptions
) -> tuple[list[Change], converging.Drift | None]:
    """Say what the plan found; return its one change per server and the drift; tell the start."""
    _log_plan(rt.rollout, specs, found)
    records = await rt.ledger.records(rt.rollout)
    changes = plan_changes(specs, records, found)
    del records  # a record per server, not kept while creating
    drift = converging.tell_drift(rt.rollout, found, changes)
    events.emit(
        "fleet.rollout.started",
        rt.rollout,
        servers=len(specs),
        to_create=len(found.to_create),
        to_settle=len(found.unsettled),
        staged=options.staged,
    )
    return changes, drift


@dataclass(frozen=True, slots=True)
class _Applied:
    """What a run changed after its creates, and what it found under its names."""

    reshaped: int  # resized or replaced
    destroyed: int  # taken down as no longer in the inventory
    unchanged: dict[str, str]  # name -> why not resized, replaced or destroyed
    retired: Finished  # earlier replaces this run finished (or left)
    twins: tuple[str, ...]  # second servers under its names, not its own


async def _apply(
    rt: Runtime,
    changes: list[Change],
    specs: Sequence[PlannedServer],
    found: Survey,
    options: ProvisionOptions,
    keep_deposed: bool = False,
) -> _Applied:
    """Retire what replaces left deposed, resize and replace (``--replace``), destroy (``--prune``).

    Then read again the names this run created, for second servers not its own.
    """
    reshaped_n = destroyed_n = 0
    unchanged: dict[str, str] = {}
    # Replaces an earlier run began, whose new servers this run made or waited for.
    retired = Finished()
    if not keep_deposed:
        retired = decided(await converging.retire_deposed(rt.key, options))
    left = converging.pending(changes, options)
    if left:
        get_run_logger().warning("left for a flag: %s", left)
    reshaping = options.replace and not options.staged  # a staged run did it wave by wave
    if reshaping and any(c.action in (Action.RESIZE, Action.REPLACE) for c in changes):
        protected = [s.name for s in found.seen if s.server is not None and s.server.protected]
        reshaped = decided(
            await converging.reshape_servers(
                rt.key, changes, unvisited(list(specs)), options, protected
            )
        )
        reshaped_n = len(reshaped.done)
        unchanged.update({**reshaped.failed, **reshaped.left})
    if options.prune and any(c.action == Action.DESTROY for c in changes):
        report = decided(await converging.destroy_removed(rt.key, changes, options))
        destroyed_n = len(report.terminated)
        unchanged.update(
            {n: "termination protection is on: not destroyed" for n in report.protected}
        )
        unchanged.update({n: f"not destroyed: {why}" for n, why in report.failed.items()})
    for name, why in unchanged.items():
        get_run_logger().warning("%s: %s", name, why)
    touched = [s.name for s in found.work]
    twins = decided(await find_twins(rt.key, touched, list(found.twins)))
    return _Applied(reshaped_n, destroyed_n, unchanged, retired, tuple(str(t) for t in twins))


async def _roll_back(summary: RolloutSummary, options: ProvisionOptions) -> RolloutSummary:
    """Tear down what a stopped rollout made, through the teardown flow and all its rules."""
    from flows.teardown import teardown_fleet

    get_run_logger().warning("rolling %s back: %s", summary.rollout, summary.stopped)
    # Only what this run created: never an earlier run's servers, nor an adopted one; a server
    # it was replacing keeps its old instance. Its time limit is the run's own wait.
    scope = teardown_options(options).model_copy(
        update={"only_run": summary.run_tag, "time_limit": options.wait_timeout}
    )
    state = await teardown_fleet(rollout=summary.rollout, options=scope, return_state=True)
    report = await state.aresult(raise_on_failure=False)
    if not isinstance(report, TeardownReport):
        report = TeardownReport(failed={"rollback": str(state.message)})
    for name, why in report.left_live.items():
        get_run_logger().warning("%s: left by the rollback, still billed: %s", name, why)
    # The counts after the rollback, as the ledger has them now: never before it.
    target = await ledger_target(options)
    with Ledger(target) as book:
        counts = book.counts(summary.rollout)
    return replace(
        summary,
        counts=counts,
        rolled_back=not (report.left_live or report.unsettled),
        taken_back=tuple(sorted(report.terminated)),
        rollback_left={**report.left_live, **report.unsettled},
    )


@flow(
    name="provision-fleet",
    description="Create the servers of CSV inventories on NCP.",
    flow_run_name=events.run_name,
)
async def provision_fleet(
    inventories: list[str],
    rollout: str | None = None,
    options: ProvisionOptions = ProvisionOptions(),  # noqa: B008 (frozen: shared safely)
) -> RolloutSummary | State:
    """Create every server of the inventories once, recording each instance number.

    A run that found drift (servers gone, stopped or changed by hand) ends ``Completed`` under
    the name ``Drifted``, which the runs list shows.
    """
    name = rollout or rollout_name(inventories)
    await events.tag_run(name)  # first: a run that stops at once is found by its rollout too
    try:
        summary = await _roll_out(name, inventories, options)
    except FleetError as exc:
        # A verdict (bad input, another run holding the rollout, the ledger lost ...), not a
        # crash: the run ends Failed with the reason, and no traceback.
        get_run_logger().error("%s", exc)
        events.emit(
            "fleet.rollout.finished",
            name,
            labels={"outcome": "failed"},
            outcome="failed",
            reason=str(exc),
        )
        return Failed(message=str(exc), data=exc)
    if summary.stopped and options.on_failure == "rollback":
        summary = await _roll_back(summary, options)
    return _ended_as(summary)


def _ended_as(summary: RolloutSummary) -> RolloutSummary | State:
    """Tell how the run ended (an event), and return the state it ends in, with why."""
    c = summary.counts
    outcome = "stopped" if summary.stopped else "failed" if summary.not_done else "completed"
    events.emit(
        "fleet.rollout.finished",
        summary.rollout,
        labels={"outcome": outcome},
        outcome=outcome,
        created=c.made,
        failed=c.failed,
        unknown=c.in_flight,
        running=c.running,
        total=c.total,
        stopped=summary.stopped,
        rolled_back=summary.rolled_back,
    )
    if summary.not_done:
        why = f"stopped: {summary.stopped}; " if summary.stopped else ""
        return Failed(
            message=(
                f"{why}{summary.not_done} of {c.total} servers not done: {counts_words(c)}; "
                f"see {summary.results}"
            ),
            data=summary,
        )
    if summary.twins:
        return Failed(
            message=f"{len(summary.twins)} second server(s) under this rollout's names, not its "
            f"own: {'; '.join(summary.twins[:5])}",
            data=summary,
        )
    if any(summary.drifted.values()):
        drifted = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in summary.drifted.items())
        return Completed(message=f"drift found: {drifted}", name="Drifted", data=summary)
    return summary
