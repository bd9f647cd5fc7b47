"""The teardown-fleet flow: plan (the dry run's own) -> the intent -> stop -> terminate -> record.

The plan is ``fleet.teardown.teardown_targets``: the dry run prints it, and a teardown takes
exactly it (handed in by the command that printed it, or made here for a deployment's run).
"""

from __future__ import annotations

from prefect import State as PrefectState
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from fleet import (
    Extra,
    FleetError,
    State,
    TeardownOptions,
    TeardownReport,
    TeardownScope,
    TeardownTarget,
    extras_of,
    teardown,
    teardown_targets,
)
from flows import events
from flows.artifacts import markdown_table
from flows.runtime import Runtime, artifact_key, open_runtime, resolve_credentials, runtime
from flows.stops import decided, verdicts_as_data


async def find_targets(rt: Runtime, options: TeardownOptions) -> TeardownScope:
    """List what goes (recorded servers, lost creates with our marker) and what is left alone."""
    return await teardown_targets(
        rt.client,
        rt.ledger,
        rt.rollout,
        request_timeout=options.request_timeout,
        include_adopted=options.include_adopted,
        only_run=options.only_run,
    )


@task(name="find-servers", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def find(key: str, options: TeardownOptions) -> TeardownScope:
    """List what goes (recorded servers, lost creates with our marker) and what is left alone."""
    return await find_targets(runtime(key), options)


@task(name="find-extras", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def find_extras(key: str, targets: list[TeardownTarget]) -> list[Extra]:
    """List the public IPs and extra disks the targets' creates made (a dry run's listing)."""
    rt = runtime(key)
    return await extras_of(rt.client, rt.ledger, rt.rollout, targets)


@task(name="stop-and-terminate", cache_policy=NO_CACHE, persist_result=False)
@verdicts_as_data
async def take_down(key: str, scope: TeardownScope, options: TeardownOptions) -> TeardownReport:
    """Stop, terminate and wait until gone, in batches, through the rollout's limiter."""
    rt = runtime(key)
    logger = get_run_logger()
    why = "rollback" if options.only_run else "teardown"
    if options.only_run is None:
        # The rollout is retired before anything is stopped: no run, a scheduled one included,
        # creates it again (even if this teardown is cut short) unless it is revived.
        await rt.ledger.retire(rt.rollout)
        logger.info("rollout %s retired: runs create nothing of it until --revive", rt.rollout)
    report = await teardown(
        rt.client,
        rt.ledger,
        rt.rollout,
        scope.taken(lift_protection=options.lift_protection),
        options,
        pending=scope.pending,
        why=why,
        tell=lambda line: logger.info("%s", line),
    )
    if options.only_run is not None:
        # A rollback: a server its run was replacing is the name's own again.
        for i in await rt.ledger.intents(rt.rollout):
            if i.state == State.DEPOSED and await rt.ledger.restore(rt.rollout, i.instance_no):
                logger.info("%s: kept the server it replaced (%s)", i.name, i.instance_no)
    elif not report.left_live and not report.unsettled:
        await rt.ledger.release_names(rt.rollout)  # another rollout may send them now
    return report


def _rows(report: TeardownReport) -> list[dict[str, str]]:
    return (
        [{"serverName": n, "outcome": "terminated", "detail": ""} for n in report.terminated]
        + [
            {"serverName": n, "outcome": "protected", "detail": "termination protection on"}
            for n in report.protected
        ]
        + [{"serverName": n, "outcome": "failed", "detail": d} for n, d in report.failed.items()]
        + [
            {"serverName": n, "outcome": "timed out", "detail": d}
            for n, d in report.timed_out.items()
        ]
        + [
            {
                "serverName": a.name,
                "outcome": "left alone",
                "detail": f"{a.instance_no}: {a.reason}",
            }
            for a in report.left_alone
        ]
        + [
            {"serverName": r.server, "outcome": "returned", "detail": str(r)}
            for r in report.returned
        ]
        + [
            {"serverName": r.server, "outcome": "still billed", "detail": f"{r}: {why}"}
            for r, why in report.extras_left.items()
        ]
        + [
            {"serverName": n, "outcome": "create unknown", "detail": why}
            for n, why in report.unsettled.items()
        ]
    )


@flow(
    name="teardown-fleet",
    description="Stop and terminate every server of a rollout.",
    flow_run_name=events.teardown_run_name,
)
async def teardown_fleet(
    rollout: str,
    options: TeardownOptions = TeardownOptions(),  # noqa: B008 (frozen: shared safely)
    plan: TeardownScope | None = None,
) -> TeardownReport | PrefectState:
    """Take a rollout back down; safe to rerun after a crash.

    ``plan``: the plan a dry run printed (``fleet teardown`` hands it in): exactly that is taken.
    """
    try:
        return await _take_down(rollout, options, plan)
    except FleetError as exc:
        # A verdict (another endpoint, another run holding the rollout ...), not a crash.
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data=exc)


async def _take_down(
    rollout: str, options: TeardownOptions, plan: TeardownScope | None
) -> TeardownReport | PrefectState:
    """Plan (or take the plan given), stop, terminate and record: the flow's body."""
    logger = get_run_logger()
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    async with open_runtime(rollout, options, credentials, lease=not options.dry_run) as rt:
        await events.tag_run(rollout)
        scope = plan or decided(await find(rt.key, options))
        _log_plan(rollout, scope, options)
        taken = scope.taken(lift_protection=options.lift_protection)
        if options.dry_run:
            await _publish_plan(rollout, taken, decided(await find_extras(rt.key, taken)))
            return TeardownReport()
        report = decided(await take_down(rt.key, scope, options))
        report.left_alone = list(scope.left)
        report.protected = sorted({*report.protected, *_kept_protected(scope, options)})
        counts = await _publish_report(rollout, report)
    if report.protected:
        logger.warning(
            "left alone (termination protection): %s; rerun with lift_protection to remove them",
            ", ".join(report.protected),
        )
    if report.left_live or report.unsettled:
        bad = len(report.left_live) + len(report.unsettled)
        return Failed(
            message=f"{bad} of {len(taken) + len(scope.pending)} servers not taken down "
            f"(still billed, or unknown): {counts}",
            data=report,
        )
    if report.extras_left:
        left = "; ".join(f"{r}: {why}" for r, why in report.extras_left.items())
        return Failed(message=f"still billed, not returned: {left}", data=report)
    return report


def _kept_protected(scope: TeardownScope, options: TeardownOptions) -> list[str]:
    """Return the names the plan leaves for termination protection (unless it is lifted)."""
    return [] if options.lift_protection else [t.name for t in scope.protected]


def _log_plan(rollout: str, scope: TeardownScope, options: TeardownOptions) -> None:
    logger = get_run_logger()
    taken = scope.taken(lift_protection=options.lift_protection)
    lost = [t.name for t in taken if not t.recorded]
    logger.info(
        "rollout %s: %d servers to take down (%d lost creates found by their marker), "
        "%d protected, %d creates to look up first",
        rollout,
        len(taken),
        len(lost),
        len(_kept_protected(scope, options)),
        len(scope.pending),
    )
    for alone in scope.left:
        logger.warning(
            "left alone, not this rollout's to take: %s (%s): %s",
            alone.name,
            alone.instance_no,
            alone.reason,
        )


async def _publish_plan(rollout: str, targets: list[TeardownTarget], side: list[Extra]) -> None:
    """Show what a teardown would take down, and what it would return with each server."""
    await acreate_table_artifact(
        [
            {
                "serverName": t.name,
                "serverInstanceNo": t.instance_no,
                "returned": ", ".join(str(r) for r in side if r.server_no == t.instance_no),
            }
            for t in targets
        ],
        key=artifact_key(rollout, "teardown-plan"),
        description=f"What a teardown of {rollout} would take down",
    )


async def _publish_report(rollout: str, report: TeardownReport) -> dict[str, int]:
    """Publish a teardown's table and summary artifacts; return the summary's counts."""
    await acreate_table_artifact(
        _rows(report), key=artifact_key(rollout, "teardown"), description=f"Teardown of {rollout}"
    )
    counts = {
        "terminated": len(report.terminated),
        "protected": len(report.protected),
        "left alone (not this rollout's)": len(report.left_alone),
        "failed": len(report.failed),
        "timed out (still billed)": len(report.timed_out),
        "creates still unknown": len(report.unsettled),
        "public IPs and disks returned": len(report.returned),
        "public IPs and disks still billed": len(report.extras_left),
    }
    await acreate_markdown_artifact(
        markdown_table(f"Teardown of `{rollout}`", dict(counts)),
        key=artifact_key(rollout, "teardown-summary"),
    )
    return counts
