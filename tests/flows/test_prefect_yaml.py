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
    """Its parameters pass the flow's own validation, and its concurrency limit is 1."""
    flow = FLOWS[deployment["entrypoint"]]
    flow.validate_parameters(deployment["parameters"])
    assert deployment["concurrency_limit"] == 1


def test_no_deployment_carries_a_secret_as_a_parameter() -> None:
    """Keys and database passwords come from the worker or Secret blocks, never parameters."""
    text = (ROOT / "prefect.yaml").read_text()
    for deployment in deployments():
        shown = str(deployment["parameters"])
        assert "secret_key" not in shown and "postgresql://" not in shown
    assert "{{ prefect.blocks.secret.fleet-ledger }}" in text


def test_the_example_automation_is_one_prefect_accepts() -> None:
    """automations/notify-failed-rollout.yaml validates as a Prefect automation on our event."""
    from prefect.events import AutomationCore

    with (ROOT / "automations" / "notify-failed-rollout.yaml").open() as fh:
        (spec,) = yaml.safe_load(fh)["automations"]
    automation = AutomationCore.model_validate(spec)
    assert automation.trigger.expect == {"fleet.rollout.finished"}  # type: ignore[union-attr]
