"""The provisioning engine: create each server once, recording every outcome, whatever happens.

The rules that make a rollout safe to interrupt, retry and rerun:
- a server is claimed ``in_flight`` (a compare-and-set, under the rollout's lease, committed and
  synced) before each create goes out; the parameters and region as sent are kept;
- only failures NCP did not process are retried blindly (inside the client);
- after an ambiguous failure (timeout, lost connection, 5xx, an unreadable success, or any
  unexpected error once sending began) the server is set aside and looked up by exact name where
  it was sent, while the others go on; 'not listed' is trusted only a ``settle`` window after
  the send (see ``settling``);
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

from .claiming import Claims, WorkQueue
from .client import NcpClient, ServerInstance
from .errors import AmbiguousError, FleetError, NcpError
from .ledger import AsyncLedger, Found, Record
from .options import ProvisionOptions
from .settling import Pending, Settler, Verdict
from .spec import ServerSpec

__all__ = ["Progress", "Provisioner", "found_from"]

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
    settling: int = 0  # set aside now, being looked up
    running: int = 0  # seen ready, when waiting for it
    waiting: bool = False  # creating is over; waiting for RUN


ProgressHook = Callable[[Progress], Awaitable[None] | None]


def found_from(servers: Sequence[ServerInstance], region: str, vpc: str) -> list[Found]:
    """Return NCP's servers as the ledger records them, in the region and VPC they were sent to."""
    return [
        Found(s.instance_no, region, s.vpc_no or vpc, s.status.value, s.create_date, s.raw)
        for s in servers
    ]


def _never() -> bool:
    return False


