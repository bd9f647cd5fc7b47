"""A probe's profile as the simulator's settings: rehearse against what was measured at NCP.

``fleet simulator --profile FILE`` reads the JSON document ``fleet probe`` writes
(``schemas/probe-profile.schema.json``); like any other client of it, the simulator reads the
document by its keys and imports nothing of the probe. Each figure sets:

| profile | settings |
|---|---|
| ``list_lag_s`` | ``list_lag`` |
| ``boot_s`` | ``create_seconds`` + ``setup_seconds``, split 2:3 as the defaults are |
| ``rate_per_s``, ``burst`` | ``rate``, ``burst`` |
| ``throttle`` | ``throttle_status``, ``throttle_code``, ``retry_after`` (a number, or none) |
| ``duplicate_names`` | ``duplicate_names`` |
| ``name_filter`` | ``name_filter`` |
| ``clock_offset_s`` | ``clock_offset`` |

A figure that is null (not measured) leaves its settings as they were. ``description_unit`` is
not played: the simulator counts a description's bytes, as NCP's reference page says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = ["BOOT_SHARE", "load_profile_settings", "profile_settings"]

# The share of a boot spent INIT -> CREAT (the rest CREAT -> RUN), as in the defaults (2 s, 3 s).
BOOT_SHARE: Final = 0.4

_CHOICES: Final = {"duplicate_names": ("allowed", "refused"), "name_filter": ("substring", "exact")}


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: a number or null, not {value!r}")
    return float(value)


def _throttle(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not isinstance(value.get("status"), int):
        raise ValueError("throttle: an object with an HTTP status, or null")
    code = value.get("code")
    return {
        "throttle_status": value["status"],
        "throttle_code": "410" if code is None else str(code),
        "retry_after": value.get("retry_after") is not None,
    }


def profile_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings a profile's figures give; ValueError on a figure of the wrong kind."""
    settings: dict[str, Any] = {}
    lag, boot = _number(data, "list_lag_s"), _number(data, "boot_s")
    rate, burst = _number(data, "rate_per_s"), _number(data, "burst")
    offset = _number(data, "clock_offset_s")
    if lag is not None:
        settings["list_lag"] = max(0.0, lag)
    if boot is not None:
        settings["create_seconds"] = round(max(0.0, boot) * BOOT_SHARE, 3)
        settings["setup_seconds"] = round(max(0.0, boot) - settings["create_seconds"], 3)
    if rate is not None and rate > 0:
        settings["rate"] = rate
    if burst is not None:
        settings["burst"] = max(1.0, burst)
    if offset is not None:
        settings["clock_offset"] = offset
    settings.update(_throttle(data.get("throttle")))
    for key, words in _CHOICES.items():
        value = data.get(key)
        if value is not None:
            if value not in words:
                raise ValueError(f"{key}: one of {', '.join(words)} or null, not {value!r}")
            settings[key] = value
    return settings


def load_profile_settings(path: str | Path) -> dict[str, Any]:
    """Read a profile file into settings; ValueError naming the file when it cannot be used."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"profile {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"profile {path}: not a JSON object")
    try:
        return profile_settings(data)
    except ValueError as exc:
        raise ValueError(f"profile {path}: {exc}") from None
