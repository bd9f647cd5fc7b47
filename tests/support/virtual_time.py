"""Rollouts against a token-bucket gateway in virtual time: the limiter's behaviour, exactly.

``run_virtual`` runs a coroutine on an event loop whose clock jumps to the next timer instead of
waiting for it (its time is a ``FakeClock``), so a 40-second rollout runs in a fraction of a
second, the same way every time. ``gateway_rollout`` plays the client's part (send through the
limiter, a 429 from the simulator's own ``TokenBucket``, full-jitter retries as the client does)
with a seeded random source.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from fleet.ncp.ratelimit import AdaptiveRateLimiter
from fleet.simulator.gateway import TokenBucket
from tests.support.clock import FakeClock

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    """A selector that, with nothing to read, moves the clock on instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if not events:
            if timeout is None:
                raise RuntimeError("every task waits for something that never comes")
            self.clock.advance(timeout)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: sleeping costs nothing, and order is deterministic."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        super().__init__(_Selector(self.clock))

    def time(self) -> float:
        return self.clock()


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


@dataclass(frozen=True)
class Rollout:
    """How a rollout against the gateway went."""

    servers: int
    seconds: float
    calls: int
    throttled: int
    found: float | None

    @property
    def per_second(self) -> float:
        return self.servers / self.seconds

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.calls


async def gateway_rollout(
    limiter: AdaptiveRateLimiter,
    servers: int,
    *,
    gateway_rate: float,
    gateway_burst: float = 10,
    latency: float = 0.05,
    jitter: float = 0.02,
    workers: int = 32,
    seed: int = 1,
    bucket: TokenBucket | None = None,
    claims: tuple[int, float] = (1, 0.0),
    transit: float = 0.0,
) -> Rollout:
    """Create ``servers`` servers, one call each, through the limiter and the gateway.

    ``bucket`` is the gateway's, when several rollouts (a staged one's waves) share it.
    ``claims`` is (how many, seconds): between its slot and its send, a call waits for a claim
    committed for that many at once, taking that long (the engine's claims ahead). ``transit``
    is up to how many seconds more a call takes to reach the gateway, uniformly drawn.
    """
    loop = asyncio.get_running_loop()
    bucket = bucket or TokenBucket(gateway_rate, gateway_burst, loop.time)
    rng = random.Random(seed)
    left = servers
    calls = throttled = 0
    batch, commit = claims
    shared: list[asyncio.Task[None]] = []  # the commit under way, and how many it claims
    unclaimed = 0

    async def claimed() -> None:
        nonlocal unclaimed
        if commit <= 0:
            return
        if unclaimed == 0:
            shared[:] = [loop.create_task(asyncio.sleep(commit))]
            unclaimed = batch
        unclaimed -= 1
        await asyncio.shield(shared[0])

    async def create() -> None:
        nonlocal calls, throttled
        attempt = 0
        while True:
            async with limiter.slot() as admitted:
                await claimed()
                permit = await limiter.depart(admitted)
                calls += 1
                await asyncio.sleep(0.001 + rng.uniform(0, transit))  # on the way to the gateway
                passed = bucket.take() == 0
                await asyncio.sleep(latency + rng.uniform(0, jitter))
                if not passed:
                    throttled += 1
                    limiter.on_throttle(permit)
            if passed:
                limiter.on_success(permit)
                return
            attempt += 1
            await asyncio.sleep(rng.uniform(0, min(20.0, 0.5 * 2 ** (attempt - 1))))

    async def worker() -> None:
        nonlocal left
        while left:
            left -= 1
            await create()

    started = loop.time()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return Rollout(servers, loop.time() - started, calls, throttled, limiter.found_rate)
