"""Settling creates whose outcome is unknown: look, and trust 'not listed' only after a window.

NCP lists a new server late (seconds, maybe tens of seconds, most of all after a slow or failed
create), and its create has no client token, so ours carries one: the create marker
(``ownership``). After an ambiguous answer the server is handed to the settler and looked up by
exact name, where its create was sent (region and VPC), every ``poll`` seconds:
- found carrying this rollout's marker, it is recorded (a server under the name without it is
  someone else's, and proves nothing);
- not found by a look-up that began at least ``window`` seconds after the create was sent, it
  surely does not exist and may be sent again. Absence is only ever read from a filtered read by
  name: a paged listing of a VPC can skip a server (one terminated between two pages shifts the
  rest), so a name missing from a listing is read again by name before it counts as absent;
- look-ups that keep failing give up after ``patience`` of them in a row (look-ups that ran and
  failed: a busy machine whose look-ups did not run yet, or ran long, gives up on nothing); the
  server stays in flight for a rerun.

Every interval is measured on one clock: this process's monotonic one, from the send it made,
or, for a send an earlier run made, from the age NCP's clock gives it (its answers' Date, which
the send was stamped with: ``ncp.clock``). Only a send stamped before NCP's clock was known is
aged by the ledger's clock. A step of this machine's clock changes no sighting.

``sighting_of`` is the whole rule, as a pure function; ``Settler`` does the looking.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from fleet.errors import NcpError
from fleet.ledger import Record
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.ownership import CLAIM_HORIZON, Evidence, epoch, judge
from fleet.planned import PlannedServer

__all__ = [
    "FIRST_LOOK",
    "LOOKUP_PATIENCE",
    "Pending",
    "SendClocks",
    "Settled",
    "Settler",
    "Sighting",
    "sighting_of",
]

# Up to this many names of one (region, VPC) are looked up one by one; more, and one listing of
# the whole VPC (paged) is cheaper.
NAMES_PER_LISTING = 3
# Seconds before the first look-up of a server just handed to the settler: most ambiguous creates
# did make their server, and NCP usually lists it at once, so the first look comes soon.
FIRST_LOOK = 1.0
# Failed look-ups in a row, each one run, before a server is left in flight for a rerun.
LOOKUP_PATIENCE = 10


class Sighting(StrEnum):
    """What a look-up says of a server whose create is unsettled."""

    FOUND = "found"  # it exists: record it
    ABSENT = "absent"  # surely not created: it may be sent again
    WAIT = "wait"  # not listed yet, and too early to trust that: look again later
    UNKNOWN = "unknown"  # look-ups kept failing: leave it in flight for a rerun


def sighting_of(
    found: bool | None,
    looked_at: float,
    sent_at: float,
    window: float,
    failures: int,
    patience: int,
) -> Sighting:
    """Return what one look-up (None: it failed) says of a create sent at ``sent_at``.

    ``failures`` counts this server's failed look-ups in a row, this one included: only
    ``patience`` of them give it up, however long they took. A 'not listed' read that began
    before the window is never trusted, and never counted against it: it is looked up again.
    """
    if found:
        return Sighting.FOUND
    if found is False:
        return Sighting.ABSENT if looked_at - sent_at >= window else Sighting.WAIT
    return Sighting.UNKNOWN if failures >= patience else Sighting.WAIT


@dataclass(frozen=True, slots=True)
class Pending:
    """A server whose last create may or may not have made it."""

    spec: PlannedServer  # what the inventory says now (sent again only once surely absent)
    attempt: int  # the ledger's attempt count at that create: the compare-and-set token
    sent_at: float  # when that create went out, on this process's clock (seconds)
    region: str  # where it was sent: looked up there, whatever the inventory says now
    vpc: str
    request_id: str | None = None
    marked: bool = True  # its create carried a marker: only a server with ours settles it

    @classmethod
    def from_record(
        cls, spec: PlannedServer, record: Record, now: float, clocks: SendClocks
    ) -> Pending:
        """Return the pending look-up of a server an earlier run left unsettled.

        How long ago its create left is its stamp's age on NCP's clock (``clocks.ncp``), or, for
        a send stamped before NCP's clock was known, on the ledger's; ``now`` is where that
        puts the send on this process's clock. It may have left as late as CLAIM_HORIZON after
        the stamp: the window runs from then.
        """
        age = clocks.age(record)
        return cls(
            spec,
            record.attempts,
            now - age + CLAIM_HORIZON,
            record.sent_region,
            record.sent_vpc,
            record.request_id,
            record.marked,
        )


@dataclass(frozen=True, slots=True)
class SendClocks:
    """The clocks an earlier run's sends are aged by: NCP's now (None: unknown), the ledger's."""

    ncp: float | None
    ledger: float

    def age(self, record: Record) -> float:
        """Return how long ago a row's last create left, by NCP's clock where it was stamped."""
        if self.ncp is not None and record.sent_ncp is not None:
            return max(0.0, self.ncp - record.sent_ncp)
        sent = epoch(record.sent_at)
        return 0.0 if sent is None else max(0.0, self.ledger - sent)


# When a look-up began, what it found per name, and whether it read by name (filtered).
Lookup = tuple[float, Mapping[str, Sequence[ServerInstance]], bool]


