"""The ledger for async code: its calls run on one thread of their own, writes grouped.

A database call blocks: SQLite's full sync, PostgreSQL's round trip. Run on the event loop, each
would stall every other request in flight. So the engine's calls go to one worker thread, which
takes whatever has queued up while it was busy and runs it in ONE transaction (group commit): a
claim's await returns only once its transaction has committed, so a create never goes out before
its ``in_flight`` mark is durable, and under load many marks share one commit. A write nothing
waits on to send (``later``: a create's outcome) lingers for company, and its caller need not
await it at once.

``AsyncLedger`` has the Ledger's methods under the same names, awaited (as httpx's
``AsyncClient`` mirrors ``Client``): ``await ledger.records(rollout)``. ``start`` and ``later``
queue a Ledger method without awaiting it, for the engine's grouped writes.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from fleet.errors import LeaseLost, LedgerConflict

from .ledger import Ledger

__all__ = ["AsyncLedger"]

P = ParamSpec("P")
T = TypeVar("T")

_MAX_BATCH = 64
# How long a write nothing waits on (``later``: a create's outcome) waits for company before it
# commits alone: a commit's fsync costs more CPU than the write. At 100 creates/s this gathers
# five outcomes, and any claim, into one commit. A kill inside it loses no server: the outcomes
# not committed leave their servers in flight, and a rerun looks them up by name. An urgent
# operation (a claim) never waits, and takes the waiting ones into its commit.
LINGER = 0.050
# Errors an operation raises before it writes anything: the rest of its batch is unharmed.
_CLEAN = (LedgerConflict, LeaseLost)

_Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[Any], bool]


def _deliver(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class _Awaited(Generic[P, T]):
    """A Ledger method as an AsyncLedger attribute: the same arguments, run on its thread."""

    def __init__(self, method: Callable[Concatenate[Ledger, P], T]) -> None:
        self.name = method.__name__
        self.__doc__ = method.__doc__

    def __get__(self, owner: AsyncLedger, kind: type | None = None) -> Callable[P, Awaitable[T]]:
        method = getattr(owner.sync, self.name)

        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return await owner._submit(method, args, kwargs, grouped=False)

        return call


class AsyncLedger:
    """Awaitable access to a Ledger: one worker thread, writes grouped into shared commits."""

    # The Ledger's methods, by the same names (tests/unit/test_architecture.py checks that every
    # public one is here).
    compare = _Awaited(Ledger.compare)
    plan = _Awaited(Ledger.plan)
    claim = _Awaited(Ledger.claim)
    resend = _Awaited(Ledger.resend)
    claim_many = _Awaited(Ledger.claim_many)
    restamp = _Awaited(Ledger.restamp)
    unclaim = _Awaited(Ledger.unclaim)
    record_created = _Awaited(Ledger.record_created)
    adopt = _Awaited(Ledger.adopt)
    record_failed = _Awaited(Ledger.record_failed)
    note_ambiguous = _Awaited(Ledger.note_ambiguous)
    note_lookup_failed = _Awaited(Ledger.note_lookup_failed)
    release_absent = _Awaited(Ledger.release_absent)
    give_up = _Awaited(Ledger.give_up)
    clear_absent = _Awaited(Ledger.clear_absent)
    record_resized = _Awaited(Ledger.record_resized)
    begin_replace = _Awaited(Ledger.begin_replace)
    restore = _Awaited(Ledger.restore)
    observe = _Awaited(Ledger.observe)
    move = _Awaited(Ledger.move)
    accepted_terminate = _Awaited(Ledger.accepted_terminate)
    missed = _Awaited(Ledger.missed)
    intents = _Awaited(Ledger.intents)
    release_names = _Awaited(Ledger.release_names)
    note_error = _Awaited(Ledger.note_error)
    bind = _Awaited(Ledger.bind)
    binding = _Awaited(Ledger.binding)
    acquire = _Awaited(Ledger.acquire)
    renew = _Awaited(Ledger.renew)
    release = _Awaited(Ledger.release)
    lease = _Awaited(Ledger.lease)
    ownership = _Awaited(Ledger.ownership)
    retire = _Awaited(Ledger.retire)
    retired = _Awaited(Ledger.retired)
    remember_rate = _Awaited(Ledger.remember_rate)
    known_rate = _Awaited(Ledger.known_rate)
    forget = _Awaited(Ledger.forget)
    keep_extras = _Awaited(Ledger.keep_extras)
    extras = _Awaited(Ledger.extras)
    extras_returned = _Awaited(Ledger.extras_returned)
    set_addresses = _Awaited(Ledger.set_addresses)
    addresses = _Awaited(Ledger.addresses)
    records = _Awaited(Ledger.records)
    names = _Awaited(Ledger.names)
    record = _Awaited(Ledger.record)
    instances = _Awaited(Ledger.instances)
    counts = _Awaited(Ledger.counts)
    rollouts = _Awaited(Ledger.rollouts)
    now = _Awaited(Ledger.now)

    def __init__(self, ledger: Ledger) -> None:
        self.sync = ledger
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._urgent = threading.Event()
        self.commits = 0  # transactions run, for the benchmarks: fewer than calls under load
        self.calls = 0

    def __repr__(self) -> str:
        return f"AsyncLedger({self.sync.shown!r})"

    def start(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Queue one Ledger method now; the future settles once its transaction committed.

        For a result several tasks await: awaiting a future shared by others through
        ``asyncio.shield`` does not cancel it for them.
        """
        return self._submit(fn, args, kwargs, grouped=False)

    def later(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Queue a write nothing waits on to send (a create's outcome); it may wait for company.

        Its commit may wait up to LINGER to share another's; the future settles once committed.
        """
        return self._submit(fn, args, kwargs, grouped=True)

    def _submit(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], grouped: bool
    ) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._start()
        self._jobs.put((fn, args, kwargs, future, grouped))
        if not grouped:
            self._urgent.set()  # cut a lingering batch short
        return future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="fleet-ledger", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Finish what is queued, then stop the worker thread (the Ledger stays open)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            self._urgent.set()
            thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            self._urgent.clear()  # an urgent job queued from now on ends the linger below
            if job is None:
                return
            batch = [job]
            stop = self._gather(batch)
            if not stop and all(job[4] for job in batch):  # none urgent: wait for company
                # Asleep until the linger ends or an urgent job comes, not woken by each write.
                self._urgent.wait(LINGER)
                stop = self._gather(batch)
            self._run(batch)
            if stop:
                return

    def _gather(self, batch: list[_Job]) -> bool:
        """Add the queued jobs to the batch; return True if the queue says to stop."""
        while len(batch) < _MAX_BATCH:
            try:
                more = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if more is None:
                return True
            batch.append(more)
        return False

    def _run(self, batch: list[_Job]) -> None:
        self.calls += len(batch)
        outcomes: list[tuple[bool, Any]] | None = None
        if len(batch) > 1:
            outcomes = self._together(batch)
        if outcomes is None:  # alone, or after the shared commit failed
            outcomes = [self._alone(fn, args, kwargs) for fn, args, kwargs, _, _ in batch]
        # One wake-up of each event loop for the whole batch, not one per operation.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (_, _, _, future, _), (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_deliver, settled)

    def _alone(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        self.commits += 1
        try:
            return (True, fn(*args, **kwargs))
        except BaseException as exc:  # delivered to the awaiting caller, whatever it is
            return (False, exc)

    def _together(self, batch: list[_Job]) -> list[tuple[bool, Any]] | None:
        """Run a batch in one transaction; None if it failed (each then runs on its own)."""
        results: list[tuple[bool, Any]] = []
        try:
            with self.sync.db.batch():
                for fn, args, kwargs, _, _ in batch:
                    try:
                        results.append((True, fn(*args, **kwargs)))
                    except _CLEAN as exc:
                        results.append((False, exc))
        except Exception:
            return None
        self.commits += 1
        return results
