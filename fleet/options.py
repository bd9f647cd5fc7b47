"""Every option of a rollout and of a teardown, with its default and its rule, in one place.

The command line, the flows (whose parameter form in the Prefect UI is drawn from these models),
the deployments and the engine all take these objects: a default is written once, here, and a
bad value is refused here with a message naming the option.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import SITES
from .errors import ConfigError

__all__ = ["DEFAULT_MAX_RATE", "ProvisionOptions", "RunOptions", "TeardownOptions", "options_from"]

M = TypeVar("M", bound=BaseModel)

# The most calls/s --rate auto may reach: above what 16 calls in flight carry at NCP's latency,
# so it rarely binds alone; lower it on an account others use too (see the README).
DEFAULT_MAX_RATE = 250.0


class RunOptions(BaseModel):
    """What every run against NCP takes: where, with which keys, how fast, which ledger."""

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
    ledger: str | None = Field(
        None,
        description="Ledger: a file path or postgresql:// URL (default: FLEET_LEDGER, else "
        ".fleet/ledger.db).",
    )
    rate: float | Literal["auto"] = Field(
        "auto",
        description="API calls per second at most, or 'auto' to find the account's limit.",
    )
    max_rate: float = Field(
        DEFAULT_MAX_RATE, gt=0, description="With rate 'auto': the most calls/s it may reach."
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

    @field_validator("site")
    @classmethod
    def _known_site(cls, value: str) -> str:
        if value not in SITES:
            raise ValueError(f"unknown site {value!r} (choose one of {', '.join(SITES)})")
        return value


class ProvisionOptions(RunOptions):
    """How a rollout creates its servers."""

    adopt_existing: bool = Field(
        False, description="Record existing servers with planned names as this rollout's."
    )
    retry_failed: bool = Field(
        False, description="Send again the servers NCP refused before, unchanged."
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
    chunk_size: int | None = Field(None, ge=1, description="Servers per Prefect task run.")
    results: str | None = Field(None, description="Results CSV path.")

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
    gone_after: int = Field(
        3, ge=1, description="Consecutive status reads without a server before it counts as gone."
    )


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
