"""One rate budget for every run against an NCP account, kept by a Prefect global limit.

A Prefect global concurrency limit with slot decay is a rate limit the Prefect server enforces
across processes and machines. One acquisition is an HTTP round trip (8-15 ms, stalls of 1-2 s on
SQLite), far too slow to pay per request, so calls are bought from it in blocks and each block is
spent through the in-process limiter, which keeps the exact pacing and the 429 back-off. The
shared limit is the ceiling; under it the in-process limiter may still find the gateway's own
limit (``--rate auto``), if that is the lower of the two.

Create the limit once: ``prefect gcl create ncp-account --limit 20 --slot-decay-per-second 10``
(the limit is the shared burst, the decay the shared calls per second), or ``fleet shared-limit``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from prefect.concurrency.asyncio import rate_limit

from fleet import AdaptiveRateLimiter, Limiter, Measure, Permit


async def upsert_limit(name: str, rate: float, burst: int) -> None:
    """Create or update the Prefect global limit that runs share: ``burst`` slots, ``rate``/s."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(
            name, limit=burst, slot_decay_per_second=rate
        )


async def _prefect_rate_limit(name: str, slots: int) -> None:
    # strict=True: a limit that does not exist must fail the run, not silently let all through.
    await rate_limit(name, occupy=slots, strict=True)


class SharedRateLimiter(Limiter):
    """The in-process limiter, with every call also paid from a shared Prefect rate limit."""

    def __init__(
        self,
        name: str,
        local: AdaptiveRateLimiter,
        *,
        block: int = 10,
        acquire: Callable[[str, int], Awaitable[None]] = _prefect_rate_limit,
    ) -> None:
        self.name = name
        self.local = local
        self.block = block
        self._acquire = acquire
        self._tokens = 0
        self._lock = asyncio.Lock()
        self.blocks_taken = 0
        self.seconds_waiting = 0.0

    async def _take(self) -> None:
        async with self._lock:
            if self._tokens == 0:
                started = time.monotonic()
                await self._acquire(self.name, self.block)
                self.seconds_waiting += time.monotonic() - started
                self.blocks_taken += 1
                self._tokens = self.block
            self._tokens -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        """Pay one call from the shared budget, then pace it through the local limiter."""
        await self._take()
        async with self.local.slot() as permit:
            yield permit

    async def depart(self, permit: Permit | None) -> Permit | None:
        """Let the local limiter pace the request's leaving and stamp it."""
        return await self.local.depart(permit)

    def on_success(self, permit: Permit | None = None) -> None:
        """Pass the news to the local limiter."""
        self.local.on_success(permit)

    def on_throttle(self, permit: Permit | None = None) -> None:
        """Slow the local limiter: the shared budget is above what the gateway allows."""
        self.local.on_throttle(permit)

    @property
    def rate(self) -> float:
        """Return the local limiter's rate (the shared limit may hold calls to less)."""
        return self.local.rate

    @property
    def found_rate(self) -> float | None:
        """Return the gateway's limit, if the local limiter found it under the shared one."""
        return self.local.found_rate

    @property
    def measure(self) -> Measure | None:
        """Return what the local limiter's found rate was measured over, if anything was."""
        return self.local.measure
