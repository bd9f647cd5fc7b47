"""What the ledger hands out: frozen records read by attribute, never rows or dictionaries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fleet.errors import ErrorKind
from fleet.states import ServerStatus, State

__all__ = [
    "Binding",
    "Extra",
    "Instance",
    "LeaseInfo",
    "Ownership",
    "PlanDelta",
    "Record",
    "Role",
    "RolloutCounts",
]

# Error kinds after which a server is sent again without looking first: NCP said it did nothing.
_UNPROCESSED = frozenset({ErrorKind.RETRYABLE, ErrorKind.THROTTLED})


@dataclass(frozen=True, slots=True)
class Record:
    """One server of a rollout: what was planned, what was sent, what NCP made of it."""

    rollout: str
    name: str
    file: str
    line: int
    region: str  # '' = NCP's default region (the call carries no regionCode)
    vpc_no: str
    params_hash: str
    state: State
    instance_no: str | None
    request_id: str | None
    attempts: int
    ambiguous_sends: int  # sends whose outcome was unknown when they returned
    error_kind: ErrorKind | None
    error_code: str | None
    error_message: str | None
    http_status: int | None
    adopted: bool
    server_status: ServerStatus | None
    run_seconds: float | None
    response: str | None  # NCP's record of the server as the create (or a look-up) returned it
    sent_params: str | None  # the last create's parameters as sent (JSON), never any key
    sent_hash: str | None  # params_hash of what was sent last
    duplicates: int  # other servers found under this name (each kept in the instances table)
    planned_at: str | None
    first_sent_at: str | None
    sent_at: str | None
    created_at: str | None
    updated_at: str | None
    terminated_at: str | None
    sent_run: str | None = None  # the run whose create marker the last create carried
    sent_ncp: float | None = None  # NCP's clock (its answers' Date) when the last create left

    @property
    def marked(self) -> bool:
        """Whether the last create carried a create marker (sent since markers exist)."""
        return self.sent_run is not None

    @property
    def sendable(self) -> bool:
        """Whether a create may go out for this server without looking for it first."""
        if self.state == State.PLANNED:
            return True
        return self.state == State.FAILED and self.error_kind in _UNPROCESSED

    @property
    def unsettled(self) -> bool:
        """Whether a create went out whose server may exist: it must be looked up first."""
        if self.state == State.IN_FLIGHT:
            return True
        return (
            self.state == State.FAILED
            and self.error_kind == ErrorKind.AMBIGUOUS
            and self.instance_no is None
        )

    @property
    def sent_region(self) -> str:
        """Return the region the last create went to ('' = the default region)."""
        return self._sent("regionCode", self.region)

    @property
    def sent_vpc(self) -> str:
        """Return the VPC the last create went to."""
        return self._sent("vpcNo", self.vpc_no)

    def _sent(self, key: str, default: str) -> str:
        if not self.sent_params:
            return default
        params: dict[str, Any] = dict(json.loads(self.sent_params))
        return str(params.get(key, ""))


class Role:
    """How an instance belongs to a server row of the rollout."""

    PRIMARY = "primary"  # the server's recorded instance
    DUPLICATE = "duplicate"  # a second server found under the same name: ours too, flagged
    REPLACED = "replaced"  # the server's previous instance (deposed, then taken down)


@dataclass(frozen=True, slots=True)
class Instance:
    """One NCP server instance the rollout owns (created, found, adopted or a lost create)."""

    rollout: str
    instance_no: str
    name: str
    region: str
    vpc_no: str
    role: str
    origin: str  # answer | lookup | adopted | lost
    create_date: str | None  # NCP's createDate, as NCP wrote it
    server_status: ServerStatus | None
    state: State  # its life; a primary's is its row's
    gone_reads: int  # consecutive status reads that did not show it
    found_at: str | None
    terminated_at: str | None
    run: str | None = None  # the run that created it (its create marker's), when fleet did
    params: str | None = None  # what it was created with (JSON), kept once it is replaced
    seen_at: str | None = None  # when a read of NCP's first showed it: only then can it be gone
    terminate_at: str | None = None  # when NCP accepted our terminate of it
    intent: str | None = None  # the change under way (JSON: why, run, target parameters)

    @property
    def listed(self) -> bool:
        """Whether NCP has shown it in a read (a create's answer alone is not a listing)."""
        return self.seen_at is not None


@dataclass(frozen=True, slots=True)
class Ownership:
    """A rollout's proof of its own: the id its create markers carry, and its absence window."""

    rollout: str
    marker: str | None  # None: a rollout that never sent with markers (read-only view)
    window: float  # seconds after a send before 'not listed' may mean 'not created'


@dataclass(frozen=True, slots=True)
class Extra:
    """A public IP or extra disk a create made beside its server: billed until returned."""

    kind: str  # an ``ncp.reads.Resource`` value: "public IP" or "block storage"
    number: str
    region: str
    server: str  # the name of the server it was made with
    server_no: str
    label: str  # the address, or the disk's name

    def __str__(self) -> str:
        return f"{self.kind} {self.number} ({self.label}) of {self.server}"


@dataclass(frozen=True, slots=True)
class PlanDelta:
    """How an inventory compares with what the ledger already holds for the rollout."""

    new: tuple[str, ...]
    changed: tuple[str, ...]  # created already, but the inventory's parameters differ now
    replanned: tuple[str, ...]  # not created yet, parameters changed: the new ones will be sent
    removed: tuple[str, ...]  # in the ledger, no longer in the inventory
    held: tuple[str, ...] = ()  # changed, but a create may be out: settled before the change
    retried: tuple[str, ...] = ()  # failed before, sent again (changed row or --retry-failed)
    renewed: tuple[str, ...] = ()  # torn down before: created anew


@dataclass(frozen=True, slots=True)
class Binding:
    """The API endpoint and account a rollout's servers live in."""

    rollout: str
    endpoint: str
    account: str  # a fingerprint of the access key, never the key's secret
    rehearsal: bool  # bound to a local simulator: its servers vanish with it


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who runs a rollout now, since when, and until when the claim holds without a heartbeat."""

    rollout: str
    owner: str
    holder: str
    acquired_at: float
    heartbeat_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class RolloutCounts:
    """A rollout's servers per state (each name counted once), and the other servers it holds.

    Read from the ledger's one state of each server: a terminated server is never counted as
    running, a server being taken down is counted as such.
    """

    planned: int = 0
    in_flight: int = 0
    failed: int = 0
    created: int = 0  # made, not seen running (yet)
    running: int = 0
    stopped: int = 0
    starting: int = 0
    resizing: int = 0
    terminating: int = 0
    terminated: int = 0
    gone: int = 0
    deposed: int = 0  # old servers of replaces, not taken down yet (not names: instances)
    duplicates: int = 0  # second servers found under names, ours (instances)

    @property
    def total(self) -> int:
        """Return the number of server names in the rollout."""
        return sum(getattr(self, state.value) for state in State if state != State.DEPOSED)

    @property
    def made(self) -> int:
        """Return how many of its names a create made a server for (whatever became of it)."""
        return self.total - self.planned - self.in_flight - self.failed

    @property
    def live(self) -> int:
        """Return how many of its names have a server on NCP now (billed)."""
        return sum(getattr(self, s.value) for s in State if s.live and s != State.DEPOSED)

    @property
    def not_done(self) -> int:
        """Return how many servers are not created (failed, unknown or never sent)."""
        return self.failed + self.in_flight + self.planned

    def of(self, state: State) -> int:
        """Return the count of one state."""
        return int(getattr(self, state.value))
