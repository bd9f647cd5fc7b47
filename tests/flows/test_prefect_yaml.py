"""prefect.yaml stays true to the flows: every deployment's parameters are valid, one run each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow

from flows.drift import plan_fleet
from flows.provision import provision_fleet
from flows.teardown import teardown_fleet

ROOT = Path(__file__).resolve().parents[2]
FLOWS: dict[str, Flow[..., Any]] = {
    "flows/provision.py:provision_fleet": provision_fleet,
    "flows/teardown.py:teardown_fleet": teardown_fleet,
    "flows/drift.py:plan_fleet": plan_fleet,
}


def deployments() -> list[dict[str, Any]]:
    with (ROOT / "prefect.yaml").open() as fh:
        found: list[dict[str, Any]] = yaml.safe_load(fh)["deployments"]
    return found


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_each_deployment_is_valid_and_runs_one_at_a_time(deployment: dict[str, Any]) -> None:
    """Its parameters pass the flow's validation, one run at a time, its runs tagged by rollout."""
    flow = FLOWS[deployment["entrypoint"]]
    flow.validate_parameters(deployment["parameters"])
    assert deployment["concurrency_limit"] == 1
    assert deployment["tags"] == [deployment["parameters"]["rollout"]]


def test_no_deployment_carries_a_secret_as_a_parameter() -> None:
    """Keys and database passwords come from the worker or Secret blocks, never parameters."""
    text = (ROOT / "prefect.yaml").read_text()
    for deployment in deployments():
        shown = str(deployment["parameters"])
        assert "secret_key" not in shown and "postgresql://" not in shown
    assert "{{ prefect.blocks.secret.fleet-ledger }}" in text


@pytest.mark.parametrize(
    ("file", "event"),
    [
        ("notify-failed-rollout.yaml", "fleet.rollout.finished"),
        ("notify-drifted-rollout.yaml", "fleet.rollout.drifted"),
    ],
)
def test_each_example_automation_is_one_prefect_accepts(file: str, event: str) -> None:
    """Each file of automations/ validates as a Prefect automation on the event it names."""
    from prefect.events import AutomationCore

    with (ROOT / "automations" / file).open() as fh:
        (spec,) = yaml.safe_load(fh)["automations"]
    automation = AutomationCore.model_validate(spec)
    assert automation.trigger.expect == {event}  # type: ignore[union-attr]


def test_the_drift_notification_names_the_servers_from_the_event() -> None:
    """The drift automation's message, rendered by Prefect, names each server the event relates."""
    from prefect.events import Event
    from prefect.server.utilities.user_templates import render_user_template_sync

    from flows.events import resource, server_resource

    with (ROOT / "automations" / "notify-drifted-rollout.yaml").open() as fh:
        (spec,) = yaml.safe_load(fh)["automations"]
    event = Event(
        event="fleet.rollout.drifted",
        resource=resource("web"),
        related=[
            server_resource("web", "web-002", "gone"),
            server_resource("web", "web-003", "stopped", "10000003"),
            {"prefect.resource.id": "prefect.flow-run.x", "prefect.resource.role": "flow-run"},
        ],
        payload={"gone": ["web-002"], "stopped": ["web-003"], "changed_by_hand": []},
    )
    (action,) = spec["actions"]
    subject = render_user_template_sync(action["subject"], {"event": event})
    body = render_user_template_sync(action["body"], {"event": event})
    assert subject == "Rollout web drifted"
    assert "1 gone, 1 stopped, 0 changed by hand: web-002 (gone), web-003 (stopped)." in body
