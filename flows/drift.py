"""The plan-fleet flow: refresh a rollout, report its drift and pending changes, change nothing.

For a deployment between nightly runs (hourly, say): it reads what NCP holds of every recorded
server, compares it with the inventory, and says what the next run would do, as an artifact
(``<rollout>-plan``) and, when NCP drifted from the record, the ``fleet.rollout.drifted`` event an
automation can alert on. It takes no lease and writes nothing to the ledger.

In the runs list a run is named ``plan-<rollout>-<time>`` and tagged with the rollout; one that
found drift logs it at WARNING and ends ``Completed`` under the name ``Drifted`` (green, so
automations on COMPLETED still fire), the drift in its message.
"""

from __future__ import annotations

from prefect import State, flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.states import Completed, Failed

from fleet import FleetError, ProvisionOptions, plan_changes
from flows import converging, events, planview
from flows.provision import load, plan_rollout
from flows.runtime import artifact_key, open_runtime, resolve_credentials, rollout_name
from flows.stops import decided

__all__ = ["plan_fleet"]


@flow(
    name="plan-fleet",
    description="Refresh a rollout and report its drift; change nothing.",
    flow_run_name=events.plan_run_name,
)
async def plan_fleet(
    inventories: list[str],
    rollout: str | None = None,
    options: ProvisionOptions = ProvisionOptions(),  # noqa: B008 (frozen: shared safely)
) -> dict[str, int] | State:
    """Report what the next provisioning run would do per action (nothing done here)."""
    name = rollout or rollout_name(inventories)
    logger = get_run_logger()
    await events.tag_run(name)
    try:
        specs = decided(load(inventories))
        credentials = await resolve_credentials(options.credentials_block, options.profile)
        async with open_runtime(name, options, credentials, lease=False) as rt:
            found = await plan_rollout(
                rt, specs, options, owner=None, tell=lambda report: logger.info("%s", report)
            )
            records = await rt.ledger.records(name)
            changes = plan_changes(specs, records, found)
            on = await planview.protected(rt.client, found, changes)
    except FleetError as exc:  # a verdict (bad input, a preflight problem ...): no traceback
        logger.error("%s", exc)
        return Failed(message=str(exc), data=exc)
    drift = converging.tell_drift(name, found, changes)
    ahead = planview.forecast(changes, found, records, options, on)
    lines = [planview.summary_line(ahead), *planview.lines(ahead, most=100)]
    if drift is not None:
        logger.warning("%s", drift.line)
    logger.info("%s", "\n".join(lines))
    await acreate_markdown_artifact(
        f"# Plan of `{name}`\n\n"
        + (f"**{drift.line}**\n\n" if drift else "")
        + "```\n"
        + "\n".join(lines)
        + "\n```",
        key=artifact_key(name, "plan"),
        description=f"What the next run of {name} would do",
    )
    counts = converging.counts_of(changes)
    events.emit("fleet.rollout.planned", name, counts=counts)
    if drift is not None:
        return Completed(message=drift.line, name="Drifted", data=counts)
    return counts
