"""The provisioning engine: create each server once, recording every outcome, whatever happens.

The rules that make a rollout safe to interrupt, retry and rerun:
- a server is claimed ``in_flight`` (a compare-and-set, under the rollout's lease, committed and
  synced) before each create goes out; the parameters and region as sent are kept, and the create
  carries the rollout's create marker in its description (``ownership``), naming this run and
  the claim's attempt: a server found later is ours only by that marker or a recorded number;
- a failure budget is checked at the moment of sending (after the limiter's wait): once spent,
  nothing more leaves but what is already on the wire;
- only failures NCP did not process are retried blindly (inside the client);
- after an ambiguous failure (timeout, lost connection, 5xx, an unreadable success, or any
  unexpected error once sending began) the server is handed to the settler and looked up by
  exact name where it was sent, while the others go on; 'not listed' is trusted only a
  ``settle`` window after the send (see ``settling``);
- the workers of one call run in a task group: if one fails for a reason other than NCP's answer
  (the ledger lost, the lease lost), every sibling is cancelled and awaited before the error
  leaves, so a retried task never races its predecessor;
- a rerun (or a retried task) skips what was created, settles what is in flight the same way,
  and sends only the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fleet.create.claims import Claims, WorkQueue
from fleet.create.settle import LOOKUP_PATIENCE, Pending, SendClocks, Settled, Settler, Sighting
from fleet.errors import AmbiguousError, FleetError, NcpError, PermanentError
from fleet.ledger import AsyncLedger, Record
from fleet.ncp.client import NcpClient, Params
from fleet.options import ProvisionOptions
from fleet.ownership import Marker, describe, found_from, new_rollout_id, new_run_tag
from fleet.planned import PlannedServer

__all__ = ["Progress", "Provisioner"]

log = logging.getLogger(__name__)

# Every this many outcomes, the writes already committed are checked for a failure.
_CHECK_WRITES = 64


@dataclass(slots=True)
class Progress:
    """Running counts of a rollout, for progress bars and artifacts."""

    total: int = 0
    done: int = 0
    created: int = 0
    failed: int = 0
    unknown: int = 0  # in flight and not settled: a rerun settles them
    settling: int = 0  # unsettled now, being looked up
    running: int = 0  # seen ready, when waiting for it
    waiting: bool = False  # creating is over; waiting for RUN

    def count(self, outcome: Outcome) -> None:
        """Count one server done with this outcome."""
        self.done += 1
        if outcome == "created":
            self.created += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.unknown += 1


Outcome = Literal["created", "failed", "unknown"]  # how a server's create ended for this run
ProgressHook = Callable[[Progress], Awaitable[None] | None]


def marked(params: Params, marker: Marker) -> Params:
    """Return a create's parameters with the marker after the user's own description."""
    user = next((v for k, v in params if k == "serverDescription"), "")
    rest = [(k, v) for k, v in params if k != "serverDescription"]
    return [*rest, ("serverDescription", describe(user, marker))]


class Withheld(Exception):
    """Raised before a create is sent, once the run's failure budget is spent: nothing left."""


def _never() -> bool:
    return False


def _nothing() -> None:
    return None


