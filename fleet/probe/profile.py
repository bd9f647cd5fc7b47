"""The profile a probe writes: each figure it measured, where and when, and why any is missing.

One JSON document, described by ``schemas/probe-profile.schema.json``. Its top-level keys are
fixed, so that other tools can read it:

| key | value |
|---|---|
| ``measured_at`` | when the probe began, ISO 8601 in UTC |
| ``endpoint`` | the gateway measured (a URL; never a key) |
| ``clock_offset_s`` | NCP's clock minus this machine's, in seconds (from the ``Date`` header) |
| ``rate_per_s`` | read calls per second the gateway lets through once its bucket is empty |
| ``burst`` | read calls it lets through at once after a rest |
| ``throttle`` | its "too fast" answer: ``status``, ``code``, ``retry_after`` (null: no header) |
| ``list_lag_s`` | seconds from a create's answer to its first listing (by number or name, later) |
| ``boot_s`` | seconds from a create's answer to its first listing as RUN |
| ``duplicate_names`` | ``"refused"`` or ``"allowed"``: a second create under a name in use |
| ``name_filter`` | ``"exact"`` or ``"substring"``: how getServerInstanceList's serverName matches |
| ``description_unit`` | ``"bytes"`` or ``"characters"``: what the description's limit counts |
| ``created`` | instance numbers the probe created |
| ``removed`` | instance numbers it saw gone after removing them (an earlier probe's included) |
| ``notes`` | per figure (or topic): why it is null, or what else was seen |

A figure not measured is ``null``, with the reason under ``notes``. Reading one back
(``load_profile``) checks every key, so a hand-edited file is refused with each problem named.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from fleet.errors import ConfigError

__all__ = [
    "EFFECTS",
    "FIGURES",
    "KEYS",
    "DescriptionUnit",
    "DuplicateNames",
    "NameFilter",
    "Profile",
    "Throttle",
    "load_profile",
    "write_profile",
]


class DuplicateNames(StrEnum):
    """What NCP does with a create naming a server that exists."""

    REFUSED = "refused"
    ALLOWED = "allowed"


class NameFilter(StrEnum):
    """How getServerInstanceList's serverName filter matches."""

    EXACT = "exact"
    SUBSTRING = "substring"


class DescriptionUnit(StrEnum):
    """What the 1000 of serverDescription's limit counts."""

    BYTES = "bytes"
    CHARACTERS = "characters"


@dataclass(frozen=True, slots=True)
class Throttle:
    """The gateway's answer to a call sent too fast: HTTP status, errorCode, Retry-After."""

    status: int
    code: str | None
    retry_after: float | None  # seconds; None: the answer carried no Retry-After

    def document(self) -> dict[str, Any]:
        """Return the throttle as the profile writes it."""
        return {"status": self.status, "code": self.code, "retry_after": self.retry_after}


# The figures a probe measures, in the profile's order: each is null when not measured.
FIGURES: Final = (
    "clock_offset_s",
    "rate_per_s",
    "burst",
    "throttle",
    "list_lag_s",
    "boot_s",
    "duplicate_names",
    "name_filter",
    "description_unit",
)
KEYS: Final = ("measured_at", "endpoint", *FIGURES, "created", "removed", "notes")
# What each figure changes (docs/probe.md says more).
EFFECTS: Final = {
    "clock_offset_s": "signatures: the gateway refuses them 5 minutes off",
    "rate_per_s": "provision's starting rate with --rate auto (--start-rate)",
    "burst": "how many calls the gateway takes at once after a pause",
    "throttle": "how a 'too fast' answer is told apart, and waited out",
    "list_lag_s": "provision's settle window (--settle)",
    "boot_s": "provision's status poll (--poll-interval)",
    "duplicate_names": "whether NCP itself stops a create sent twice",
    "name_filter": "look-ups by name (fleet compares names itself either way)",
    "description_unit": "room for the create marker in serverDescription",
}


@dataclass(frozen=True, slots=True)
class Profile:
    """What a probe measured of one account at one endpoint."""

    measured_at: str
    endpoint: str
    clock_offset_s: float | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    throttle: Throttle | None = None
    list_lag_s: float | None = None
    boot_s: float | None = None
    duplicate_names: DuplicateNames | None = None
    name_filter: NameFilter | None = None
    description_unit: DescriptionUnit | None = None
    created: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)

    def figure(self, name: str) -> object:
        """Return one figure by its key (None: not measured)."""
        if name not in FIGURES:
            raise KeyError(name)
        value: object = getattr(self, name)
        return value

    def document(self) -> dict[str, Any]:
        """Return the profile as its JSON document, keys in the schema's order."""
        out: dict[str, Any] = {}
        for key in KEYS:
            value = getattr(self, key)
            if isinstance(value, Throttle):
                value = value.document()
            elif isinstance(value, tuple):
                value = list(value)
            elif key == "notes":
                value = dict(sorted(value.items()))
            out[key] = value
        return out

    @classmethod
    def from_document(cls, data: object) -> Profile:
        """Read a profile's JSON document; ValueError naming every problem found."""
        if not isinstance(data, dict):
            raise ValueError("a profile is a JSON object")
        problems = [f"missing key {key!r}" for key in KEYS if key not in data]
        problems += [f"unknown key {key!r}" for key in data if key not in KEYS]
        values: dict[str, Any] = {}
        for key, read in _READERS.items():
            if key not in data:
                continue
            try:
                values[key] = read(data[key])
            except (TypeError, ValueError) as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**values)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a non-empty string")
    return value


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("a number or null")
    return float(value)


def _positive(value: object) -> float | None:
    number = _number(value)
    if number is not None and number < 0:
        raise ValueError("a number >= 0 or null")
    return number


def _count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("an integer >= 1 or null")
    return value


def _throttle(value: object) -> Throttle | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"status", "code", "retry_after"}:
        raise ValueError("an object of status, code and retry_after, or null")
    status, code = value["status"], value["code"]
    if isinstance(status, bool) or not isinstance(status, int):
        raise ValueError("status: an HTTP status")
    if code is not None and not isinstance(code, str):
        raise ValueError("code: a string or null")
    return Throttle(status, code, _positive(value["retry_after"]))


def _numbers(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of instance numbers (strings)")
    return tuple(value)


def _notes(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("an object of strings")
    return dict(value)


def _choice(kind: type[StrEnum]) -> Any:
    def read(value: object) -> StrEnum | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"one of {', '.join(kind)} or null")
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"one of {', '.join(kind)} or null") from None

    return read


_READERS: Final[dict[str, Any]] = {
    "measured_at": _text,
    "endpoint": _text,
    "clock_offset_s": _number,
    "rate_per_s": _positive,
    "burst": _count,
    "throttle": _throttle,
    "list_lag_s": _positive,
    "boot_s": _positive,
    "duplicate_names": _choice(DuplicateNames),
    "name_filter": _choice(NameFilter),
    "description_unit": _choice(DescriptionUnit),
    "created": _numbers,
    "removed": _numbers,
    "notes": _notes,
}


def load_profile(path: str | Path) -> Profile:
    """Read a profile file; ConfigError naming the file and every problem in it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Profile.from_document(data)
    except OSError as exc:
        raise ConfigError(f"probe profile {path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ConfigError(f"probe profile {path}: {exc}") from None


def write_profile(profile: Profile, path: str | Path) -> None:
    """Write a profile as JSON, whole or not at all (a temporary file, then a rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(profile.document(), indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)