@dataclass(frozen=True, slots=True)
class Settled:
    """One pending server's sighting, with the servers under its name: ours, and not ours."""

    pending: Pending
    sighting: Sighting
    ours: tuple[ServerInstance, ...]
    others: tuple[ServerInstance, ...]  # someone else's, under the same name
    error: NcpError | None = None  # why its last look-up failed, if one did


@dataclass(slots=True)
class _Watch:
    """How the looking up of one pending server goes, in this settler."""

    looked: bool = False  # looked up at least once
    failures: int = 0  # look-ups in a row that failed
    failed: NcpError | None = None  # why its last look-up failed: recorded if look-ups run out


class Settler:
    """Looks unsettled servers up, a (region, VPC) at a time, and judges each by ``sighting_of``."""

    def __init__(
        self,
        client: NcpClient,
        *,
        window: float,
        patience: int = LOOKUP_PATIENCE,
        clock: Callable[[], float] = time.monotonic,
        rollout_id: str | None = None,
        known: Collection[str] = (),
    ) -> None:
        self.client = client
        self.window = window
        self.patience = patience
        self._clock = clock
        self.rollout_id = rollout_id  # the id this rollout's create markers carry
        # Instance numbers the rollout recorded already (a server being replaced keeps its name
        # and our marker): never the outcome of a create being settled.
        self.known = frozenset(known)
        self.pending: dict[str, Pending] = {}
        self._watch: dict[str, _Watch] = {}  # per pending server: how its looking up goes
        self.lookups = 0  # look-up calls made, for the run's summary

    def add(self, pending: Pending) -> None:
        """Look a server up, round after round, until a look-up settles it."""
        self.pending[pending.spec.name] = pending
        self._watch[pending.spec.name] = _Watch()

    def next_round(self, poll: float) -> float:
        """Return the seconds until the next round: soon if a server is (or may be) new."""
        if not self.pending or any(not self._watch[name].looked for name in self.pending):
            return min(poll, FIRST_LOOK)
        return poll

    async def _look(self, region: str, vpc: str, names: Sequence[str]) -> Lookup:
        looked_at = self._clock()
        found: dict[str, list[ServerInstance]] = defaultdict(list)
        if len(names) <= NAMES_PER_LISTING:
            for name in names:
                found[name] = await self._by_name(name, region, vpc)
            return looked_at, found, True
        self.lookups += 1
        wanted = set(names)
        for server in await self.client.list_servers(region=region, vpc_no=vpc):
            if server.name in wanted:
                found[server.name].append(server)
        return looked_at, found, False

    async def _by_name(self, name: str, region: str, vpc: str) -> list[ServerInstance]:
        self.lookups += 1
        return await self.client.find_by_name(name, region=region, vpc_no=vpc)

    def _split(
        self, pending: Pending, servers: Sequence[ServerInstance]
    ) -> tuple[tuple[ServerInstance, ...], tuple[ServerInstance, ...]]:
        """Split the servers under a pending name into this rollout's and someone else's."""
        servers = [s for s in servers if s.instance_no not in self.known]
        if not pending.marked:  # sent before markers: any server under the name, as then
            return tuple(servers), ()
        evidence = Evidence(self.rollout_id, {})
        ours = tuple(s for s in servers if judge(s, evidence).ours)
        return ours, tuple(s for s in servers if s not in ours)

    async def _judge(self, p: Pending, lookup: Lookup | None) -> Settled:
        """Judge one pending server by a look-up (None: it failed); confirm absence by name."""
        if lookup is None:
            looked_at, found, filtered = self._clock(), None, True
        else:
            looked_at, found, filtered = lookup
        servers = () if found is None else tuple(found.get(p.spec.name, ()))
        ours, others = self._split(p, servers)
        there = None if found is None else bool(ours)
        watch = self._watch[p.spec.name]
        watch.failures = watch.failures + 1 if there is None else 0
        failures, patience = watch.failures, self.patience
        sighting = sighting_of(there, looked_at, p.sent_at, self.window, failures, patience)
        if sighting == Sighting.ABSENT and not filtered:
            # A paged listing may have skipped it: only a read by its name says it is absent.
            try:
                again = await self._by_name(p.spec.name, p.region, p.vpc)
            except NcpError as exc:
                watch.failed = exc
                watch.failures += 1
                return Settled(p, Sighting.WAIT, (), others, exc)
            return await self._judge(p, (looked_at, {p.spec.name: again}, True))
        return Settled(p, sighting, ours, others)

    async def round(self) -> list[Settled]:
        """Look every pending server up once; return the sightings (settled ones leave the set)."""
        groups: dict[tuple[str, str], list[Pending]] = defaultdict(list)
        for pending in self.pending.values():
            groups[(pending.region, pending.vpc)].append(pending)
        sightings: list[Settled] = []
        for (region, vpc), members in groups.items():
            lookup: Lookup | None
            try:
                lookup = await self._look(region, vpc, [p.spec.name for p in members])
            except NcpError as exc:
                for p in members:
                    self._watch[p.spec.name].failed = exc
                lookup = None
            for p in members:
                self._watch[p.spec.name].looked = True
                settled = await self._judge(p, lookup)
                if settled.sighting != Sighting.WAIT:
                    del self.pending[p.spec.name]
                    watch = self._watch.pop(p.spec.name)
                    settled = replace(settled, error=watch.failed)
                sightings.append(settled)
        return sightings
