"""After the creates: wait until every created server runs, with no operation under way.

Looks are batched (a call per hundred numbers, per region) and timed by a ``Cadence``: seldom
while servers boot, every FASTEST_POLL seconds once they are due, within a share of the rate.

A server NCP does not list is not taken for gone by waiting's own rule: only by the one rule
(``fleet.states.is_gone``): listed before, then missing from two polls in a row. A server NCP has
not listed yet (its create's answer came first) is waited for, to the time limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from fleet.errors import ErrorKind
from fleet.ledger import AsyncLedger, Observed, Record
from fleet.ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from fleet.options import DEFAULT_POLL, DEFAULT_WAIT
from fleet.ownership import epoch
from fleet.states import ServerStatus, State, is_gone
from fleet.watch.addresses import addresses_of
from fleet.watch.polling import Cadence, Clock, Hook, Poller, Sleep, Told, notify, read_statuses

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
    listed: bool  # NCP showed it in a read: only then can it be gone
    misses: int = 0


async def wait_running(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    *,
    time_limit: float = DEFAULT_WAIT,
    interval: float = DEFAULT_POLL,
    names: Collection[str] | None = None,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
    tell: Callable[[str], None] | None = None,
) -> WaitReport:
    """Poll the rollout's created servers (or these ``names``) until each is ready or failed.

    Ends when every one is RUN with no operation under way, has failed, or time runs out.
    ``tell`` hears, at least every 30 s, how many run and which are awaited, and each failure.
    """
    report = WaitReport()
    records, pending = await _to_watch(ledger, rollout, names, report)
    told = Told(tell, clock) if tell is not None else None
    looks = _Looks(pending, client, wall_clock, Cadence(min(FASTEST_POLL, interval), interval))

    async def round_() -> bool:
        seen = await read_statuses(client, ((w.record.region, n) for n, w in pending.items()))
        if seen is not None:
            looks.note(seen)
            failed = len(report.failed)
            ready = await _observe(ledger, rollout, pending, seen, report, wall_clock)
            # Where each server seen RUN can be reached, for the results and exports.
            await ledger.set_addresses(rollout, await addresses_of(client, ready))
            await notify(on_progress, len(report.running), len(records))
            for name in list(report.failed)[failed:]:
                if tell is not None:
                    tell(f"{name}: failed ({report.failed[name]})")
        if told is not None and pending:
            told(lambda: _waiting(report, pending, len(records)))
        return not pending

    poller = Poller(interval, time_limit, clock, sleep, cadence=looks.next_wait)
    if pending and not await poller.run(round_):
        for watch in pending.values():
            last = watch.last if watch.listed else "not listed by NCP yet"
            message = f"not RUN after {time_limit:.0f} s (last status {last})"
            await ledger.note_error(
                rollout, watch.record.name, ErrorKind.TIMEOUT, message, watch.last
            )
            report.timed_out[watch.record.name] = watch.last
    return report


async def _to_watch(
    ledger: AsyncLedger, rollout: str, names: Collection[str] | None, report: WaitReport
) -> tuple[list[Record], dict[str, _Watch]]:
    """Return the servers to wait for (those kept), and those not running yet, by number."""
    records = [
        r
        for r in await ledger.records(rollout)
        if r.state.kept and r.instance_no and (names is None or r.name in names)
    ]
    listed = {i.instance_no for i in await ledger.instances(rollout) if i.listed}
    pending: dict[str, _Watch] = {}
    for r in records:
        if r.state == State.RUNNING and r.run_seconds is not None:
            report.running.append(r.name)
        else:
            number = r.instance_no or ""
            pending[number] = _Watch(r, r.server_status or "unknown", number in listed)
    return records, pending


def _waiting(report: WaitReport, pending: dict[str, _Watch], total: int) -> str:
    """Say how many run, and which are awaited (the first few, with their status)."""
    shown = [f"{w.record.name} ({w.last})" for w in list(pending.values())[:5]]
    more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
    return (
        f"{len(report.running)} of {total} running; waiting for {len(pending)}: "
        f"{', '.join(shown)}{more}"
    )


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
    wall_clock: Clock,
) -> list[tuple[str, ServerInstance]]:
    """Record one round's statuses and take settled servers out of ``pending``.

    Returns the servers found ready this round, each with the region it is read in.
    """
    reads: list[Observed] = []
    ready: list[tuple[str, ServerInstance]] = []
    now = wall_clock()
    for number, watch in list(pending.items()):
        rec, server = watch.record, seen.get(number)
        if server is None:
            watch.misses += 1
            if not is_gone(listed=watch.listed, terminate_accepted=False, misses=watch.misses):
                continue  # not listed (yet): NCP lists new servers late
            await ledger.move(rollout, [number], State.GONE, message="server no longer exists")
            report.failed[rec.name] = GONE
            del pending[number]
            continue
        watch.misses, watch.last, watch.listed = 0, server.status.value, True
        if server.ready:
            # From the send, not from our record of the answer: the record may lag the answer.
            created = epoch(rec.sent_at or rec.created_at)
            secs = None if created is None else max(0.0, now - created)
            reads.append(Observed(number, server.status, server.operation, secs))
            ready.append((rec.region, server))
            report.running.append(rec.name)
            del pending[number]
        elif server.status in FAILURE_STATUSES:
            reads.append(Observed(number, server.status, server.operation))
            message = f"server ended in status {server.status}"
            await ledger.note_error(
                rollout, rec.name, ErrorKind.STATUS, message, server.status.value
            )
            report.failed[rec.name] = server.status.value
            del pending[number]
        else:
            reads.append(Observed(number, server.status, server.operation))
    await ledger.observe(rollout, reads)
    return ready
