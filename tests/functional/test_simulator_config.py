"""The simulator's settings: checked once, and the admin API and command line read off them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from fleet.simulator import ADMIN_FIELDS, FAULT_KINDS, SimulatorConfig
from fleet.simulator.config import CLI_SETTINGS
from fleet.simulator.server import build_parser, config_from_args, settings_argv


def test_admin_fields_are_every_setting_but_the_keys_and_catalog() -> None:
    """POST /_admin/config may change every declared setting, never the keys or the catalog."""
    names = {f.name for f in dataclasses.fields(SimulatorConfig)}
    assert set(ADMIN_FIELDS) == names - {"access_key", "secret_key", "catalog"}
    assert {"list_lag", "list_lag_jitter", "late_commit_seconds", "call_log_size"} <= set(
        ADMIN_FIELDS
    )
    assert set(FAULT_KINDS) <= set(ADMIN_FIELDS)


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("rate", (int, float, type(None))),
        ("retry_after", (bool,)),
        ("latency", (int, float)),
        ("page_size", (int,)),
        ("max_servers", (int, type(None))),
        ("seed", (int, type(None))),
        ("list_lag_jitter", (int, float)),
    ],
)
def test_admin_field_types_come_from_the_annotations(name: str, types: tuple[type, ...]) -> None:
    """Each admin field takes the JSON types of its annotation: a float takes an int too."""
    assert ADMIN_FIELDS[name] == types


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"secret_key": "x"}, "run-time"),
        ({"latency": "1"}, "wrong type"),
        ({"page_size": 2.5}, "wrong type"),
        ({"retry_after": 1}, "wrong type"),
        ({"latency": True}, "wrong type"),
        ({"list_lag": -1}, "list_lag"),
        ({"call_log_size": -1}, "call_log_size"),
        ({"late_commit": 0.6, "bad_body": 0.6}, "sum"),
    ],
)
def test_bad_changes_are_refused(changes: dict[str, Any], message: str) -> None:
    """A change of a key, of the wrong type, or out of range raises ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        SimulatorConfig().changed(changes)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate": 0}, "rate must be positive"),
        ({"burst": 0.5}, "burst must be at least 1"),
        ({"latency": float("inf")}, "latency must be a finite number"),
        ({"late_commit_seconds": -1}, "late_commit_seconds must be"),
        ({"page_size": 200}, "page_size <= max_page_size"),
        ({"max_servers": -1}, "max_servers must be"),
        ({"error_500": 1.5}, "fault fractions"),
        ({"access_key": ""}, "must not be empty"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    """A config out of range does not construct, and the error names the setting."""
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(**settings)


def test_every_setting_is_a_flag() -> None:
    """The command line has a flag per setting, named after it, with the setting's default."""
    parser = build_parser()
    flags = {action.dest: action for action in parser._actions}
    for setting in CLI_SETTINGS:
        assert setting.name in flags, setting.name
        assert flags[setting.name].default == setting.default
    assert {s.name for s in CLI_SETTINGS} == {*ADMIN_FIELDS, "catalog"}


def test_settings_round_trip_through_the_command_line() -> None:
    """A child process gets exactly the parent's settings: argv from a config parses back to it."""
    changed = {
        "rate": 12.5,
        "burst": 3.0,
        "retry_after": True,
        "latency": 0.25,
        "page_size": 7,
        "max_page_size": 9,
        "fail_before": 0.1,
        "late_commit": 0.2,
        "bad_body": 0.05,
        "error_500": 0.05,
        "late_commit_seconds": 4.0,
        "list_lag": 1.5,
        "list_lag_jitter": 2.5,
        "seed": 3,
        "max_servers": 50,
        "call_log_size": 20,
        "storage_outlives_server": False,
        "catalog": "inventories/catalog.json",  # a path, never opened here
    }
    config = SimulatorConfig(access_key="a", secret_key="s", **changed)  # type: ignore[arg-type]
    args = build_parser().parse_args(settings_argv(config))
    keys = {"FLEET_SIM_ACCESS_KEY": "a", "FLEET_SIM_SECRET_KEY": "s"}
    assert config_from_args(args, env=keys) == config


def test_false_booleans_are_said_explicitly() -> None:
    """A boolean flag is passed as --name or --no-name, so a child never falls back on a default."""
    argv = settings_argv(SimulatorConfig())
    assert "--no-retry-after" in argv
    assert "--rate" not in argv  # unset optional settings are left out
