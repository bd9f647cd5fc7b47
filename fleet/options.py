"""Every option of a rollout and of a teardown, with its default and its rule, in one place.

The command line, the flows (whose parameter form in the Prefect UI is drawn from these models),
the deployments and the engine all take these objects: a default is written once, here, and a
bad value is refused here with a message naming the option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from fleet.config import SITES, LedgerLocation
from fleet.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_RATE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WINDOW",
    "Budget",
    "ProbeOptions",
    "ProvisionOptions",
    "RunOptions",
    "Size",
    "Taken",
    "TargetOptions",
    "TeardownOptions",
    "options_from",
    "parse_sizes",
    "profile_defaults",
]

M = TypeVar("M", bound=BaseModel)

# The most calls/s --rate auto may reach: above what 16 calls in flight carry at NCP's latency,
# so it rarely binds alone; lower it on an account others use too (see docs/rate-limits.md).
DEFAULT_MAX_RATE = 250.0


# Sizes of stages and of the failure budget, as the canary, waves and max_failures options
# give them (create.stages splits a rollout by them).


@dataclass(frozen=True, slots=True)
class Size:
    """A number of servers, or a share of them ("5" or "10%")."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, text: str, *, zero: bool = False) -> Size:
        """Read "N" or "N%" (0 only when ``zero``); raise ValueError naming the text otherwise."""
        raw = text.strip()
        number = raw.removesuffix("%").strip()
        try:
            value = float(number) if raw.endswith("%") else int(number)
        except ValueError:
            raise ValueError(f"{text!r} is not a count or a percentage") from None
        if value < 0 or (value == 0 and not zero) or (raw.endswith("%") and value > 100):
            least = "0" if zero else "above 0"
            raise ValueError(f"{text!r}: a count of {least}, or a share from 0% to 100%")
        return cls(float(value), raw.endswith("%"))

    def of(self, total: int) -> int:
        """Return the number of servers this size is, out of ``total`` (shares round up)."""
        if self.percent:
            return min(total, math.ceil(total * self.value / 100))
        return min(total, int(self.value))

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else str(int(self.value))


def parse_sizes(text: str) -> tuple[Size, ...]:
    """Read a comma-separated list of sizes, each at least the one before (for shares)."""
    sizes = tuple(Size.parse(part) for part in text.split(",") if part.strip())
    if not sizes:
        raise ValueError(f"{text!r}: no sizes")
    return sizes


@dataclass(frozen=True, slots=True)
class Budget:
    """How many failures a rollout may cost before it stops sending: a count, or a share."""

    limit: Size | None  # None: no budget; every server is tried

    def exceeded(self, failed: int, sent: int) -> bool:
        """Whether ``failed`` failures out of ``sent`` servers are past the budget."""
        if self.limit is None:
            return False
        if self.limit.percent:
            return failed > sent * self.limit.value / 100
        return failed > self.limit.value


