"""Taking targets down: the intent first, then stop and terminate each until it is gone.

Before its first call, a teardown writes each target ``terminating`` (the intent, with why and
which run): a teardown, prune, retire or rollback that dies part-way is finished by the next run
that finds it. Then, round after round, every target is read by its number and
``fleet.watch.steps.next_step`` (a pure decision from what NCP says of it now) says what to do:
stop what runs, terminate what stopped, wait out an operation. A target missing from a read is
gone only by the one rule (``fleet.states.is_gone``): our terminate was accepted and it then
disappeared, or NCP listed it before and two reads in a row missed it. A server NCP has not
listed yet (its create's answer came first) is waited for, to the time limit, and then reported
live, never marked terminated.
Creates whose outcome is unknown (``pending``) are looked up as the engine settles them, and a
server found carrying our marker is taken too. A ``Teardown`` holds one teardown's client,
ledger, options and report; ``teardown`` runs one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fleet.create.settle import LOOKUP_PATIENCE, Pending, SendClocks, Settled, Settler, Sighting
from fleet.errors import NcpError, PermanentError
from fleet.ledger import AsyncLedger, ErrorKind, Extra, Observed, State
from fleet.ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from fleet.options import DEFAULT_WINDOW, TeardownOptions
from fleet.ownership import found_from
from fleet.planned import PlannedServer
from fleet.states import ServerStatus
from fleet.watch.polling import Clock, Hook, Poller, Sleep, Told, notify, read_statuses
from fleet.watch.steps import Look, Step, next_step

from .extras import extras_of, return_extras
from .scope import LeftAlone, TeardownTarget

__all__ = [
    "NOT_LISTED",
    "Teardown",
    "TeardownReport",
    "Tell",
    "teardown",
]

log = logging.getLogger(__name__)

# What a target NCP never showed is reported as, when time runs out: it exists, unlisted.
NOT_LISTED = "not listed by NCP yet: it exists (its create was answered), still billed"


@dataclass(slots=True)
class TeardownReport:
    """How a teardown ended, per server name."""

    terminated: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)  # left alone: termination protection
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    timed_out: dict[str, str] = field(default_factory=dict)  # name -> last status, or unlisted
    # Public IPs and extra disks of the terminated servers: returned, or still billed and why.
    returned: list[Extra] = field(default_factory=list)
    extras_left: dict[Extra, str] = field(default_factory=dict)
    # Found under the rollout's names, not provably its own (or adopted): never touched.
    left_alone: list[LeftAlone] = field(default_factory=list)
    # Creates whose outcome was unknown: found (and taken), or still unknown and why.
    found: list[str] = field(default_factory=list)
    unsettled: dict[str, str] = field(default_factory=dict)

    @property
    def left_live(self) -> dict[str, str]:
        """Return the servers this teardown meant to take and left on NCP (billed), and why."""
        return {**self.failed, **self.timed_out}


@dataclass(slots=True)
class _Watch:
    """One target between rounds: what the ledger and the reads told of it."""

    target: TeardownTarget
    listed: bool
    accepted: bool
    misses: int = 0
    errors: int = 0
    last: str = "unknown"


Tell = Callable[[str], None]


def _quiet(line: str) -> None:
    log.info("%s", line)


class Teardown:
    """One teardown of a rollout's targets: safe to rerun, whatever stopped the last one."""

    def __init__(
        self,
        client: NcpClient,
        ledger: AsyncLedger,
        rollout: str,
        options: TeardownOptions | None = None,
        *,
        why: str = "teardown",
        max_errors: int = 5,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_progress: Hook | None = None,
        tell: Tell | None = None,
    ) -> None:
        self.client, self.ledger, self.rollout = client, ledger, rollout
        self.options = options or TeardownOptions()
        self.why = why  # teardown, prune, retire or rollback: kept with the intent
        self.max_errors = max_errors
        self._clock, self._sleep, self._on_progress = clock, sleep, on_progress
        self._tell = tell or _quiet  # a line per server changed, and what it waits for
        self.report = TeardownReport()
        self._watched: dict[str, _Watch] = {}
        self._gone: set[str] = set()  # instance numbers taken for gone
        self._told = Told(self._tell, clock)

    async def run(
        self, targets: Sequence[TeardownTarget], pending: Sequence[str] = ()
    ) -> TeardownReport:
        """Stop, then terminate, each target; wait until each is gone; return their extras."""
        await self._write_down_lost(targets)
        await self._intend([t.instance_no for t in targets])
        # Before anything is stopped: a server's record is the only place that names its IP.
        extras = await self._extras_to_return(targets)
        await self._watch(targets)
        settler = await self._settler(pending)
        total = len(targets) + len(pending)

        async def round_() -> bool:
            await self._settle(settler)
            seen = await read_statuses(
                self.client, ((w.target.region, n) for n, w in self._watched.items())
            )
            if seen is not None:
                await self._act(seen)
            done = total - len(self._watched) - len(settler.pending)
            await notify(self._on_progress, done, total)
            self._tell_waiting(settler)
            return not self._watched and not settler.pending

        options = self.options
        poller = Poller(options.poll_interval, options.time_limit, self._clock, self._sleep)
        if (self._watched or settler.pending) and not await poller.run(round_):
            self._ran_out(settler)
        self.report.terminated = sorted(set(self.report.terminated))
        # Returned once their server is gone (this run, or an earlier one that stopped before
        # it returned them); the others stay with their server, for a rerun.
        taken = {t.instance_no for t in targets}
        gone = [e for e in extras if e.server_no in self._gone or e.server_no not in taken]
        await self._return_extras(gone)
        return self.report

    async def _intend(self, numbers: Sequence[str]) -> None:
        """Write the intent before the first call: any later run finishes what this one began."""
        intent = {"why": self.why, "run": self.options.only_run}
        await self.ledger.move(self.rollout, numbers, State.TERMINATING, intent=intent)

    async def _watch(self, targets: Sequence[TeardownTarget]) -> None:
        """Watch each target, with what the ledger knows: listed before, terminate accepted."""
        known = {i.instance_no: i for i in await self.ledger.instances(self.rollout)}
        for t in targets:
            i = known.get(t.instance_no)
            listed = i is not None and i.listed
            accepted = i is not None and i.terminate_at is not None
            self._watched[t.instance_no] = _Watch(t, listed or not t.recorded, accepted)

    async def _write_down_lost(self, targets: Sequence[TeardownTarget]) -> None:
        """Record each lost create found by name before touching it, so its number is known."""
        by_name: dict[str, list[TeardownTarget]] = defaultdict(list)
        for t in targets:
            if not t.recorded:
                by_name[t.name].append(t)
        for name, found in by_name.items():
            await self._record_lost(name, found[0].region, [t.instance_no for t in found])

    async def _record_lost(self, name: str, region: str, numbers: Sequence[str]) -> None:
        servers = await self.client.get_servers(numbers, region=region)
        await self.ledger.record_created(
            self.rollout,
            name,
            found_from(servers, region, ""),
            request_id=None,
            origin="lost",
            from_states=(State.PLANNED, State.IN_FLIGHT, State.FAILED),
        )

    async def _settler(self, pending: Sequence[str]) -> Settler:
        """Look up the creates whose outcome is unknown, as the engine settles them."""
        own = await self.ledger.ownership(self.rollout, window=DEFAULT_WINDOW)
        settler = Settler(
            self.client,
            window=own.window,
            patience=LOOKUP_PATIENCE,
            clock=self._clock,
            rollout_id=own.marker,
            known=list(self._watched),
        )
        if not pending:
            return settler
        rows = {r.name: r for r in await self.ledger.records(self.rollout, list(pending))}
        clocks = SendClocks(await self.client.ncp_now(), await self.ledger.now())
        for name in pending:
            rec = rows.get(name)
            if rec is not None and rec.unsettled:
                spec = PlannedServer(rec.name, rec.file, rec.line, ())
                settler.add(Pending.from_record(spec, rec, self._clock(), clocks))
        return settler

    async def _settle(self, settler: Settler) -> None:
        """Look the unknown creates up once; take what carries our marker, free what is absent."""
        if not settler.pending:
            return
        for settled in await settler.round():
            await self._settled(settled)

    async def _settled(self, settled: Settled) -> None:
        name, pending = settled.pending.spec.name, settled.pending
        if settled.sighting == Sighting.FOUND:
            numbers = [s.instance_no for s in settled.ours]
            await self._record_lost(name, pending.region, numbers)
            await self._intend(numbers)
            for number in numbers:
                target = TeardownTarget(name, number, pending.region, True)
                self._watched[number] = _Watch(target, True, False)
            self.report.found.append(name)
            self._tell(f"{name}: found its create's server ({', '.join(numbers)}): taking it down")
        elif settled.sighting == Sighting.ABSENT:
            await self.ledger.clear_absent(self.rollout, name, pending.attempt)
        elif settled.sighting == Sighting.UNKNOWN:
            why = f"could not be looked up ({settled.error})"
            self.report.unsettled[name] = why
            self._tell(f"{name}: its create may have made a server: {why}; a rerun looks again")

    async def _act(self, seen: dict[str, ServerInstance]) -> None:
        """Decide and do one round's actions; settled servers leave the watch."""
        await self.ledger.observe(
            self.rollout,
            [Observed(n, s.status, s.operation) for n, s in seen.items() if n in self._watched],
        )
        batches: dict[tuple[Step, str], list[str]] = defaultdict(list)
        for number, watch in list(self._watched.items()):
            server = seen.get(number)
            watch.misses = 0 if server is not None else watch.misses + 1
            if server is not None:
                watch.listed, watch.last = True, f"{server.status}/{server.operation}"
            look = Look(server, watch.accepted, watch.misses, watch.listed)
            action, _ = next_step(look, lift_protection=self.options.lift_protection)
            if action == Step.GONE:
                await self._ended(number, watch)
            elif action == Step.LEAVE:
                await self._left_protected(number, watch, server)
            elif action == Step.LIFT_PROTECTION:
                await self._lift(number, watch)
            elif action in (Step.STOP, Step.TERMINATE):
                batches[(action, watch.target.region)].append(number)
        for (action, region), numbers in sorted(batches.items()):
            await self._control(action, region, numbers)

    async def _ended(self, number: str, watch: _Watch) -> None:
        """Record a target gone: terminated, if our terminate was accepted; else gone."""
        to = State.TERMINATED if watch.accepted else State.GONE
        await self.ledger.move(self.rollout, [number], to)
        self.report.terminated.append(watch.target.name)
        self._gone.add(number)
        del self._watched[number]
        self._tell(f"{watch.target.name} ({number}): terminated")

    async def _left_protected(
        self, number: str, watch: _Watch, server: ServerInstance | None
    ) -> None:
        """Leave a protected server: its intent is dropped, its life is what NCP shows."""
        status = server.status if server is not None else None
        to = State.RUNNING if status == ServerStatus.RUN else State.STOPPED
        if status not in (ServerStatus.RUN, ServerStatus.NSTOP):
            to = State.CREATED
        message = "termination protection is on: left (pass lift_protection to take it)"
        await self.ledger.move(self.rollout, [number], to, message=message)
        self.report.protected.append(watch.target.name)
        del self._watched[number]
        self._tell(f"{watch.target.name} ({number}): left, termination protection is on")

    async def _lift(self, number: str, watch: _Watch) -> None:
        try:
            await self.client.set_protection(number, False, region=watch.target.region)
        except NcpError as exc:
            final = isinstance(exc, PermanentError)  # NCP will refuse it again
            await self._refused(number, exc, final=final)

    async def _control(self, action: Step, region: str, numbers: list[str]) -> None:
        """Stop or terminate servers of a region, a batch per call."""
        stopping = action == Step.STOP
        call = self.client.stop_servers if stopping else self.client.terminate_servers
        for i in range(0, len(numbers), BATCH_SIZE):
            batch = numbers[i : i + BATCH_SIZE]
            try:
                await call(batch, region=region)
            except NcpError as exc:
                # Whatever happened, the next round reads the status again and acts on it; only
                # repeated refusals end the attempt for these servers.
                log.warning("%s of %d servers failed: %s", action, len(batch), exc)
                for number in batch:
                    await self._refused(number, exc)
                continue
            if not stopping:
                await self.ledger.accepted_terminate(self.rollout, batch)
            verb = "stopping" if stopping else "terminating"
            for number in batch:
                watch = self._watched[number]
                watch.accepted = watch.accepted or not stopping
                self._tell(f"{watch.target.name} ({number}): {verb}")

    async def _refused(self, number: str, error: NcpError, *, final: bool = False) -> None:
        """Count a refusal for one server; after too many (or a ``final`` one), give it up."""
        watch = self._watched.get(number)
        if watch is None:
            return
        watch.errors += 1
        if not (final or watch.errors >= self.max_errors):
            return
        why = f"refused: {error}"
        self.report.failed[watch.target.name] = why
        await self.ledger.note_error(
            self.rollout, watch.target.name, ErrorKind.STATUS, why, error.code
        )
        del self._watched[number]
        self._tell(f"{watch.target.name} ({number}): not taken down: {why}")

    def _ran_out(self, settler: Settler) -> None:
        """Report what time left: live, still intended to go (the next run finishes it)."""
        for number, watch in self._watched.items():
            why = watch.last if watch.listed else NOT_LISTED
            self.report.timed_out[watch.target.name] = why
            self._tell(f"{watch.target.name} ({number}): not gone after "
                       f"{self.options.time_limit:.0f} s ({why})")  # fmt: skip
        for name in settler.pending:
            self.report.unsettled[name] = "its create's outcome is still unknown"

    def _tell_waiting(self, settler: Settler) -> None:
        """Say, at least every 30 seconds, what the teardown waits for."""
        if self._watched or settler.pending:
            self._told(lambda: self._waiting(settler))

    def _waiting(self, settler: Settler) -> str:
        names = sorted(f"{w.target.name} ({w.last})" for w in self._watched.values())
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        looked = f"; looking up {len(settler.pending)} unknown creates" if settler.pending else ""
        return f"waiting for {len(names)} servers to go: {shown}{looked}"

    async def _extras_to_return(self, targets: Sequence[TeardownTarget]) -> list[Extra]:
        """Return the public IPs and extra disks to return: the targets', and any left before.

        They are written to the ledger before anything is stopped: once a server is gone, NCP
        no longer ties them to it, and a teardown stopped there finds them in the ledger.
        """
        found = await extras_of(self.client, self.ledger, self.rollout, targets)
        await self.ledger.keep_extras(self.rollout, found)
        extras = await self.ledger.extras(self.rollout)
        for extra in extras:
            log.info("to return once its server is gone: %s", extra)
        return extras

    async def _return_extras(self, extras: Sequence[Extra]) -> None:
        """Return the public IPs and extra disks of servers now gone; note what is still billed."""
        if not extras:
            return
        returned = await return_extras(
            self.client,
            extras,
            interval=self.options.poll_interval,
            time_limit=self.options.time_limit,
            clock=self._clock,
            sleep=self._sleep,
        )
        self.report.returned, self.report.extras_left = returned.returned, returned.left
        await self.ledger.extras_returned(self.rollout, returned.returned)


async def teardown(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    targets: Sequence[TeardownTarget],
    options: TeardownOptions | None = None,
    *,
    pending: Sequence[str] = (),
    why: str = "teardown",
    max_errors: int = 5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
    tell: Tell | None = None,
) -> TeardownReport:
    """Stop, then terminate, each target; wait until each is gone. Safe to rerun."""
    down = Teardown(
        client,
        ledger,
        rollout,
        options,
        why=why,
        max_errors=max_errors,
        clock=clock,
        sleep=sleep,
        on_progress=on_progress,
        tell=tell,
    )
    return await down.run(targets, pending)
