"""The teardown-fleet flow: find the rollout's servers -> stop -> terminate -> record."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from fleet.ledger import DEFAULT_LEDGER
from fleet.lifecycle import TeardownReport, TeardownTarget, teardown, teardown_targets
from flows.runtime import (
    DEFAULT_BURST,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE,
    artifact_key,
    open_runtime,
    resolve_credentials,
    runtime,
)


@task(name="find-servers", cache_policy=NO_CACHE, persist_result=False)
async def find(key: str) -> list[TeardownTarget]:
    """List what goes: recorded servers, and servers with planned names never recorded."""
    rt = runtime(key)
    return await teardown_targets(rt.client, rt.ledger, rt.rollout)


@task(name="stop-and-terminate", cache_policy=NO_CACHE, persist_result=False)
async def take_down(
    key: str,
    targets: list[TeardownTarget],
    lift_protection: bool,
    time_limit: float,
    interval: float,
) -> TeardownReport:
    """Stop, terminate and wait until gone, in batches, through the rollout's limiter."""
    rt = runtime(key)
    return await teardown(
        rt.client,
        rt.ledger,
        rt.rollout,
        targets,
        lift_protection=lift_protection,
        time_limit=time_limit,
        interval=interval,
    )


@flow(name="teardown-fleet", description="Stop and terminate every server of a rollout.")
async def teardown_fleet(
    rollout: str,
    site: str = "public",
    endpoint: str | None = None,
    ledger: str = str(DEFAULT_LEDGER),
    rate: float = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    concurrency: int = DEFAULT_CONCURRENCY,
    lift_protection: bool = False,
    dry_run: bool = False,
    time_limit: float = 1800.0,
    poll_interval: float = 10.0,
    credentials_block: str | None = None,
    shared_limit: str | None = None,
) -> dict[str, Any] | State:
    """Take a rollout back down; safe to rerun after a crash."""
    logger = get_run_logger()
    credentials = await resolve_credentials(credentials_block)
    async with open_runtime(
        rollout,
        credentials=credentials,
        site=site,
        endpoint=endpoint,
        ledger_path=ledger,
        rate=rate,
        burst=burst,
        concurrency=concurrency,
        shared_limit=shared_limit,
    ) as rt:
        targets = await find(rt.key)
        lost = [t.name for t in targets if not t.recorded]
        logger.info(
            "rollout %s: %d servers to take down (%d found by name, never recorded)",
            rollout,
            len(targets),
            len(lost),
        )
        if dry_run:
            await acreate_table_artifact(
                [{"serverName": t.name, "serverInstanceNo": t.instance_no} for t in targets],
                key=artifact_key(rollout, "teardown-plan"),
                description=f"What a teardown of {rollout} would take down",
            )
            return {"rollout": rollout, "would_terminate": [t.name for t in targets]}
        report = await take_down(rt.key, targets, lift_protection, time_limit, poll_interval)
        rows = (
            [{"serverName": n, "outcome": "terminated", "detail": ""} for n in report.terminated]
            + [
                {"serverName": n, "outcome": "protected", "detail": "termination protection on"}
                for n in report.protected
            ]
            + [
                {"serverName": n, "outcome": "failed", "detail": d}
                for n, d in report.failed.items()
            ]
            + [
                {"serverName": n, "outcome": "timed out", "detail": d}
                for n, d in report.timed_out.items()
            ]
        )
        await acreate_table_artifact(
            rows, key=artifact_key(rollout, "teardown"), description=f"Teardown of {rollout}"
        )
        counts = {
            "terminated": len(report.terminated),
            "protected": len(report.protected),
            "failed": len(report.failed),
            "timed_out": len(report.timed_out),
        }
        await acreate_markdown_artifact(
            "\n".join(
                [f"# Teardown of `{rollout}`", "", "| | |", "|---|---|"]
                + [f"| {k} | {v} |" for k, v in counts.items()]
            ),
            key=artifact_key(rollout, "teardown-summary"),
        )
    if report.protected:
        logger.warning(
            "left alone (termination protection): %s; rerun with lift_protection to remove them",
            ", ".join(report.protected),
        )
    if report.failed or report.timed_out:
        return Failed(
            message=(
                f"{len(report.failed) + len(report.timed_out)} of {len(targets)} servers not "
                f"terminated: {counts}"
            )
        )
    return {"rollout": rollout, **counts}
