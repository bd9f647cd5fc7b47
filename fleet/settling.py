"""Settling creates whose outcome is unknown: look, and trust 'not listed' only after a window.

NCP lists a new server late (seconds, maybe tens of seconds, most of all after a slow or failed
create), and a create has no client token. So after an ambiguous answer the server is set aside
and looked up by exact name, where its create was sent (region and VPC), every ``poll`` seconds:
found, it is recorded; not found by a look-up that began at least ``window`` seconds after the
create was sent, it surely does not exist and may be sent again. Look-ups that keep failing give
up after ``patience``: the server stays in flight for a rerun to settle.

``decide`` is the whole rule, as a pure function; ``Settler`` does the looking.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .client import NcpClient, ServerInstance
from .errors import NcpError
from .ledger import Record
from .spec import ServerSpec

__all__ = ["CLAIM_HORIZON", "FIRST_LOOK", "Pending", "Settler", "Verdict", "decide", "epoch"]

# Up to this many names of one (region, VPC) are looked up one by one; more, and one listing of
# the whole VPC (paged) is cheaper.
NAMES_PER_LISTING = 3
# Seconds before the first look-up of a server just set aside: most ambiguous creates did make
# their server, and NCP usually lists it at once, so the first look comes soon.
FIRST_LOOK = 1.0
# A claim's create goes out within this many seconds of the claim's stamp, or the claim is
# stamped again first (the engine claims a few servers ahead of their creates, several in one
# commit). So a create recorded as sent at T left between T and T + CLAIM_HORIZON.
CLAIM_HORIZON = 1.0


class Verdict(StrEnum):
    """What a look-up says of a server whose create is unsettled."""

    FOUND = "found"  # it exists: record it
    ABSENT = "absent"  # surely not created: it may be sent again
    WAIT = "wait"  # not listed yet, and too early to trust that: look again later
    UNKNOWN = "unknown"  # look-ups kept failing: leave it in flight for a rerun


def decide(
    found: bool | None,
    looked_at: float,
    sent_at: float,
    now: float,
    window: float,
    patience: float,
) -> Verdict:
    """Return the verdict on one look-up (None: it failed) of a create sent at ``sent_at``."""
    if found:
        return Verdict.FOUND
    if found is False and looked_at - sent_at >= window:
        return Verdict.ABSENT
    if now - sent_at >= window + patience:
        return Verdict.UNKNOWN
    return Verdict.WAIT


def epoch(stamp: str | None) -> float | None:
    """Return an ISO 8601 time (the ledger's, or NCP's createDate) as epoch seconds."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Pending:
    """A server whose last create may or may not have made it."""

    spec: ServerSpec  # what the inventory says now (sent again only once surely absent)
    attempt: int  # the ledger's attempt count at that create: the compare-and-set token
    sent_at: float  # when that create went out (epoch seconds)
    region: str  # where it was sent: looked up there, whatever the inventory says now
    vpc: str
    request_id: str | None = None

    @classmethod
    def from_record(cls, spec: ServerSpec, record: Record, now: float) -> Pending:
        """Return the pending look-up of a server an earlier run left unsettled.

        Its create may have left as late as CLAIM_HORIZON after the stamp: the window runs from
        then.
        """
        sent = epoch(record.sent_at)
        return cls(
            spec,
            record.attempts,
            now if sent is None else sent + CLAIM_HORIZON,
            record.sent_region,
            record.sent_vpc,
            record.request_id,
        )


Lookup = tuple[float, Mapping[str, Sequence[ServerInstance]]]


class Settler:
    """Looks set-aside servers up, a (region, VPC) at a time, and judges each by ``decide``."""

    def __init__(
        self,
        client: NcpClient,
        *,
        window: float,
        patience: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.window = window
        self.patience = patience
        self._clock = clock
        self.pending: dict[str, Pending] = {}
        self._looked: set[str] = set()  # pending servers looked up at least once
        self.lookups = 0  # look-up calls made, for the run's summary
        self.last_error: NcpError | None = None  # why the last failed look-up failed

    def add(self, pending: Pending) -> None:
        """Set a server aside until a look-up settles it."""
        self.pending[pending.spec.name] = pending
        self._looked.discard(pending.spec.name)

    def next_round(self, poll: float) -> float:
        """Return the seconds until the next round: soon if a server is (or may be) new."""
        if not self.pending or any(name not in self._looked for name in self.pending):
            return min(poll, FIRST_LOOK)
        return poll

    async def _look(self, region: str, vpc: str, names: Sequence[str]) -> Lookup:
        looked_at = self._clock()
        found: dict[str, list[ServerInstance]] = defaultdict(list)
        if len(names) <= NAMES_PER_LISTING:
            for name in names:
                self.lookups += 1
                found[name] = await self.client.find_by_name(name, region=region, vpc_no=vpc)
        else:
            self.lookups += 1
            wanted = set(names)
            for server in await self.client.list_servers(region=region, vpc_no=vpc):
                if server.name in wanted:
                    found[server.name].append(server)
        return looked_at, found

    async def round(self) -> list[tuple[Pending, Verdict, Sequence[ServerInstance]]]:
        """Look every pending server up once; return the verdicts (settled ones leave the set)."""
        groups: dict[tuple[str, str], list[Pending]] = defaultdict(list)
        for pending in self.pending.values():
            groups[(pending.region, pending.vpc)].append(pending)
        verdicts: list[tuple[Pending, Verdict, Sequence[ServerInstance]]] = []
        for (region, vpc), members in groups.items():
            try:
                looked_at, found = await self._look(region, vpc, [p.spec.name for p in members])
            except NcpError as exc:
                self.last_error = exc
                looked_at, found = self._clock(), None
            now = self._clock()
            for p in members:
                self._looked.add(p.spec.name)
                servers = () if found is None else tuple(found.get(p.spec.name, ()))
                there = None if found is None else bool(servers)
                verdict = decide(there, looked_at, p.sent_at, now, self.window, self.patience)
                if verdict != Verdict.WAIT:
                    del self.pending[p.spec.name]
                    self._looked.discard(p.spec.name)
                verdicts.append((p, verdict, servers))
        return verdicts
