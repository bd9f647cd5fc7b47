"""The provision-fleet flow: load and validate -> plan -> provision in chunks -> wait -> record."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from fleet.errors import FleetError
from fleet.inventory import ServerSpec, load_inventories
from fleet.ledger import DEFAULT_LEDGER, Record
from fleet.lifecycle import WaitReport, wait_running
from fleet.provisioner import Preflight
from fleet.results import COLUMNS, as_row, results_path, summarize, write_results
from flows.runtime import (
    DEFAULT_BURST,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE,
    artifact_key,
    open_runtime,
    resolve_credentials,
    rollout_name,
    runtime,
)

MAX_CHUNKS = 20  # tens of task runs, never one per server: a task run costs 5-40 ms here
MIN_CHUNK = 50


def infrastructure_only(task: Any, task_run: Any, state: State) -> bool:
    """Retry a chunk task only for failures that are not NCP's verdict on a server."""
    try:
        state.result()
    except FleetError:
        return False  # NCP's answer or our own refusal: a retry cannot change it
    except Exception:
        # The chunk is safe to run again: provision() skips what the ledger holds as created
        # and looks up what it holds in flight before sending anything.
        return True
    return False


def chunks(specs: Sequence[ServerSpec], size: int | None = None) -> list[list[ServerSpec]]:
    """Split servers into at most MAX_CHUNKS chunks (or chunks of ``size``)."""
    if not specs:
        return []
    size = size or max(MIN_CHUNK, math.ceil(len(specs) / MAX_CHUNKS))
    return [list(specs[i : i + size]) for i in range(0, len(specs), size)]


@task(name="load-inventories", cache_policy=NO_CACHE, persist_result=False)
def load(inventories: list[str]) -> list[ServerSpec]:
    """Read, validate and expand the inventories; every problem at once, before any call."""
    return load_inventories(inventories)


@task(name="plan", cache_policy=NO_CACHE, persist_result=False)
async def plan(key: str, specs: list[ServerSpec], adopt_existing: bool) -> Preflight:
    """Compare the inventory with the ledger and with what exists in the VPCs."""
    return await runtime(key).provisioner.preflight(specs, adopt_existing=adopt_existing)


@task(
    name="provision-chunk",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=infrastructure_only,
)
async def provision_chunk(key: str, specs: list[ServerSpec]) -> dict[str, int]:
    """Create one chunk of servers; per-server failures are recorded, not raised."""
    rt = runtime(key)
    records = await rt.provisioner.provision(specs)
    return summarize(records)


@task(name="wait-for-run", cache_policy=NO_CACHE, persist_result=False)
async def wait_for_run(key: str, time_limit: float, interval: float) -> WaitReport:
    """Poll the created servers, a batch per call, until each is RUN or has failed."""
    rt = runtime(key)
    logger = get_run_logger()

    async def report(running: int, total: int) -> None:
        rt.progress.running = running

    result = await wait_running(
        rt.client,
        rt.ledger,
        rt.rollout,
        time_limit=time_limit,
        interval=interval,
        on_progress=report,
    )
    logger.info(
        "%d running, %d failed, %d timed out",
        len(result.running),
        len(result.failed),
        len(result.timed_out),
    )
    return result


