"""How far NCP's clock is from ours, from the ``Date`` of its answers.

An answer's ``Date`` names the whole second in which the gateway wrote it, and it wrote it while
we waited: between our clock's ``sent`` and ``answered``. So each answer bounds the offset
(NCP's clock minus ours) to ``(date - answered, date + 1 - sent)``; answers read at different
fractions of a second narrow the bound, so samples are spread over a second and a bit.
The gateway refuses signatures more than 5 minutes off (401 with code 200): the offset says
how close that is.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["SAMPLES", "Offset", "Sample", "estimate", "sample_offset"]

SAMPLES: Final = 8  # reads: an eighth of a second apart, and a little more, to sweep a second


@dataclass(frozen=True, slots=True)
class Sample:
    """One answer: our wall clock when the call left and when the answer was read, and its Date."""

    sent: float
    answered: float
    date: float


@dataclass(frozen=True, slots=True)
class Offset:
    """NCP's clock minus ours: the middle of what the samples allow, and half that range."""

    seconds: float
    within: float
    samples: int


def estimate(samples: Sequence[Sample]) -> Offset | None:
    """Return the offset the samples allow; None without any sample."""
    if not samples:
        return None
    low = max(s.date - s.answered for s in samples)
    high = min(s.date + 1 - s.sent for s in samples)
    if low <= high:
        return Offset((low + high) / 2, (high - low) / 2, len(samples))
    # The bounds cross (a clock stepped, or a cache served an old Date): the median of the
    # samples' own middles, as wide as they spread.
    middles = [s.date + 0.5 - (s.sent + s.answered) / 2 for s in samples]
    spread = (max(middles) - min(middles)) / 2 + 0.5
    return Offset(statistics.median(middles), spread, len(samples))


async def sample_offset(
    read: Callable[[], Awaitable[float | None]],
    *,
    wall_clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    count: int = SAMPLES,
) -> Offset | None:
    """Return the offset from ``count`` reads; ``read`` makes one and returns its Date, if any."""
    samples = []
    for i in range(count):
        if i:
            await sleep(1 / count + 0.011)  # a step that is no divisor of a second
        sent = wall_clock()
        date = await read()
        answered = wall_clock()
        if date is not None:
            samples.append(Sample(sent, answered, date))
    return estimate(samples)