class Provisioner:
    """Creates a rollout's servers through one client, recording everything in the ledger."""

    def __init__(
        self,
        client: NcpClient,
        ledger: AsyncLedger,
        rollout: str,
        owner: str,
        options: ProvisionOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_progress: ProgressHook | None = None,
        progress: Progress | None = None,
        rollout_id: str | None = None,
        run: str | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.rollout = rollout
        self.owner = owner  # the lease owner token every claim is checked against
        self.options = options or ProvisionOptions()
        self._clock = clock
        self._sleep = sleep
        self._on_progress = on_progress
        self.progress = progress or Progress()  # shared by every engine of one run
        self.lookups = 0
        self.ambiguous = 0  # answers of any kind that left a create's outcome unknown
        self.rollout_id = rollout_id  # the id in the rollout's create markers (None: the ledger's)
        self.run = run or new_run_tag()  # this run's tag in the markers

    async def provision(
        self,
        specs: Sequence[PlannedServer],
        *,
        stop: Callable[[], bool] | None = None,
        drained: Callable[[], None] | None = None,
    ) -> list[Record]:
        """Create these servers (the client's limiter sets the pace); return their records.

        Safe to call again with the same servers (a retried task, a second call): what the
        ledger holds as created is skipped, what it holds in flight is settled first. Once
        ``stop()`` says so (a failure budget spent), nothing more is sent; what is on its way
        is still settled, and the servers not sent stay planned. ``drained()`` is called once
        nothing is left to send but what settling sends again: the rest is looking up.
        """
        if self.rollout_id is None:
            own = await self.ledger.ownership(
                self.rollout,
                window=self.options.settle,
                new_marker=new_rollout_id(),
            )
            self.rollout_id = own.marker
        names = [s.name for s in specs]  # this call's servers only: a chunk is not the rollout
        by_name = {r.name: r for r in await self.ledger.records(self.rollout, names)}
        known = [i.instance_no for i in await self.ledger.instances(self.rollout, names)]
        settler = Settler(
            self.client,
            window=self.options.settle,
            patience=LOOKUP_PATIENCE,
            clock=self._clock,
            rollout_id=self.rollout_id,
            known=known,
        )
        queue = WorkQueue()
        unsettled = [r for r in by_name.values() if r.unsettled]
        clocks = await self._clocks(unsettled)
        for spec in specs:
            record = by_name.get(spec.name)
            if record is None:
                continue  # not planned: never sent
            if record.unsettled:
                settler.add(Pending.from_record(spec, record, self._clock(), clocks))
            elif record.sendable:
                queue.put_nowait(spec)
        await self._run(queue, settler, stop or _never, drained or _nothing)
        return await self.ledger.records(self.rollout, names)

    async def _clocks(self, unsettled: Sequence[Record]) -> SendClocks:
        """Return the clocks an earlier run's sends are judged by: NCP's, else the ledger's.

        NCP's clock (its answers' Date) is asked only when some send stamped with it waits to be
        settled; the ledger's clock stands in for sends stamped before NCP's was known.
        """
        ncp = None
        if any(r.sent_ncp is not None for r in unsettled):
            ncp = await self.client.ncp_now()
        ledger = await self.ledger.now() if unsettled else 0.0
        return SendClocks(ncp=ncp, ledger=ledger)

    async def _run(
        self,
        queue: WorkQueue,
        settler: Settler,
        stop: Callable[[], bool],
        drained: Callable[[], None],
    ) -> None:
        """Work the queue and the settler in one task group until every server is settled."""
        outstanding = queue.qsize() + len(settler.pending)
        if not outstanding:
            return
        claims = Claims(
            self.ledger,
            self.rollout,
            self.owner,
            clock=self._clock,
            rate=lambda: self.client.limiter.rate,
            run=self.run,
            ncp=self.client.ncp_clock.latest,
        )
        state = _RunState(outstanding, {}, stop, queue, claims, drained)
        workers = min(self.options.workers, max(1, queue.qsize()))
        settling = _Settling(
            self.ledger,
            self.rollout,
            self.rollout_id,
            self.options.max_create_attempts,
            self.progress,
            self._sleep,
            self._count,
        )
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._worker(queue, settler, state)) for _ in range(workers)
                ]
                poll = self.options.settle_poll
                tasks.append(group.create_task(settling.run(queue, settler, state, poll)))
                # Every server settled: the workers wait on an empty queue and the settler on
                # its next round, for nothing. (A task that fails ends the wait for all.)
                await state.settled.wait()
                for task in tasks:
                    task.cancel()
        except BaseExceptionGroup as errors:
            # One cause is enough for the caller (and Prefect's retry condition): the first
            # project error if any, else the first error.
            causes = list(errors.exceptions)
            first = next((e for e in causes if isinstance(e, FleetError)), causes[0])
            await state.written(raising=False)  # the cause on its way out comes first
            raise first from errors
        except BaseException:  # cancelled
            await state.written(raising=False)
            raise
        await state.written(raising=True)
        self.lookups += settler.lookups

    async def _worker(self, queue: WorkQueue, settler: Settler, state: _RunState) -> None:
        while True:
            if queue.empty():
                state.drain()
            spec = await state.claims.next(queue)
            if state.stop():
                await state.claims.release(spec)  # never sent: as it was, if claimed ahead
                finished = True
            else:
                finished = await self._create(spec, settler, state)
            if finished:
                state.finish()

    async def _claim(self, spec: PlannedServer, send: _Send, state: _RunState) -> Params:
        """Claim a create just before it leaves; return its parameters, marked.

        Committed before the create is signed and sent; every retry is written too. The budget
        is checked here, after the limiter's wait: at the moment of sending.
        """
        if send.attempt is None:
            if state.stop():
                raise Withheld
            send.attempt = await state.claims.claim(spec, state.queue)
        else:
            send.attempt = await self.ledger.resend(
                self.rollout, spec.name, send.attempt, self.owner, self.client.ncp_clock.latest()
            )
        send.sent_at = self._clock()
        assert self.rollout_id is not None
        return marked(spec.params, Marker(self.rollout_id, self.run, send.attempt))

    async def _create(self, spec: PlannedServer, settler: Settler, state: _RunState) -> bool:
        """Send one server's create; return True once it is settled (False: unsettled)."""
        book = self.ledger.sync
        send = _Send()

        def claim() -> Awaitable[Params]:
            return self._claim(spec, send, state)

        try:
            result = await self.client.create_server(spec.params, before_send=claim)
            server = next((s for s in result.servers if s.name == spec.name), None)
            if server is None:
                raise AmbiguousError(
                    "create answered success with no server of this name in it",
                    action="createServerInstances",
                    request_id=result.request_id,
                )
        except Withheld:
            await state.claims.release(spec)  # never sent: as it was, if claimed ahead
            return True
        except AmbiguousError as exc:
            self.ambiguous += 1
            log.info("%s: create may have gone through (%s); looking it up", spec.name, exc)
            await self.ledger.note_ambiguous(self.rollout, spec.name, exc)
            self._to_settler(spec, send, settler, exc.request_id)
            return False
        except NcpError as exc:
            state.later(self.ledger.later(book.record_failed, self.rollout, spec.name, exc))
            await self._count("failed")
            return True
        except FleetError:
            raise  # the ledger or the lease is gone: nothing more may be sent
        except Exception:
            if send.attempt is None:
                raise  # failed before anything was claimed or sent
            # The create may have left: the server stays in flight and is looked up.
            self.ambiguous += 1
            log.exception("%s: unexpected error after sending; looking it up", spec.name)
            self._to_settler(spec, send, settler, None)
            return False
        found = found_from([server], spec.region, spec.vpc_no)
        # Not awaited: nothing waits on an outcome to send, so outcomes share commits; the run
        # ends only once every one is committed (``_RunState.written``).
        state.later(
            self.ledger.later(
                book.record_created,
                self.rollout,
                spec.name,
                found,
                request_id=result.request_id,
                run=self.run,
            )
        )
        await self._count("created")
        return True

    def _to_settler(
        self, spec: PlannedServer, send: _Send, settler: Settler, request_id: str | None
    ) -> None:
        assert send.attempt is not None
        settler.add(Pending(spec, send.attempt, send.sent_at, spec.region, spec.vpc_no, request_id))
        self.progress.settling = len(settler.pending)

    async def _count(self, outcome: Outcome) -> None:
        self.progress.count(outcome)
        if self._on_progress is not None:
            result = self._on_progress(self.progress)
            if result is not None:
                await result


