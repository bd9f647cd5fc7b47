"""Claiming servers ahead of their creates: several ``in_flight`` marks in one commit.

A create may go out only once its server's ``in_flight`` mark is committed and synced. One commit
per create cost more CPU than the rest of the create together, so when a worker needs a claim it
also claims the next few servers in the queue, in the same transaction, and the workers that take
them find their claims made. The ledger's stamp of such a claim is then earlier than its send, so
the rule is: a create leaves within ``CLAIM_HORIZON`` of its claim's stamp, or its claim is stamped
again first (``restamp``), and whoever reads the stamp later allows for the horizon (settling,
survey). How many are claimed at once follows the limiter's rate, so the last of them is due well
inside the horizon; a claim whose create will not go out (the run stopped first) is undone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice

from fleet.errors import LedgerConflict
from fleet.ledger import AsyncLedger
from fleet.ownership import CLAIM_HORIZON
from fleet.planned import PlannedServer

__all__ = ["Claims", "WorkQueue"]

# At most this many servers claimed in one commit: beyond it the commit is shared thinly enough.
MOST_AHEAD = 32
# Claim what the limiter lets through in this share of the horizon: the rest is slack for a
# limiter that slows down (throttling) before the last of them is sent.
AHEAD_SHARE = 0.25
# Sends measured before claiming ahead: until then, one claim per commit.
_MEASURED = 4

Claimed = list[int | LedgerConflict]


class WorkQueue:
    """The servers to send, in order; the claimer can see which come next.

    A deque and a semaphore counting what it holds: workers wait for a server in the order they
    came, and the claimer reads the servers due next without taking them (``upcoming``).
    """

    def __init__(self) -> None:
        self._specs: deque[PlannedServer] = deque()
        self._held = asyncio.Semaphore(0)

    def put_nowait(self, spec: PlannedServer) -> None:
        """Queue a server to send after those already queued."""
        self._specs.append(spec)
        self._held.release()

    async def get(self) -> PlannedServer:
        """Take the next server, waiting until there is one."""
        await self._held.acquire()
        return self._specs.popleft()  # no await since the acquire: it is there

    def qsize(self) -> int:
        """Return how many servers are queued."""
        return len(self._specs)

    def empty(self) -> bool:
        """Return whether no server is queued."""
        return not self._specs

    def upcoming(self) -> Iterator[PlannedServer]:
        """Iterate over the queued servers, next first (without taking them)."""
        return iter(self._specs)


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A server claimed with another's: the shared commit, its place in it, when it was begun."""

    batch: asyncio.Future[Claimed]
    index: int
    at: float


class Claims:
    """The ``in_flight`` marks of one engine's servers, claimed a few at a time."""

    def __init__(
        self,
        ledger: AsyncLedger,
        rollout: str,
        owner: str,
        *,
        clock: Callable[[], float],
        rate: Callable[[], float | None],
        run: str | None = None,
        ncp: Callable[[], float | None] = lambda: None,
    ) -> None:
        self._ledger = ledger
        self._rollout = rollout
        self._owner = owner
        self._run = run  # the run tag each claim records: its create marker carries it
        self._ncp = ncp  # NCP's clock now, at least: each claim's send is stamped with it too
        self._clock = clock
        self._rate = rate
        self._ahead: dict[str, _Ahead] = {}
        # Taken by a worker, waiting for the limiter: these go out first, in this order.
        self._taken: dict[str, PlannedServer] = {}
        self._sends: deque[float] = deque(maxlen=MOST_AHEAD)  # when our last creates left

    def _how_many(self) -> int:
        """How many to claim at once: what this engine sends in a share of the horizon.

        The limiter's rate is shared by every engine of a run (a flow's chunks), so this engine's
        own pace, measured over its last sends, counts too.
        """
        rate, sends = self._rate(), self._sends
        if len(sends) < _MEASURED or sends[-1] <= sends[0]:
            return 1
        own = (len(sends) - 1) / (sends[-1] - sends[0])
        pace = own if rate is None else min(rate, own)
        return max(1, min(MOST_AHEAD, int(pace * CLAIM_HORIZON * AHEAD_SHARE)))

    async def next(self, queue: WorkQueue) -> PlannedServer:
        """Take the next server from the queue, for a worker to send."""
        spec = await queue.get()
        self._taken[spec.name] = spec
        return spec

    async def claim(self, spec: PlannedServer, queue: WorkQueue) -> int:
        """Return the attempt of ``spec``'s committed claim, made now or ahead of it.

        Called just before its create goes out. Claims the servers due next with it: those
        other workers took, then the queue's first.
        """
        self._taken.pop(spec.name, None)
        self._sends.append(self._clock())
        ahead = self._ahead.pop(spec.name, None)
        if ahead is not None:
            return await self._take(spec, ahead)
        book = self._ledger.sync
        due = chain(self._taken.values(), queue.upcoming())
        unclaimed = (s for s in due if s.name not in self._ahead)
        others = list(islice(unclaimed, self._how_many() - 1))
        if not others:
            return await self._ledger.claim(
                self._rollout, spec, self._owner, self._run, self._ncp()
            )
        at = self._clock()  # before the commit: its stamp is this or later
        batch = self._ledger.start(
            book.claim_many, self._rollout, [spec, *others], self._owner, self._run, self._ncp()
        )
        for index, other in enumerate(others, start=1):
            self._ahead[other.name] = _Ahead(batch, index, at)
        return _attempt(await asyncio.shield(batch), 0)

    async def _take(self, spec: PlannedServer, ahead: _Ahead) -> int:
        attempt = _attempt(await asyncio.shield(ahead.batch), ahead.index)
        if self._clock() - ahead.at > CLAIM_HORIZON:  # late: the stamp must not promise too much
            await self._ledger.restamp(self._rollout, spec.name, attempt, self._owner, self._ncp())
        return attempt

    async def release(self, spec: PlannedServer) -> None:
        """Undo ``spec``'s claim if it was made ahead: its create will not go out now."""
        self._taken.pop(spec.name, None)
        ahead = self._ahead.pop(spec.name, None)
        if ahead is None:
            return
        claimed = (await asyncio.shield(ahead.batch))[ahead.index]
        if isinstance(claimed, int):
            await self._ledger.unclaim(self._rollout, spec.name, claimed)


def _attempt(claimed: Claimed, index: int) -> int:
    result = claimed[index]
    if isinstance(result, LedgerConflict):
        raise result
    return result
