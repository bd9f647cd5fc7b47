"""A staged rollout in the flow: the canary, then wave after wave, each waited for, on a budget.

One task run per stage (``canary``, ``wave-02`` ...), never one per server. After each stage
its failures (refused creates, servers never ready) are counted against the budget; the canary
may fail nothing. Between stages the rollout may pause for approval (flows.approval).

Each stage's line goes to the run's log as the stage ends, and to whoever listens in this process
(the command line prints it then, not at the end); so does a line naming any wave asked for that
the stages before it cover (``fleet.create.stages.covered``), never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from fleet import (
    WAVE_COLUMNS,
    Action,
    Budget,
    Change,
    Pace,
    PlannedServer,
    ProvisionOptions,
    Record,
    Size,
    Stage,
    State,
    WaitReport,
    WaveOutcome,
    covered,
    parse_sizes,
    resize,
    resize_next,
    retire,
    stages_for,
    wait_running,
)
from flows import approval, events
from flows.runtime import Runtime, runtime, teardown_options
from flows.stops import decided, verdicts_as_data
from flows.tasking import CHUNK_TASK, provision_in, unvisited

__all__ = ["run_stages", "run_wave", "set_stage_listener"]

# Who hears, in this process, each stage's line as it ends: the command line, which prints it.
StageListener = Callable[[str], None]
_LISTENERS: list[StageListener] = []


def set_stage_listener(listener: StageListener | None) -> None:
    """Hear each stage's line as the stage ends (None: stop listening)."""
    _LISTENERS.clear()
    if listener is not None:
        _LISTENERS.append(listener)


def _tell(line: str) -> None:
    """Log a stage's line in the run, and hand it to the listener, now."""
    get_run_logger().info("%s", line)
    for listener in _LISTENERS:
        listener(line)


def _tell_covered(stages: Sequence[Stage], options: ProvisionOptions) -> None:
    """Say which waves asked for are no stage, and why: the stages before them hold theirs."""
    if not options.waves:
        return
    sizes = parse_sizes(options.waves)
    for name in covered(stages, sizes):
        size = sizes[int(name.removeprefix("wave-")) - 1]
        before = "the canary" if stages and stages[0].canary else "the waves before it"
        _tell(f"{name} ({size}): nothing left to send in it, {before} already holds its servers")


def _outcome(name: str, records: Sequence[Record], report: WaitReport) -> WaveOutcome:
    return WaveOutcome(
        name=name,
        servers=len(records),
        sent=sum(1 for r in records if r.attempts or r.state.made),
        created=sum(1 for r in records if r.state.made),
        failed=sum(1 for r in records if r.state == State.FAILED),
        not_ready=len(report.failed) + len(report.timed_out),
        ready=len(report.running),
    )


@task(name="wave", **CHUNK_TASK)
@verdicts_as_data
async def run_wave(
    key: str,
    name: str,
    specs: list[PlannedServer],
    options: ProvisionOptions,
    spent: tuple[int, int],
    changes: list[Change] | None = None,
) -> WaveOutcome:
    """Create (or replace, or resize) one stage's servers, then wait until they run.

    Until the budget is spent. A replaced server's old instance stays until the stage passes.
    """
    rt = runtime(key)
    resizing = await _begin(rt, specs, changes or [])
    failed_before, sent_before = spent
    budget = Budget(Size.parse("0", zero=True)) if name == "canary" else options.budget
    done0, failed0 = rt.progress.done, rt.progress.failed

    def stop() -> bool:
        failed = failed_before + rt.progress.failed - failed0
        return budget.exceeded(failed, sent_before + rt.progress.done - done0)

    resized_names = {c.name for c in resizing}
    await provision_in(rt, [s for s in specs if s.name not in resized_names], options, stop=stop)
    pace = Pace(interval=options.poll_interval, time_limit=options.wait_timeout)
    logger = get_run_logger()
    resized = await resize(rt.client, rt.ledger, rt.rollout, resizing, specs, pace, logger.info)
    names = [s.name for s in specs]  # this wave's servers only: a wave is not the rollout
    report = await wait_running(
        rt.client,
        rt.ledger,
        rt.rollout,
        names=set(names),
        time_limit=options.wait_timeout,
        interval=options.poll_interval,
        tell=logger.info,
    )
    records = await rt.ledger.records(rt.rollout, names)
    events.failed_servers(rt.rollout, records)
    outcome = _outcome(name, records, report)
    return replace(outcome, failed=outcome.failed + len(resized.failed))


async def _begin(
    rt: Runtime, specs: Sequence[PlannedServer], changes: Sequence[Change]
) -> list[Change]:
    """Plan a stage's replacements anew (their old instances kept); return its resizes."""
    by_name = {s.name: s for s in specs}
    for c in changes:
        if c.action == Action.REPLACE and c.instance_no is not None:
            await rt.ledger.begin_replace(rt.rollout, by_name[c.name], c.instance_no, rt.run)
    return [c for c in changes if c.action == Action.RESIZE]