@dataclass(frozen=True, slots=True)
class _Settling:
    """The engine's settling side: act on each sighting the settler gives.

    It records in the engine's ledger and counts through the engine's ``count``: what it needs
    of the engine, given when the engine starts it.
    """

    ledger: AsyncLedger
    rollout: str
    rollout_id: str | None
    attempts: int  # ambiguous creates found surely absent before a server is given up
    progress: Progress
    sleep: Callable[[float], Awaitable[None]]
    count: Callable[[Outcome], Awaitable[None]]

    async def run(self, queue: WorkQueue, settler: Settler, state: _RunState, poll: float) -> None:
        """Look unsettled servers up every ``poll`` seconds until none is left."""
        while True:
            if settler.pending:
                for settled in await settler.round():
                    if await self._apply(settled, queue, state):
                        state.finish()
                self.progress.settling = len(settler.pending)
            await self.sleep(settler.next_round(poll))

    async def _apply(self, settled: Settled, queue: WorkQueue, state: _RunState) -> bool:
        """Act on a sighting; return True once the server is settled for this run."""
        pending = settled.pending
        name = pending.spec.name
        if settled.sighting == Sighting.FOUND:
            found = found_from(settled.ours, pending.region, pending.vpc, self.rollout_id)
            await self.ledger.record_created(
                self.rollout,
                name,
                found,
                request_id=pending.request_id,
                origin="lookup",
            )
            if len(found) > 1:
                log.warning("%s: %d servers carry this name; all recorded", name, len(found))
            await self.count("created")
            return True
        if settled.sighting == Sighting.ABSENT:
            return await self._absent(settled, queue, state)
        if settled.sighting == Sighting.UNKNOWN:
            log.warning("%s: could not be looked up; left in flight (%s)", name, settled.error)
            if settled.error is not None:  # NCP's answer to the look-up, kept for status
                await self.ledger.note_lookup_failed(self.rollout, name, settled.error)
            await self.count("unknown")
            return True
        return False

    async def _absent(self, settled: Settled, queue: WorkQueue, state: _RunState) -> bool:
        """Send a surely absent server again, unless its name is taken or its tries ran out."""
        pending = settled.pending
        name = pending.spec.name
        state.cycles[name] = state.cycles.get(name, 0) + 1
        if settled.others:
            # Our create made nothing, and someone else's server holds the name: sending again
            # would put two servers under it. Refused here, as a planned name that exists is.
            numbers = " ".join(s.instance_no for s in settled.others)
            error = PermanentError(
                f"no server of this rollout was made, and the name is taken by {numbers}, "
                "which is not this rollout's (no create marker of it, number not recorded)",
                action="createServerInstances",
                code="fleet-name-taken",
            )
            await self.ledger.record_failed(self.rollout, name, error)
            await self.count("failed")
            return True
        if state.cycles[name] >= self.attempts:
            message = f"no server after {state.cycles[name]} ambiguous creates"
            await self.ledger.give_up(self.rollout, name, pending.attempt, message)
            await self.count("failed")
            return True
        await self.ledger.release_absent(self.rollout, pending.spec, pending.attempt)
        queue.put_nowait(pending.spec)  # surely absent: sending again cannot duplicate it
        return False