class TargetOptions(BaseModel):
    """Where a command speaks to NCP, and with which keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field("public", description="NCP site: public, gov or fin.")
    endpoint: str | None = Field(
        None, description="Gateway URL; overrides the site and NCLOUD_API_GW."
    )
    profile: str | None = Field(
        None, description="Profile of ~/.ncloud/configure to take the keys from."
    )
    credentials_block: str | None = Field(
        None, description="Prefect Secret block holding the NCP keys."
    )

    @field_validator("site")
    @classmethod
    def _known_site(cls, value: str) -> str:
        if value not in SITES:
            raise ValueError(f"unknown site {value!r} (choose one of {', '.join(SITES)})")
        return value


class RunOptions(TargetOptions):
    """What every run against NCP takes: where, with which keys, how fast, which ledger."""

    ledger: str | None = Field(
        None,
        description="Ledger: a file path or postgresql:// URL without a password (default: "
        "ledger_block, else FLEET_LEDGER, else .fleet/ledger.db).",
    )
    ledger_block: str | None = Field(
        None, description="Prefect Secret block holding the ledger's URL, password included."
    )
    rate: float | Literal["auto"] = Field(
        "auto",
        description="API calls per second at most, or 'auto' to find the account's limit.",
    )
    max_rate: float = Field(
        DEFAULT_MAX_RATE, gt=0, description="With rate 'auto': the most calls/s it may reach."
    )
    start_rate: float | None = Field(
        None,
        gt=0,
        description="With rate 'auto': calls/s to start from when no earlier run here "
        "remembered a rate (a probe's rate_per_s, say).",
    )
    burst: int = Field(5, ge=1, description="Calls allowed at once above the rate.")
    concurrency: int = Field(16, ge=1, le=1000, description="Calls in flight at most.")
    request_timeout: float = Field(30.0, gt=0, description="Seconds to wait for one answer.")
    poll_interval: float = Field(10.0, gt=0, description="Seconds between status polls.")
    shared_limit: str | None = Field(
        None, description="Prefect global limit whose rate this run shares with others."
    )
    wait_for_lease: bool = Field(
        False, description="If another run holds the rollout, wait for it instead of exiting."
    )
    lease_ttl: float = Field(
        60.0, ge=5, description="Seconds a crashed run's lease outlives its last heartbeat."
    )
    rebind: bool = Field(
        False, description="Accept that the rollout moved to another endpoint or account."
    )

    @field_validator("ledger")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        # Options are flow parameters, which Prefect stores and shows: never a password.
        if value and LedgerLocation.parse(value).password:
            raise ValueError(
                "a ledger URL with a password cannot be a parameter (Prefect stores and shows "
                "parameters): put it in FLEET_LEDGER or a Prefect Secret block (ledger_block)"
            )
        return value

    @field_validator("rate", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: object) -> float | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            rate = float("nan") if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            rate = float("nan")
        if not rate > 0 or rate == float("inf"):
            raise ValueError(f"'auto' or a positive number of calls per second, not {value!r}")
        return rate

    @property
    def auto_rate(self) -> bool:
        """Whether the rate is to be found (``--rate auto``) rather than named."""
        return self.rate == "auto"


class ProvisionOptions(RunOptions):
    """How a rollout creates its servers."""

    adopt_existing: bool = Field(
        False, description="Record existing servers with planned names as this rollout's."
    )
    retry_failed: bool = Field(
        False, description="Send again the servers NCP refused before, unchanged."
    )
    replace: bool = Field(
        False,
        description="Also resize (spec changed: stop, change, start) and replace (anything else "
        "changed: new server first, then the old one goes) servers unlike the inventory.",
    )
    prune: bool = Field(
        False, description="Also destroy the rollout's servers no longer in the inventory."
    )
    revive: bool = Field(
        False,
        description="Create a rollout that was torn down again (a torn-down rollout is retired: "
        "runs, scheduled ones too, create nothing of it until revived).",
    )
    wait: bool = Field(False, description="Wait until every created server is RUN.")
    wait_timeout: float = Field(1800.0, gt=0, description="Seconds to wait for RUN.")
    settle: float = Field(
        60.0,
        ge=0,
        description="Seconds after a create was sent before 'not listed' is trusted to mean "
        "'not created'.",
    )
    settle_poll: float = Field(
        5.0, gt=0, description="Seconds between look-ups of servers whose create is unsettled."
    )
    max_create_attempts: int = Field(
        3, ge=1, description="Creates sent per server, counting only those surely not made."
    )
    preflight: bool = Field(
        True,
        description="Check every image, spec, network, ACG, key ... the inventories name through "
        "NCP's read APIs before anything is sent.",
    )
    chunk_size: int | None = Field(None, ge=1, description="Servers per Prefect task run.")
    results: str | None = Field(None, description="Results CSV path.")
    canary: str | None = Field(
        None,
        description="Create first a canary of N servers (or N%) holding one of every inventory "
        "row, and wait until it runs; any failure of it stops the rollout.",
    )
    waves: str | None = Field(
        None,
        description="Then create in waves of cumulative sizes, e.g. 10%,50%,100% (or counts), "
        "each waiting until it runs before the next.",
    )
    max_failures: str | None = Field(
        None,
        description="Failures (refused, or never running) the waves may cost, as N or N% of "
        "what was sent so far; past it nothing more is sent.",
    )
    on_failure: Literal["keep", "rollback"] = Field(
        "keep", description="When the rollout stops on failures: keep what was made, or roll back."
    )
    approve: Literal["none", "canary", "waves"] = Field(
        "none",
        description="Pause for approval after the canary, or after every wave (Prefect UI form, "
        "or `fleet approve`).",
        json_schema_extra={"alone": "canary"},  # the command line's --approve, alone
    )
    approve_patience: float = Field(
        86400.0, gt=0, description="Seconds to wait for an approval before the rollout aborts."
    )

    @field_validator("canary", "max_failures")
    @classmethod
    def _size(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            Size.parse(value, zero=info.field_name == "max_failures")
        return value

    @field_validator("waves")
    @classmethod
    def _sizes(cls, value: str | None) -> str | None:
        if value is not None:
            parse_sizes(value)
        return value

    @property
    def staged(self) -> bool:
        """Whether the rollout goes in stages (a canary, waves or approvals) or all at once."""
        return bool(self.canary or self.waves or self.approve != "none")

    @property
    def budget(self) -> Budget:
        """Return the failure budget of the waves."""
        return Budget(Size.parse(self.max_failures, zero=True) if self.max_failures else None)

    @property
    def workers(self) -> int:
        """Return how many servers are worked on at once: enough to keep every slot busy."""
        return 2 * self.concurrency


class TeardownOptions(RunOptions):
    """How a rollout is taken down."""

    lift_protection: bool = Field(
        False, description="Turn termination protection off first, where it is on."
    )
    dry_run: bool = Field(False, description="List what would go; change nothing.")
    time_limit: float = Field(1800.0, gt=0, description="Seconds to wait for servers to go.")
    include_adopted: bool = Field(
        False, description="Take down adopted servers too (fleet did not create them)."
    )
    only_run: str | None = Field(
        None,
        description="Take down only what this run (its create-marker tag) created: a rollback.",
    )


class ProbeOptions(TargetOptions):
    """How far ``fleet probe`` may go: what it reads, what it may create, how long it waits."""

    create: str | None = Field(
        None,
        description="Also create at most two of the smallest servers this inventory row allows "
        "(FILE, its first row, or FILE:LINE), measure, then remove them.",
    )
    output: str = Field(".fleet/probe-profile.json", description="Where to write the profile.")
    intent: str = Field(
        ".fleet/probe-intent.json",
        description="Where the probe records its creates before sending them (the next probe "
        "removes what an interrupted one left, from it).",
    )
    rate_probe: bool = Field(
        True, description="Measure the read rate and burst (throttled on purpose, on a budget)."
    )
    max_reads: int = Field(
        300, ge=20, le=1000, description="Reads the rate and burst measurement may send at most."
    )
    rate_seconds: float = Field(
        10.0, gt=0, le=120, description="Seconds the rate may be counted over at most."
    )
    poll_interval: float = Field(
        1.0, gt=0, description="Seconds between listings while waiting (the lag's resolution)."
    )
    lag_limit: float = Field(
        300.0, gt=0, description="Seconds to wait for a created server to be listed."
    )
    time_limit: float = Field(
        1800.0, gt=0, description="Seconds to wait for RUN, and again for the removal."
    )


@dataclass(frozen=True, slots=True)
class Taken:
    """A default a run took from a probe's profile: the option, its value, the figure behind it."""

    option: str
    value: float
    figure: str
    measured: float

    def __str__(self) -> str:
        return f"{self.option} {self.value:g} (from {self.figure} {self.measured:g})"


