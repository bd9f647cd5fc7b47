"""The one loop of watching servers: read the status of everything pending, act, sleep, repeat.

Waiting for RUN and tearing down are both loops over observed state, not over remembered
intentions: each round reads every pending server (a batch of instance numbers per call, per
region) and does what its status calls for. So a round that fails, or a process that dies,
loses nothing: the next round, or the next run, reads the state again and carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fleet.errors import NcpError
from fleet.ncp.client import NcpClient, ServerInstance

__all__ = [
    "TELL_EVERY",
    "Cadence",
    "Clock",
    "Hook",
    "Poller",
    "Sleep",
    "Told",
    "notify",
    "read_statuses",
]

# A loop that waits says what it waits for at least this often: never a silent wait.
TELL_EVERY = 30.0

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Hook = Callable[[int, int], Awaitable[None] | None]


async def notify(hook: Hook | None, done: int, total: int) -> None:
    """Tell a progress hook (sync or async) how far a loop has come."""
    if hook is not None:
        result = hook(done, total)
        if result is not None:
            await result


async def read_statuses(
    client: NcpClient, targets: Iterable[tuple[str, str]]
) -> dict[str, ServerInstance] | None:
    """Read many servers by (region, instance number); None when a read failed after retries."""
    by_region: dict[str, list[str]] = defaultdict(list)
    for region, number in targets:
        by_region[region].append(number)
    seen: dict[str, ServerInstance] = {}
    try:
        for region, numbers in sorted(by_region.items()):
            for server in await client.get_servers(numbers, region=region):
                seen[server.instance_no] = server
    except NcpError as exc:
        log.warning("status poll failed, will poll again: %s", exc)
        return None
    return seen


@dataclass(frozen=True, slots=True)
class Poller:
    """Runs rounds until one says it is done or time runs out, ``interval`` seconds apart.

    ``cadence``, when given, says how long to wait before each next round instead.
    """

    interval: float
    time_limit: float
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
    cadence: Callable[[], float] | None = None

    async def run(self, round_: Callable[[], Awaitable[bool]]) -> bool:
        """Return True once a round reports everything settled, False at the time limit."""
        deadline = self.clock() + self.time_limit
        while True:
            if await round_():
                return True
            now = self.clock()
            if now >= deadline:
                return False
            wait = self.interval if self.cadence is None else self.cadence()
            await self.sleep(min(wait, deadline - now))


@dataclass(slots=True)
class Cadence:
    """How long to wait before the next look at booting servers: short once some are due.

    A server is due once the shortest boot seen so far (from its create to a look that found it
    ready) has passed since its own create: the look after that comes ``fastest`` seconds later,
    so a wait ends within a look of the last server's RUN. Until any was seen ready, the wait is a
    quarter of the oldest one's age, so the first RUN is seen at most a quarter late; a server
    overdue is looked at again after a quarter of the time it is overdue by, so one slow server
    does not hold the looks at their fastest. Never longer than ``slowest`` (the poll interval),
    and never so short that the looks take more than ``share`` of the call rate.
    """

    fastest: float  # seconds
    slowest: float  # seconds
    share: float = 0.25  # of the call rate the looks may take
    booted: float | None = None  # the shortest create-to-ready seen, in seconds

    def seen(self, age: float, ready: bool) -> None:
        """Note one look at a server ``age`` seconds after its create: ready or not."""
        if ready and (self.booted is None or age < self.booted):
            self.booted = age

    def wait(self, ages: Iterable[float], calls: int = 1, rate: float | None = None) -> float:
        """Return the seconds until the next look at servers of these ages (since their create).

        ``calls`` is what one look costs (a batch of numbers per call), ``rate`` the calls/s.
        """
        floor = self.fastest
        if rate:
            floor = max(floor, calls / (self.share * rate))
        ages = list(ages)
        if not ages:
            return min(self.slowest, floor)
        if self.booted is None:
            wait = max(ages) / 4
        else:
            boot = self.booted
            wait = min(boot - a if a < boot else (a - boot) / 4 for a in ages)
        return min(self.slowest, max(floor, wait))


@dataclass(slots=True)
class Told:
    """Says, at least every ``every`` seconds, what a loop waits for (the first time: at once)."""

    tell: Callable[[str], None]
    clock: Clock = time.monotonic
    every: float = TELL_EVERY
    _last: float | None = None

    def __call__(self, line: Callable[[], str]) -> None:
        """Say ``line()`` if it is time to (it is only made then)."""
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return
        self._last = now
        self.tell(line())
