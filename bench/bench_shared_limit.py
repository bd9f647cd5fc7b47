"""What sharing one rate budget through Prefect costs, against the in-process limiter.

Starts its own Prefect server (SQLite, on a free loopback port; or uses PREFECT_API_URL if set),
then measures, in one run:
  1. one `rate_limit` acquisition through the server (p50 / p99 / max latency);
  2. calls/s and microseconds per call through the in-process AdaptiveRateLimiter;
  3. the same through SharedRateLimiter, buying the budget in blocks of 1, 10 and 50 slots.
The shared limit here is generous (it never makes anyone wait for budget), so the figures are
the cost of asking, not of waiting.

    python bench/bench_shared_limit.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect_server import prefect_server  # bench/prefect_server.py


@contextmanager
def prefect_api() -> Iterator[str]:
    """Yield a Prefect API URL: the one configured, or a server started for this run."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    with (
        tempfile.TemporaryDirectory(prefix="fleet-bench-prefect-") as home,
        prefect_server(Path(home)) as (url, _startup),
    ):
        os.environ["PREFECT_API_URL"] = url
        yield url


@dataclass
class Figures:
    """What the run measured: acquisition latencies, and calls through each limiter."""

    latencies: list[float]  # seconds per rate_limit acquisition, sorted
    rows: list[tuple[str, float, float, float, int]]  # limiter, calls/s, s/call, CPU s/call, blocks

    @property
    def p99_ms(self) -> float:
        """Return the 99th percentile acquisition, in milliseconds."""
        return self.latencies[int(len(self.latencies) * 0.99) - 1] * 1e3


def parse(argv: Sequence[str] | None = None) -> int:
    """Return the number of calls to put through each limiter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    return int(parser.parse_args(argv).calls)


async def _through(limiter: object, n: int) -> tuple[float, float]:
    """Put n calls through a limiter at once; return wall and CPU seconds."""
    started, cpu = time.perf_counter(), time.process_time()

    async def one() -> None:
        async with limiter.slot():  # type: ignore[attr-defined]
            pass

    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - started, time.process_time() - cpu


async def run(calls: int) -> Figures:
    """Measure acquisitions through the Prefect server, then calls through each limiter."""
    from prefect import get_client
    from prefect.concurrency.asyncio import rate_limit

    from fleet.ncp.ratelimit import AdaptiveRateLimiter
    from flows.shared_limit import SharedRateLimiter

    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(
            "bench-account", limit=1000, slot_decay_per_second=100_000
        )
    latencies = []
    for _ in range(min(calls, 300)):
        started = time.perf_counter()
        await rate_limit("bench-account", occupy=1, strict=True)
        latencies.append(time.perf_counter() - started)
    rows = []
    wall, cpu = await _through(AdaptiveRateLimiter(1e6, 1000, max_in_flight=64), calls)
    rows.append(("in-process AdaptiveRateLimiter", calls / wall, wall / calls, cpu / calls, 0))
    for block in (1, 10, 50):
        local = AdaptiveRateLimiter(1e6, 1000, max_in_flight=64)
        limiter = SharedRateLimiter("bench-account", local, block=block)
        n = min(calls, 200 * block)  # block 1 pays a round trip per call: keep it short
        wall, cpu = await _through(limiter, n)
        name = f"SharedRateLimiter, block {block}"
        rows.append((name, n / wall, wall / n, cpu / n, limiter.blocks_taken))
    return Figures(sorted(latencies), rows)


def report(figures: Figures, calls: int) -> None:
    """Print the figures, and what they mean for a shared budget."""
    lat = figures.latencies
    print(f"one rate_limit acquisition through the Prefect server ({len(lat)} in a row):")
    print(
        f"  p50 {statistics.median(lat) * 1e3:7.1f} ms   "
        f"p99 {figures.p99_ms:7.1f} ms   max {lat[-1] * 1e3:7.1f} ms"
    )
    print(f"\nup to {calls} calls through each limiter (no real rate in the way):")
    print(f"  {'limiter':34} {'calls/s':>10} {'us/call':>10} {'CPU us/call':>12} {'acquired':>9}")
    for name, rate, per, cpu_per, blocks in figures.rows:
        print(f"  {name:34} {rate:10.0f} {per * 1e6:10.1f} {cpu_per * 1e6:12.1f} {blocks:9d}")
    acquisitions_per_s = figures.rows[1][1]  # block 1: one acquisition per call
    print(
        f"\nRead: the server grants about {acquisitions_per_s:.0f} acquisitions/s to one process "
        f"(p99 {figures.p99_ms:.0f} ms), so a process sharing the budget spends at most about "
        f"{acquisitions_per_s:.0f} x block calls/s, and a stall of the server stalls it. For "
        "NCP's rates (tens of calls/s) the default block of 10 is enough. A single run needs no "
        "shared limit: the in-process limiter is exact and costs microseconds."
    )


def main() -> None:
    """Parse, run on a Prefect server of its own, report."""
    calls = parse()
    with prefect_api() as url:
        print(f"Prefect API: {url}\n")
        figures = asyncio.run(run(calls))
    report(figures, calls)


if __name__ == "__main__":
    main()