def _markdown(rollout: str, counts: dict[str, int], facts: dict[str, Any]) -> str:
    lines = [f"# Rollout `{rollout}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    return "\n".join(lines)


@task(name="record-results", cache_policy=NO_CACHE, persist_result=False)
async def record(key: str, results_file: str, facts: dict[str, Any]) -> dict[str, Any]:
    """Write the results CSV and the Prefect artifacts; return the summary counts."""
    rt = runtime(key)
    records: list[Record] = rt.ledger.records(rt.rollout)
    path = write_results(results_file, records)
    counts = summarize(records)
    rows = [dict(zip(COLUMNS, as_row(r), strict=True)) for r in records]
    await acreate_table_artifact(
        rows, key=artifact_key(rt.rollout, "results"), description=f"Servers of {rt.rollout}"
    )
    await acreate_markdown_artifact(
        _markdown(rt.rollout, counts, {**facts, "results file": str(path)}),
        key=artifact_key(rt.rollout, "summary"),
        description=f"Summary of {rt.rollout}",
    )
    return {"rollout": rt.rollout, "results": str(path), **counts, **facts}


async def _report_progress(key: str, artifact_id: Any, every: float = 1.0) -> None:
    """Update the progress artifact about once a second (one PATCH each), not per server."""
    rt = runtime(key)
    last = -1.0
    while True:
        p = rt.progress
        total = max(p.total, 1)
        percent = round(100.0 * (p.done + p.running) / (2 * total if p.waiting else total), 1)
        if percent != last:
            last = percent
            await aupdate_progress_artifact(
                artifact_id,
                percent,
                description=(
                    f"{p.created} created, {p.failed} failed, {p.unknown} unknown, "
                    f"{p.running} running of {p.total}"
                ),
            )
        await asyncio.sleep(every)


@flow(name="provision-fleet", description="Create the servers of CSV inventories on NCP.")
async def provision_fleet(
    inventories: list[str],
    rollout: str | None = None,
    rate: float = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    concurrency: int = DEFAULT_CONCURRENCY,
    site: str = "public",
    endpoint: str | None = None,
    ledger: str = str(DEFAULT_LEDGER),
    adopt_existing: bool = False,
    wait: bool = False,
    wait_timeout: float = 1800.0,
    poll_interval: float = 10.0,
    request_timeout: float = 30.0,
    settle_seconds: float = 2.0,
    chunk_size: int | None = None,
    credentials_block: str | None = None,
    shared_limit: str | None = None,
    results: str | None = None,
) -> dict[str, Any] | State:
    """Create every server of the inventories once, recording each instance number."""
    logger = get_run_logger()
    name = rollout or rollout_name(inventories)
    specs = load(inventories)
    credentials = await resolve_credentials(credentials_block)
    async with open_runtime(
        name,
        credentials=credentials,
        site=site,
        endpoint=endpoint,
        ledger_path=ledger,
        rate=rate,
        burst=burst,
        concurrency=concurrency,
        request_timeout=request_timeout,
        settle_seconds=settle_seconds,
        shared_limit=shared_limit,
    ) as rt:
        pre = await plan(rt.key, specs, adopt_existing)
        logger.info(
            "rollout %s: %d servers, %d to create, %d already created, %d reconciled, "
            "%d adopted, %d failed permanently before",
            name,
            len(specs),
            len(pre.to_create),
            len(pre.done),
            len(pre.reconciled),
            len(pre.adopted),
            len(pre.skipped_failed),
        )
        if pre.delta.changed:
            logger.warning(
                "%d created servers differ from the inventory now (not changed on NCP): %s",
                len(pre.delta.changed),
                ", ".join(pre.delta.changed[:10]),
            )
        rt.progress.total = len(pre.to_create)
        progress_id = await acreate_progress_artifact(
            0.0, key=artifact_key(name, "progress"), description=f"Provisioning {name}"
        )
        reporter = asyncio.create_task(_report_progress(rt.key, progress_id))
        started = time.monotonic()
        try:
            await asyncio.gather(
                *(
                    provision_chunk.with_options(name=f"provision-chunk-{i:02d}")(rt.key, chunk)
                    for i, chunk in enumerate(chunks(pre.to_create, chunk_size), 1)
                )
            )
            elapsed = time.monotonic() - started
            if wait:
                rt.progress.waiting = True
                await wait_for_run(rt.key, wait_timeout, poll_interval)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        await aupdate_progress_artifact(progress_id, 100.0)
        stats = rt.client.stats
        facts = {
            "servers in inventory": len(specs),
            "sent this run": len(pre.to_create),
            "reconciled after an earlier stop": len(pre.reconciled),
            "adopted": len(pre.adopted),
            "changed in inventory since created": len(pre.delta.changed),
            "provisioning seconds": round(elapsed, 2),
            "created per second": round(rt.progress.created / elapsed, 2) if elapsed else 0,
            "API calls": sum(stats.calls.values()),
            "throttled responses": stats.throttled,
            "unprocessed failures (retried)": stats.errors.get("retryable", 0),
            "ambiguous failures (looked up by name)": stats.errors.get("ambiguous", 0),
            "retries": stats.retries,
        }
        summary = await record(rt.key, results or str(results_path(ledger, name)), facts)
    bad = summary["failed"] + summary["in_flight"] + summary["planned"]
    if wait:
        bad = summary["total"] - summary["running"]
    if bad:
        return Failed(
            message=(
                f"{bad} of {summary['total']} servers not done: {summary['created']} created, "
                f"{summary['failed']} failed, {summary['in_flight']} unknown; "
                f"see {summary['results']}"
            ),
        )
    return summary
