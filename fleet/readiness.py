"""After the creates: wait until every created server runs, with no operation under way.

Looks are batched (a call per hundred numbers, per region) and timed by a ``Cadence``: seldom
while servers boot, every FASTEST_POLL seconds once they are due, within a share of the rate.

A server NCP does not list is not yet taken for gone: NCP lists new servers late. It counts as
gone only after ``gone_after`` reads in a row without it, and not before ``settle`` seconds from
its creation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from .addresses import addresses_of
from .ledger import AsyncLedger, Record, State
from .ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from .polling import Cadence, Clock, Hook, Poller, Sleep, notify, read_statuses
from .settling import epoch
from .states import ErrorKind, ServerStatus

__all__ = ["FAILURE_STATUSES", "WaitReport", "wait_running"]

FAILURE_STATUSES = frozenset(
    {
        ServerStatus.FSTOP,
        ServerStatus.SD_FL,
        ServerStatus.ST_FL,
        ServerStatus.RS_FL,
        ServerStatus.TERMT,
    }
)
GONE = "GONE"  # what a server never listed again is reported as
# Seconds between looks once servers are due (see polling.Cadence); the poll interval is the
# longest wait, while they boot.
FASTEST_POLL = 0.5


@dataclass(slots=True)
class WaitReport:
    """How waiting for RUN ended."""

    running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> status or reason
    timed_out: dict[str, str] = field(default_factory=dict)  # name -> last status seen


@dataclass(slots=True)
class _Watch:
    record: Record
    last: str
    misses: int = 0


async def wait_running(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    *,
    time_limit: float = 1800.0,
    interval: float = 10.0,
    settle: float = 60.0,
    gone_after: int = 3,
    names: Collection[str] | None = None,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
) -> WaitReport:
    """Poll the rollout's created servers (or these ``names``) until each is ready or failed.

    Ends when every one is RUN with no operation under way, has failed, or time runs out.
    """
    report = WaitReport()
    records = [
        r
        for r in await ledger.records(rollout)
        if r.state == State.CREATED and r.instance_no and (names is None or r.name in names)
    ]
    pending: dict[str, _Watch] = {}
    for r in records:
        if r.server_status == ServerStatus.RUN and r.run_seconds is not None:
            report.running.append(r.name)
        else:
            pending[r.instance_no or ""] = _Watch(r, r.server_status or "unknown")

    looks = _Looks(pending, client, wall_clock, Cadence(min(FASTEST_POLL, interval), interval))

    async def round_() -> bool:
        seen = await read_statuses(client, ((w.record.region, n) for n, w in pending.items()))
        if seen is not None:
            looks.note(seen)
            ready = await _observe(
                ledger, rollout, pending, seen, report, settle, gone_after, wall_clock
            )
            # Where each server seen RUN can be reached, for the results and exports.
            await ledger.set_addresses(rollout, await addresses_of(client, ready))
            await notify(on_progress, len(report.running), len(records))
        return not pending

    poller = Poller(interval, time_limit, clock, sleep, cadence=looks.next_wait)
    if pending and not await poller.run(round_):
        for watch in pending.values():
            message = f"not RUN after {time_limit:.0f} s (last status {watch.last})"
            await ledger.note_error(
                rollout, watch.record.name, ErrorKind.TIMEOUT, message, watch.last
            )
            report.timed_out[watch.record.name] = watch.last
    return report


@dataclass(slots=True)
class _Looks:
    """When to look at the pending servers again: a Cadence fed with what each round saw."""

    pending: dict[str, _Watch]
    client: NcpClient
    wall_clock: Clock
    cadence: Cadence

    def _ages(self) -> list[float]:
        """Return each pending server's seconds since its create was sent (0: not known)."""
        now = self.wall_clock()
        sent = (epoch(w.record.sent_at or w.record.created_at) for w in self.pending.values())
        return [now - at if at is not None else 0.0 for at in sent]

    def note(self, seen: dict[str, ServerInstance]) -> None:
        """Tell the cadence how old each server seen this round was, and whether it was ready."""
        for number, age in zip(list(self.pending), self._ages(), strict=True):
            if number in seen:
                self.cadence.seen(age, seen[number].ready)

    def next_wait(self) -> float:
        """Return the seconds until the next round (its calls: a batch per region)."""
        regions: dict[str, int] = {}
        for watch in self.pending.values():
            regions[watch.record.region] = regions.get(watch.record.region, 0) + 1
        calls = sum(-(-n // BATCH_SIZE) for n in regions.values())
        return self.cadence.wait(self._ages(), calls, self.client.limiter.rate)


async def _observe(
    ledger: AsyncLedger,
    rollout: str,
    pending: dict[str, _Watch],
    seen: dict[str, ServerInstance],
    report: WaitReport,
    settle: float,
    gone_after: int,
    wall_clock: Clock,
) -> list[tuple[str, ServerInstance]]:
    """Record one round's statuses and take settled servers out of ``pending``.

    Returns the servers found ready this round, each with the region it is read in.
    """
    updates: list[tuple[str, ServerStatus, float | None]] = []
    ready: list[tuple[str, ServerInstance]] = []
    now = wall_clock()
    for number, watch in list(pending.items()):
        rec, server = watch.record, seen.get(number)
        # From the send, not from our record of the answer: the record may lag the answer.
        created = epoch(rec.sent_at or rec.created_at)
        if server is None:
            watch.misses += 1
            young = created is not None and now - created < settle
            if watch.misses < gone_after or young:
                continue  # not listed (yet): NCP lists new servers late
            await ledger.note_error(
                rollout,
                rec.name,
                ErrorKind.STATUS,
                "server no longer exists",
                GONE,
            )
            report.failed[rec.name] = GONE
            del pending[number]
            continue
        watch.misses, watch.last = 0, server.status.value
        if server.ready:
            secs = None if created is None else max(0.0, now - created)
            updates.append((rec.name, server.status, secs))
            ready.append((rec.region, server))
            report.running.append(rec.name)
            del pending[number]
        elif server.status in FAILURE_STATUSES:
            updates.append((rec.name, server.status, None))
            message = f"server ended in status {server.status}"
            await ledger.note_error(
                rollout, rec.name, ErrorKind.STATUS, message, server.status.value
            )
            report.failed[rec.name] = server.status.value
            del pending[number]
        elif server.status != rec.server_status:
            updates.append((rec.name, server.status, None))
    await ledger.set_status(rollout, updates)
    return ready
