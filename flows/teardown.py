"""The teardown-fleet flow: find the rollout's servers -> stop -> terminate -> record."""

from __future__ import annotations

from prefect import State, flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from fleet.errors import FleetError
from fleet.ledger import Extra
from fleet.options import TeardownOptions
from fleet.teardown import (
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
from flows.verdicts import decided, verdicts


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
@verdicts
async def find(key: str, options: TeardownOptions) -> TeardownScope:
    """List what goes (recorded servers, lost creates with our marker) and what is left alone."""
    return await find_targets(runtime(key), options)


@task(name="find-extras", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def find_extras(key: str, targets: list[TeardownTarget]) -> list[Extra]:
    """List the public IPs and extra disks the targets' creates made (a dry run's listing)."""
    rt = runtime(key)
    return await extras_of(rt.client, rt.ledger, rt.rollout, targets)


@task(name="stop-and-terminate", cache_policy=NO_CACHE, persist_result=False)
@verdicts
async def take_down(
    key: str, targets: list[TeardownTarget], options: TeardownOptions
) -> TeardownReport:
    """Stop, terminate and wait until gone, in batches, through the rollout's limiter."""
    rt = runtime(key)
    return await teardown(rt.client, rt.ledger, rt.rollout, targets, options)


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
    )


@flow(
    name="teardown-fleet",
    description="Stop and terminate every server of a rollout.",
    flow_run_name=events.teardown_run_name,
)
async def teardown_fleet(
    rollout: str,
    options: TeardownOptions = TeardownOptions(),  # noqa: B008 (frozen: shared safely)
) -> TeardownReport | State:
    """Take a rollout back down; safe to rerun after a crash."""
    try:
        return await _take_down(rollout, options)
    except FleetError as exc:
        # A verdict (another endpoint, another run holding the rollout ...), not a crash.
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data=exc)


async def _take_down(rollout: str, options: TeardownOptions) -> TeardownReport | State:
    """Find, stop, terminate and record: the flow's body."""
    logger = get_run_logger()
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    async with open_runtime(rollout, options, credentials, lease=not options.dry_run) as rt:
        await events.tag_run(rollout)
        scope = decided(await find(rt.key, options))
        targets = scope.targets
        lost = [t.name for t in targets if not t.recorded]
        logger.info(
            "rollout %s: %d servers to take down (%d lost creates found by their marker)",
            rollout,
            len(targets),
            len(lost),
        )
        for alone in scope.left:
            logger.warning(
                "left alone, not this rollout's to take: %s (%s): %s",
                alone.name,
                alone.instance_no,
                alone.reason,
            )
        if options.dry_run:
            await _publish_plan(rollout, targets, decided(await find_extras(rt.key, targets)))
            return TeardownReport()
        report = decided(await take_down(rt.key, targets, options))
        report.left_alone = list(scope.left)
        if options.only_run is not None:  # a rollback: replaced servers keep their old one
            restored = await rt.ledger.restore_replaced(rollout)
            if restored:
                logger.info("kept the servers they replaced: %s", ", ".join(restored))
        counts = await _publish_report(rollout, report)
    if report.protected:
        logger.warning(
            "left alone (termination protection): %s; rerun with lift_protection to remove them",
            ", ".join(report.protected),
        )
    if report.failed or report.timed_out:
        bad = len(report.failed) + len(report.timed_out)
        return Failed(
            message=f"{bad} of {len(targets)} servers not terminated: {counts}", data=report
        )
    if report.extras_left:
        left = "; ".join(f"{r}: {why}" for r, why in report.extras_left.items())
        return Failed(message=f"still billed, not returned: {left}", data=report)
    return report


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
        "timed out": len(report.timed_out),
        "public IPs and disks returned": len(report.returned),
        "public IPs and disks still billed": len(report.extras_left),
    }
    await acreate_markdown_artifact(
        markdown_table(f"Teardown of `{rollout}`", dict(counts)),
        key=artifact_key(rollout, "teardown-summary"),
    )
    return counts