@task(name="retire-replaced", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def retire_replaced(key: str, names: list[str], options: ProvisionOptions) -> int:
    """Take down the old instances of a passed stage's replaced servers; return how many."""
    rt = runtime(key)
    pace = Pace(interval=options.poll_interval, time_limit=options.wait_timeout)
    report = await retire(rt.client, rt.ledger, rt.rollout, teardown_options(options), pace, names)
    return len(report.done)


def _so_far(rollout: str, outcomes: Sequence[WaveOutcome], next_stage: Stage) -> str:
    lines = [
        f"# Rollout `{rollout}`: approve the next wave?",
        "",
        "| " + " | ".join(WAVE_COLUMNS) + " |",
        "|" + "---|" * len(WAVE_COLUMNS),
    ]
    lines += ["| " + " | ".join(str(v) for v in w.row().values()) + " |" for w in outcomes]
    lines += ["", f"Next: **{next_stage.name}**, {len(next_stage.specs)} servers."]
    return "\n".join(lines)


def _stop_reason(
    stage: Stage, outcome: WaveOutcome, options: ProvisionOptions, spent: tuple[int, int]
) -> str | None:
    failed, sent = spent
    if stage.canary and outcome.failures:
        return (
            f"the canary failed: {outcome.failed} refused, {outcome.not_ready} never ready, "
            f"of {outcome.servers}; nothing more was sent"
        )
    if options.budget.exceeded(failed, sent) or outcome.sent < outcome.servers:
        return (
            f"the failure budget ({options.max_failures}) is spent: {failed} failures in "
            f"{sent} servers sent; nothing more was sent"
        )
    return None


async def run_stages(
    rt: Runtime,
    work: Sequence[PlannedServer],
    options: ProvisionOptions,
    reshaping: Sequence[Change] = (),
    specs: Sequence[PlannedServer] = (),
) -> tuple[list[WaveOutcome], str | None]:
    """Run the canary and the waves in order; return each stage's outcome and why it stopped.

    ``reshaping`` (resizes and replaces, with ``specs`` the inventory) go wave by wave with the
    creates: a replaced server's old instance is taken down only once its stage passed.
    """
    ahead = stages_for(options, _in_order(work, reshaping, specs))
    _tell_covered(ahead, options)
    ran: list[Stage] = []
    outcomes: list[WaveOutcome] = []
    failed = sent = 0
    while ahead:
        stage, ahead = ahead[0], ahead[1:]
        ran.append(stage)
        call = run_wave.with_options(name=stage.name)
        members = {s.name for s in stage.specs}
        mine = [c for c in reshaping if c.name in members]
        outcome = decided(
            await call(
                rt.key, stage.name, unvisited(list(stage.specs)), options, (failed, sent), mine
            )
        )
        outcomes.append(outcome)
        _tell(outcome.line)
        failed, sent = failed + outcome.failures, sent + outcome.sent
        events.emit("fleet.wave.completed", rt.rollout, **asdict(outcome))
        reason = _stop_reason(stage, outcome, options, (failed, sent))
        if reason is not None:
            return outcomes, reason
        # A rollback gives replaced servers their old instance back: those stay until the end.
        if options.on_failure == "keep" and any(c.action == Action.REPLACE for c in mine):
            decided(await retire_replaced(rt.key, sorted(members), options))
        if ahead and _approval_after(stage, options):
            approved = await _approved(rt, ran, ahead, outcomes, options, (failed, sent))
            if approved is None:
                return outcomes, f"aborted at the approval after {stage.name}"
            ahead = approved
    if options.on_failure == "rollback" and any(c.action == Action.REPLACE for c in reshaping):
        decided(await retire_replaced(rt.key, sorted(c.name for c in reshaping), options))
    return outcomes, None


async def _approved(
    rt: Runtime,
    ran: Sequence[Stage],
    ahead: Sequence[Stage],
    outcomes: Sequence[WaveOutcome],
    options: ProvisionOptions,
    so_far: tuple[int, int],
) -> list[Stage] | None:
    """Ask to go on after the last stage run; return the stages ahead (None: refused).

    The operator may change the next wave's size: the stages ahead come back resized.
    """
    failed, sent = so_far
    after = ran[-1].name
    events.emit("fleet.rollout.paused", rt.rollout, after=after, failed=failed, sent=sent)
    decision = await approval.ask(
        rt.rollout,
        f"after-{after}",
        _so_far(rt.rollout, outcomes, ahead[0]),
        options.approve_patience,
        options.poll_interval,
    )
    if not decision.approve:
        return None
    if not decision.next_wave:
        return list(ahead)
    resized = resize_next([*ran, *ahead], len(ran), Size.parse(decision.next_wave))
    return resized[len(ran) :]


def _in_order(
    work: Sequence[PlannedServer], reshaping: Sequence[Change], specs: Sequence[PlannedServer]
) -> list[PlannedServer]:
    """Return the servers to create and to change, in inventory order."""
    changing = {c.name for c in reshaping}
    if not changing:
        return list(work)
    todo = {s.name for s in work} | changing
    return [s for s in specs if s.name in todo]


def _approval_after(stage: Stage, options: ProvisionOptions) -> bool:
    return options.approve == "waves" or (options.approve == "canary" and stage.canary)
