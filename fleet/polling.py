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

from .errors import NcpError
from .ncp.client import NcpClient, ServerInstance

__all__ = ["TELL_EVERY", "Clock", "Hook", "Poller", "Sleep", "Told", "notify", "read_statuses"]

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
    """Runs rounds every ``interval`` seconds until one says it is done or time runs out."""

    interval: float
    time_limit: float
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep

    async def run(self, round_: Callable[[], Awaitable[bool]]) -> bool:
        """Return True once a round reports everything settled, False at the time limit."""
        deadline = self.clock() + self.time_limit
        while True:
            if await round_():
                return True
            if self.clock() >= deadline:
                return False
            await self.sleep(self.interval)


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
