"""The simulator's settings: one frozen dataclass, from which the admin API and the CLI derive.

Each setting is declared once, with its default and a help text. ``ADMIN_FIELDS`` (what
``POST /_admin/config`` may change, with the JSON types each takes) and ``CLI_SETTINGS`` (the flags
of ``fleet simulator``, and the argv of a simulator child process) are read off the dataclass, so
a new setting needs no second or third copy.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import NoneType
from typing import Any, Final, TypeVar, cast, get_args, get_type_hints

__all__ = [
    "ADMIN_FIELDS",
    "CHOICES",
    "CLI_SETTINGS",
    "FAULT_KINDS",
    "CliSetting",
    "SimulatorConfig",
]

_T = TypeVar("_T")

# Every fault the simulator can play, in the order of the seeded draw (a new kind goes last, so
# a seed keeps drawing the same faults for the kinds it had).
FAULT_KINDS: Final = (
    "fail_before",
    "fail_after",
    "drop_after",
    "slow",
    "late_commit",
    "bad_body",
    "error_500",
    "never_ready",
)


def _random_access_key() -> str:
    return "SIM" + secrets.token_hex(10).upper()


def _random_secret_key() -> str:
    return secrets.token_urlsafe(30)


def _setting(default: _T, text: str, *, admin: bool = True) -> _T:
    """Declare a setting: its default, its help text, and whether the admin API may change it."""
    # The dataclass machinery reads the Field; type checkers see a plain default of type _T.
    made: Any = field(default=default, metadata={"help": text, "admin": admin})
    return cast(_T, made)


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulator behaves: keys, gateway limits, latency, lifecycle timings and faults."""

    access_key: str = field(default_factory=_random_access_key)
    secret_key: str = field(default_factory=_random_secret_key, repr=False)
    rate: float | None = _setting(None, "gateway rate limit, calls/s (unset: unlimited)")
    burst: float | None = _setting(None, "token bucket size (unset: max(1, rate))")
    retry_after: bool = _setting(False, "send Retry-After (whole seconds) on 429")
    throttle_status: int = _setting(429, "HTTP status of a throttled call")
    throttle_code: str = _setting(
        "410", "errorCode of a throttled call (410 Throttle Limited, 420 Rate Limited)"
    )
    clock_offset: float = _setting(
        0.0, "seconds the gateway's clock is ahead of this machine's (Date, signature window)"
    )
    latency: float = _setting(0.0, "seconds added to every answer")
    latency_jitter: float = _setting(0.0, "up to this many more seconds, uniformly drawn")
    create_seconds: float = _setting(2.0, "INIT -> CREAT (op SETUP)")
    setup_seconds: float = _setting(3.0, "CREAT -> RUN")
    stop_seconds: float = _setting(2.0, "RUN (op SHTDN) -> NSTOP")
    start_seconds: float = _setting(2.0, "NSTOP (op START) -> RUN")
    terminate_seconds: float = _setting(2.0, "NSTOP (op TERMT) -> gone")
    change_seconds: float = _setting(2.0, "NSTOP (op CHNG) -> NSTOP with the new spec")
    page_size: int = _setting(10, "default pageSize")
    max_page_size: int = _setting(100, "largest pageSize")
    fail_before: float = _setting(0.0, "fraction of creates answered 503 without creating")
    fail_after: float = _setting(0.0, "fraction of creates answered 504 after creating")
    drop_after: float = _setting(0.0, "fraction of creates whose connection drops after creating")
    slow: float = _setting(0.0, "fraction of creates answered after slow_seconds")
    late_commit: float = _setting(
        0.0, "fraction of creates answered 504 at once and committed late_commit_seconds later"
    )
    bad_body: float = _setting(0.0, "fraction of creates answered 200 with unreadable JSON")
    error_500: float = _setting(0.0, "fraction of creates answered 500 (900) after creating")
    never_ready: float = _setting(
        0.0, "fraction of creates answered as usual whose servers never boot (stay CREAT/SETUP)"
    )
    slow_seconds: float = _setting(30.0, "delay of a slow answer")
    late_commit_seconds: float = _setting(20.0, "delay before a late_commit create commits")
    list_lag: float = _setting(0.0, "seconds before a committed server shows in any read")
    list_lag_jitter: float = _setting(0.0, "up to this many more seconds per server (seeded)")
    # UNKNOWN at NCP (a probe measures them): NCP's documents say neither.
    name_filter: str = _setting(
        "substring", "how getServerInstanceList's serverName matches: substring or exact"
    )
    duplicate_names: str = _setting(
        "allowed", "a create naming a server that exists: allowed, or refused (400)"
    )
    seed: int | None = _setting(None, "seed of the fault and listing-lag RNGs (unset: random)")
    max_servers: int | None = _setting(
        None, "the account's server limit, 1015009 beyond it (unset: none)"
    )
    call_log_size: int = _setting(10_000, "API calls kept for GET /_admin/calls")
    # UNKNOWN at NCP: whether extra disks outlive their server. True is the reading that makes a
    # teardown prove it returned them.
    storage_outlives_server: bool = _setting(
        True, "extra block storage stays (detached, billed) when its server terminates"
    )
    catalog: str | None = _setting(
        None,
        "JSON file of the account's regions, networks, images ... (unset: built-in)",
        admin=False,
    )

    def __post_init__(self) -> None:
        problems = [
            *_key_problems(self),
            *_number_problems(self),
            *_fault_problems(self),
            *_choice_problems(self),
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def public(self) -> dict[str, Any]:
        """Return the settings without the secret key, for the admin state."""
        settings = asdict(self)
        del settings["secret_key"]
        return settings

    @property
    def bucket_size(self) -> float:
        """Return the token bucket's size."""
        if self.burst is not None:
            return self.burst
        return max(1.0, self.rate or 1.0)

    def changed(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Return a copy with run-time changes (ADMIN_FIELDS only); raise ValueError if bad."""
        for key, value in changes.items():
            types = ADMIN_FIELDS.get(key)
            if types is None:
                raise ValueError(f"not a run-time setting: {key}")
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise ValueError(f"{key}: wrong type {type(value).__name__}")
        return replace(self, **changes)


def _key_problems(cfg: SimulatorConfig) -> list[str]:
    if not cfg.access_key or not cfg.secret_key:
        return ["access_key and secret_key must not be empty"]
    return []


def _number_problems(cfg: SimulatorConfig) -> list[str]:
    problems: list[str] = []
    if cfg.rate is not None and not cfg.rate > 0:
        problems.append("rate must be positive or None")
    if cfg.burst is not None and not cfg.burst >= 1:
        problems.append("burst must be at least 1 or None")
    for name, kind in _KINDS.items():
        value = getattr(cfg, name)
        if kind is not float or name in (*FAULT_KINDS, "rate", "burst", "clock_offset"):
            continue  # fractions, the gateway's limits and its clock have checks of their own
        if not (isinstance(value, int | float) and 0 <= value < math.inf):
            problems.append(f"{name} must be a finite number >= 0")
    if cfg.max_servers is not None and cfg.max_servers < 0:
        problems.append("max_servers must be >= 0 or None")
    if cfg.call_log_size < 0:
        problems.append("call_log_size must be >= 0")
    if not 1 <= cfg.page_size <= cfg.max_page_size:
        problems.append("need 1 <= page_size <= max_page_size")
    return problems


# The settings that take one of a few words, and those words.
CHOICES: Final = {
    "name_filter": ("substring", "exact"),
    "duplicate_names": ("allowed", "refused"),
}


def _choice_problems(cfg: SimulatorConfig) -> list[str]:
    problems = [
        f"{name} must be one of {', '.join(words)}"
        for name, words in CHOICES.items()
        if getattr(cfg, name) not in words
    ]
    if not 400 <= cfg.throttle_status <= 599:
        problems.append("throttle_status must be an HTTP error status (400-599)")
    if not math.isfinite(cfg.clock_offset):
        problems.append("clock_offset must be a finite number")
    return problems


def _fault_problems(cfg: SimulatorConfig) -> list[str]:
    fractions = [getattr(cfg, kind) for kind in FAULT_KINDS]
    if any(not 0 <= f <= 1 for f in fractions) or sum(fractions) > 1 + 1e-9:
        return ["fault fractions must each be in [0, 1] and sum to at most 1"]
    return []


def _value_type(annotation: Any) -> type:
    """Return the type a setting holds, None aside (``float | None`` -> float)."""
    kinds = [t for t in get_args(annotation) or (annotation,) if t is not NoneType]
    (kind,) = kinds
    return kind  # type: ignore[no-any-return]


def _json_types(annotation: Any) -> tuple[type, ...]:
    """Return the JSON value types a setting accepts: a float takes an int, None where optional."""
    types: list[type] = []
    for kind in get_args(annotation) or (annotation,):
        types += [int, float] if kind is float else [kind]
    return tuple(types)


_HINTS: Final = get_type_hints(SimulatorConfig)
_SETTINGS: Final = tuple(f for f in fields(SimulatorConfig) if "help" in f.metadata)
_KINDS: Final = {f.name: _value_type(_HINTS[f.name]) for f in _SETTINGS}

# Fields POST /_admin/config may change, with the JSON types each accepts (None where optional).
ADMIN_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    f.name: _json_types(_HINTS[f.name]) for f in _SETTINGS if f.metadata["admin"]
}


@dataclass(frozen=True, slots=True)
class CliSetting:
    """A setting as a command-line flag: ``--name-with-dashes``, its value type and default."""

    name: str
    kind: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        """Return the flag, e.g. ``--list-lag-jitter``."""
        return "--" + self.name.replace("_", "-")


CLI_SETTINGS: Final = tuple(
    CliSetting(f.name, _KINDS[f.name], f.default, f.metadata["help"]) for f in _SETTINGS
)