@dataclass(slots=True)
class _Send:
    """One server's create as it goes out: the ledger's attempt number, and when it left."""

    attempt: int | None = None
    sent_at: float = 0.0


@dataclass(slots=True)
class _RunState:
    """One ``provision`` call's work: what is not settled yet, its claims, its pending writes."""

    outstanding: int
    cycles: dict[str, int]  # per server: creates found surely absent so far
    stop: Callable[[], bool]  # once true, servers still queued are not sent
    queue: WorkQueue
    claims: Claims
    drained: Callable[[], None]  # told once, when nothing is left to send
    writes: list[asyncio.Future[None]] = field(default_factory=list)
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # set once none is outstanding
    _told: bool = False

    def drain(self) -> None:
        """Say once that the queue ran dry: what is left is settling (and what it resends)."""
        if not self._told:
            self._told = True
            self.drained()

    def later(self, write: asyncio.Future[None]) -> None:
        """Keep a write not awaited yet; a failed one stops the run at the next write."""
        self.writes.append(write)
        if len(self.writes) >= _CHECK_WRITES:
            done = [w for w in self.writes if w.done()]
            self.writes = [w for w in self.writes if not w.done()]
            for w in done:
                w.result()  # raises the ledger's error, if the write failed

    async def written(self, *, raising: bool) -> None:
        """Wait for every kept write; if ``raising``, raise the first that failed."""
        writes, self.writes = self.writes, []
        results = await asyncio.gather(*writes, return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None and raising:
            raise failed

    def finish(self) -> None:
        """Count one server settled for this call; once none is left, say so (``settled``)."""
        self.outstanding -= 1
        if self.outstanding == 0:
            self.settled.set()