# Seconds the settle window keeps above a measured listing lag, at least: a lag measured on one
# create is no bound on the next (most of all after a slow or failed one).
SETTLE_MARGIN = 30.0


def profile_defaults(lag: float | None, rate: float | None, boot: float | None) -> list[Taken]:
    """Return what a probe's figures give a rollout: settle window, starting rate, status poll.

    The settle window is twice the lag, and at least SETTLE_MARGIN above it; the starting rate
    is the read rate measured; the status poll a tenth of the boot time, within 1-10 s.
    """
    taken = []
    if lag is not None:
        settle = float(math.ceil(max(2 * lag, lag + SETTLE_MARGIN)))
        taken.append(Taken("settle", settle, "list_lag_s", lag))
    if rate is not None and rate > 0:
        taken.append(Taken("start_rate", round(rate, 1), "rate_per_s", rate))
    if boot is not None:
        poll = min(10.0, max(1.0, round(boot / 10, 1)))
        taken.append(Taken("poll_interval", poll, "boot_s", boot))
    return taken


def options_from(model: type[M], values: dict[str, Any]) -> M:
    """Build options from the values a user set (None = unset); ConfigError naming each problem."""
    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = [
            f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("; ".join(problems)) from None


# A rollout that kept no window of its own (from before it was kept) is judged by the default.
DEFAULT_WINDOW: float = ProvisionOptions.model_fields["settle"].default
DEFAULT_TIMEOUT: float = ProvisionOptions.model_fields["request_timeout"].default
# The library's own defaults are the options' (written once, in the models above).
DEFAULT_WAIT: float = ProvisionOptions.model_fields["wait_timeout"].default
DEFAULT_POLL: float = ProvisionOptions.model_fields["poll_interval"].default
