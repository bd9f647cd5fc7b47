"""What a rollout tells Prefect: events to hang automations on, a run name, a tag.

Every event has the rollout as its resource (``fleet.rollout.<name>``), so an automation can
watch one rollout or all of them:

    fleet.rollout.started    servers, to create, stages
    fleet.wave.completed     wave, sent, created, failed, not ready, ready
    fleet.rollout.paused     after which wave, the counts so far
    fleet.server.failed      a batch of failed servers: name, code, message (100 per event)
    fleet.rollout.twins      second servers under the rollout's names, not its own (100 shown)
    fleet.rollout.finished   outcome (completed, failed, stopped) and the counts; the outcome
                             is also the resource's label fleet.outcome, to match on
    fleet.rollout.drifted    servers gone, stopped or changed by hand: each one also a related
                             resource (``fleet.server.<rollout>.<name>``, its role how it drifted),
                             which the event feed shows as a link
    fleet.rollout.planned    what the next run would do, per action

Every flow run is named after its rollout (``web-20261127-030000``, ``plan-web-...``,
``teardown-web-...``) and tagged with it, so the runs list filters by rollout.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prefect.events import emit_event

from fleet import ErrorKind, Record, State

__all__ = [
    "BATCH",
    "emit",
    "failed_servers",
    "plan_run_name",
    "run_name",
    "server_resource",
    "tag_run",
    "teardown_run_name",
]

log = logging.getLogger(__name__)

BATCH = 100  # failed servers per event


def resource(rollout: str, **labels: str) -> dict[str, str]:
    """Return the event resource that stands for a rollout, with labels to match on."""
    return {
        "prefect.resource.id": f"fleet.rollout.{rollout}",
        "prefect.resource.name": rollout,
        "prefect.resource.role": "rollout",
        **{f"fleet.{key}": value for key, value in labels.items()},
    }


def server_resource(
    rollout: str, name: str, role: str, instance_no: str | None = None
) -> dict[str, str]:
    """Return a related resource that stands for one server of a rollout, in a role."""
    return {
        "prefect.resource.id": f"fleet.server.{rollout}.{name}",
        "prefect.resource.name": name,
        "prefect.resource.role": role,
        **({"fleet.instance-no": instance_no} if instance_no else {}),
    }


def emit(
    event: str,
    rollout: str,
    labels: dict[str, str] | None = None,
    related: list[dict[str, str]] | None = None,
    **payload: Any,
) -> None:
    """Emit one event about a rollout (never fails the run: events are news, not state).

    ``labels`` go on the resource, where automations can match them (``fleet.outcome``);
    ``related`` resources (servers) show as links in the event feed.
    """
    try:
        emit_event(
            event=event,
            resource=resource(rollout, **(labels or {})),
            related=related or None,
            payload=payload,
        )
    except Exception:  # a full queue or a closed client must not stop a rollout
        log.warning("could not emit %s for %s", event, rollout, exc_info=True)


def failed_servers(rollout: str, records: Sequence[Record]) -> None:
    """Emit fleet.server.failed for the failed ones among ``records``, in batches."""
    failed = [
        {"name": r.name, "code": r.error_code, "message": r.error_message, "kind": r.error_kind}
        for r in records
        if r.state == State.FAILED or r.error_kind in (ErrorKind.STATUS, ErrorKind.TIMEOUT)
    ]
    for i in range(0, len(failed), BATCH):
        emit("fleet.server.failed", rollout, servers=failed[i : i + BATCH], count=len(failed))


def run_name() -> str:
    """Return a flow run's name: its rollout and its start time (for the Prefect UI)."""
    from prefect.runtime import flow_run

    from flows.runtime import rollout_name

    params = flow_run.parameters
    rollout = params.get("rollout") or rollout_name(params.get("inventories") or [])
    started = flow_run.scheduled_start_time or datetime.now(UTC)
    return f"{rollout}-{started:%Y%m%d-%H%M%S}"


def teardown_run_name() -> str:
    """Return a teardown run's name: what it takes down, and when."""
    return f"teardown-{run_name()}"


def plan_run_name() -> str:
    """Return a plan-fleet run's name: the rollout it plans, and when."""
    return f"plan-{run_name()}"


async def tag_run(rollout: str) -> None:
    """Tag the running flow run with its rollout's name (fleet approve finds it by the tag)."""
    from prefect import get_client
    from prefect.context import get_run_context

    with contextlib.suppress(Exception):  # a tag is a convenience, never a reason to fail
        run = get_run_context().flow_run  # type: ignore[union-attr]
        if run is None or rollout in run.tags:
            return
        async with get_client() as client:
            await client.update_flow_run(run.id, tags=[*run.tags, rollout])