class _Done(Exception):
    """Raised inside the task group once every server is settled, to stop the waiting workers."""


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
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_progress: ProgressHook | None = None,
        progress: Progress | None = None,
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

    async def provision(
        self, specs: Sequence[ServerSpec], *, stop: Callable[[], bool] | None = None
    ) -> list[Record]:
        """Create these servers (the client's limiter sets the pace); return their records.

        Safe to call again with the same servers (a retried task, a second call): what the
        ledger holds as created is skipped, what it holds in flight is settled first. Once
        ``stop()`` says so (a failure budget spent), nothing more is sent; what is on its way
        is still settled, and the servers not sent stay planned.
        """
        book = self.ledger.sync
        names = [s.name for s in specs]  # this call's servers only: a chunk is not the rollout
        by_name = {r.name: r for r in await self.ledger.run(book.records, self.rollout, names)}
        settler = Settler(
            self.client,
            window=self.options.settle,
            patience=max(self.options.settle, 10 * self.options.settle_poll),
            clock=self._clock,
        )
        queue = WorkQueue()
        for spec in specs:
            record = by_name.get(spec.name)
            if record is None:
                continue  # not planned: never sent
            if record.unsettled:
                settler.add(Pending.from_record(spec, record, self._clock()))
            elif record.sendable:
                queue.put_nowait(spec)
        await self._run(queue, settler, stop or _never)
        return await self.ledger.run(book.records, self.rollout, names)

    async def _run(self, queue: WorkQueue, settler: Settler, stop: Callable[[], bool]) -> None:
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
        )
        state = _RunState(outstanding, {}, stop, queue, claims)
        workers = min(self.options.workers, max(1, queue.qsize()))
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(self._worker(queue, settler, state))
                group.create_task(self._settle(queue, settler, state))
        except BaseExceptionGroup as errors:
            _, other = errors.split(_Done)
            if other is not None:
                # One cause is enough for the caller (and Prefect's retry condition): the
                # first project error if any, else the first error.
                causes = list(other.exceptions)
                first = next((e for e in causes if isinstance(e, FleetError)), causes[0])
                await state.written(raising=False)  # the cause on its way out comes first
                raise first from other
        except BaseException:  # cancelled
            await state.written(raising=False)
            raise
        await state.written(raising=True)
        self.lookups += settler.lookups

    async def _worker(self, queue: WorkQueue, settler: Settler, state: _RunState) -> None:
        while True:
            spec = await state.claims.next(queue)
            if state.stop():
                await state.claims.release(spec)  # never sent: as it was, if claimed ahead
                finished = True
            else:
                finished = await self._create(spec, settler, state)
            if finished:
                await state.finish(self)

    async def _create(self, spec: ServerSpec, settler: Settler, state: _RunState) -> bool:
        """Send one server's create; return True once it is settled (False: set aside)."""
        book = self.ledger.sync
        send = _Send()

        async def claim() -> None:
            # Committed before the create is signed and sent; every retry is written too.
            if send.attempt is None:
                send.attempt = await state.claims.claim(spec, state.queue)
            else:
                send.attempt = await self.ledger.run(
                    book.resend, self.rollout, spec.name, send.attempt, self.owner
                )
            send.sent_at = self._clock()

        try:
            result = await self.client.create_server(spec.params, before_send=claim)
            server = next((s for s in result.servers if s.name == spec.name), None)
            if server is None:
                raise AmbiguousError(
                    "create answered success with no server of this name in it",
                    action="createServerInstances",
                    request_id=result.request_id,
                )
        except AmbiguousError as exc:
            log.info("%s: create may have gone through (%s); setting it aside", spec.name, exc)
            await self.ledger.run(book.note_ambiguous, self.rollout, spec.name, exc)
            self._set_aside(spec, send, settler, exc.request_id)
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
            log.exception("%s: unexpected error after sending; setting it aside", spec.name)
            self._set_aside(spec, send, settler, None)
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
                at=self._clock(),
            )
        )
        await self._count("created")
        return True

    def _set_aside(
        self, spec: ServerSpec, send: _Send, settler: Settler, request_id: str | None
    ) -> None:
        assert send.attempt is not None
        settler.add(Pending(spec, send.attempt, send.sent_at, spec.region, spec.vpc_no, request_id))
        self.progress.settling = len(settler.pending)

    async def _settle(self, queue: WorkQueue, settler: Settler, state: _RunState) -> None:
        """Look set-aside servers up every settle_poll seconds until none is left."""
        while True:
            if settler.pending:
                for pending, verdict, servers in await settler.round():
                    if await self._apply(pending, verdict, servers, queue, state):
                        await state.finish(self)
                self.progress.settling = len(settler.pending)
            await self._sleep(settler.next_round(self.options.settle_poll))

    async def _apply(
        self,
        pending: Pending,
        verdict: Verdict,
        servers: Sequence[ServerInstance],
        queue: WorkQueue,
        state: _RunState,
    ) -> bool:
        """Act on a verdict; return True once the server is settled for this run."""
        book, name = self.ledger.sync, pending.spec.name
        if verdict == Verdict.FOUND:
            found = found_from(servers, pending.region, pending.vpc)
            await self.ledger.run(
                book.record_created,
                self.rollout,
                name,
                found,
                request_id=pending.request_id,
                origin="lookup",
            )
            if len(found) > 1:
                log.warning("%s: %d servers carry this name; all recorded", name, len(found))
            await self._count("created")
            return True
        if verdict == Verdict.ABSENT:
            state.cycles[name] = state.cycles.get(name, 0) + 1
            if state.cycles[name] >= self.options.max_create_attempts:
                message = f"no server after {state.cycles[name]} ambiguous creates"
                await self.ledger.run(book.give_up, self.rollout, name, pending.attempt, message)
                await self._count("failed")
                return True
            await self.ledger.run(book.release_absent, self.rollout, pending.spec, pending.attempt)
            queue.put_nowait(pending.spec)  # surely absent: sending again cannot duplicate it
            return False
        if verdict == Verdict.UNKNOWN:
            error = settler_error(pending)
            log.warning("%s: could not be looked up; left in flight (%s)", name, error)
            await self._count("unknown")
            return True
        return False

    async def _count(self, outcome: str) -> None:
        p = self.progress
        p.done += 1
        setattr(p, outcome, getattr(p, outcome) + 1)
        if self._on_progress is not None:
            result = self._on_progress(p)
            if result is not None:
                await result


def settler_error(pending: Pending) -> str:
    """Return why a pending server is left unsettled, for the log."""
    return f"create sent at attempt {pending.attempt}, still not settled"


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
    writes: list[asyncio.Future[None]] = field(default_factory=list)

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

    async def finish(self, engine: Provisioner) -> None:
        """Count one server settled; when none is left, end the task group."""
        del engine
        self.outstanding -= 1
        if self.outstanding == 0:
            raise _Done
