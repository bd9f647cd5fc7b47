"""bench_throughput's scale section: one rollout through the flow at growing sizes, side by side.

Each size is one flow run (``contenders.py flow``) on one inventory, told the gateway's rate, in a
fresh child process against the parent's Prefect server and simulator. Printed per size: servers
per second as a share of R, CPU milliseconds per create, the child's peak RSS and its growth over
the process's baseline (Python, fleet and Prefect imported, before the run) per server, and the
size of each artifact the run left. Flat rows, from the smallest size to the largest, are the
point: nothing on the path of a create may cost more as the rollout grows.

    .venv/bin/python bench/bench_throughput.py --scale                # 1,000, 20,000, 100,000
    .venv/bin/python bench/bench_throughput.py --scale 1000,5000      # a quick look
    .venv/bin/python bench/bench_throughput.py --scale 20000 --scale-postgres   # on PostgreSQL
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from benchkit import Arena, Outcome, verdict, write_inventory

SIZES = (1_000, 20_000, 100_000)
# The gateway's rate R at every size: 200/s, as issue 20 states it for 20,000 servers, so that
# the sizes differ in nothing else (100,000 servers take about 9 minutes). On a 2-core machine
# shared with the simulator and Prefect's server, the CPU would bound a much faster gateway.
RATE = 200.0
TARGET_X_R, X_R_FROM = 0.90, 20_000  # under 20,000 the flow's fixed ~1.5 s weighs (README)
# Peak RSS per server over the baseline: the growth from the smallest size run, per server more;
# and the ceilings at its two sizes.
TARGET_KB = 2.0
TARGET_PEAK_MB = {20_000: 300.0, 100_000: 450.0}
TARGET_ARTIFACT = 1_000_000  # bytes: "well under 1 MB each"
LATENCY = 0.07  # the simulator's latency plus its jitter, for the requests in flight


def rate_for(n: int) -> float:
    """Return the gateway's rate for a rollout of n servers (the same at every size)."""
    del n
    return RATE


def parse_sizes(text: str | None) -> tuple[int, ...]:
    """Return the sizes ``--scale`` names (comma-separated), or the issue's three."""
    if not text:
        return SIZES
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def scale(
    arena: Arena, sizes: Sequence[int], ours: object, *, postgres: bool = False
) -> list[Outcome]:
    """Run the flow at each size, told R, with enough requests in flight to cover R x latency.

    With ``postgres``, each size on a durable PostgreSQL ledger (tests/support/pgserver.py) instead.
    """
    if not postgres:
        return [_one(arena, n, ours, None) for n in sizes]
    from tests.support.pgserver import PostgresServer

    with PostgresServer(durable=True) as pg:
        return [_one(arena, n, ours, pg.create_database(f"scale{n}")) for n in sizes]


def _one(arena: Arena, n: int, ours: object, ledger: str | None) -> Outcome:
    r = rate_for(n)
    inventory = write_inventory(arena.tmp / f"scale-{n}.csv", n)
    in_flight = max(16, math.ceil(1.5 * r * LATENCY))
    argv = ours(  # type: ignore[operator]
        "flow", arena.sim.url, n, inventory=inventory, rate=r, concurrency=in_flight, ledger=ledger
    )
    where = ", PostgreSQL" if ledger else ""
    return arena.contend(f"flow at {n:,}{where}", argv, n, r)


def report_scale(outcomes: Sequence[Outcome]) -> None:
    """Print the sizes side by side, then the issue's targets."""
    done = [o for o in outcomes if o.figures and not o.error]
    if not done:
        print("\n6. scale: no run finished")
        return
    rows = {
        "servers": [f"{o.n:,}" for o in done],
        "gateway R/s": [f"{o.gateway:g}" for o in done],
        "created/s": [f"{o.per_second:.1f}" for o in done],
        "x R": [f"{o.x_r:.3f}" for o in done],
        "x R while creating": [f"{_creating(o):.3f}" for o in done],
        "429s": [f"{o.throttled}" for o in done],
        "CPU ms/create": [f"{o.cpu_ms_per_create:.2f}" for o in done],
        "commits/create": [f"{o.figures.get('ledger_commits', 0) / max(o.n, 1):.3f}" for o in done],
        "baseline RSS MB": [f"{o.figures.get('rss_base_mb', 0):.0f}" for o in done],
        "peak RSS MB": [f"{_peak(o):.0f}" for o in done],
        "KB/server over imports": [f"{_kb(o):.2f}" for o in done],
        "largest artifact KB": [f"{_largest(o) / 1024:.1f}" for o in done],
        "dup/miss": [f"{o.duplicates}/{o.missing}" for o in done],
    }
    ledger = "PostgreSQL" if "PostgreSQL" in done[0].label else "SQLite"
    print(f"\n6. scale: the flow, told R, one rollout per size ({ledger} ledger)")
    for label, cells in rows.items():
        print(f"{label:<22}" + "".join(f"{c:>14}" for c in cells))
    for o in done:
        sizes = ", ".join(f"{k} {v / 1024:.1f} KB" for k, v in sorted(_artifacts(o).items()))
        print(f"  artifacts at {o.n:,}: {sizes}")
    print("targets:")
    small = done[0]
    for o in done:
        if o.n >= X_R_FROM:
            met = o.x_r >= TARGET_X_R
            print(f"  {o.n:,} servers >= {TARGET_X_R} R: {o.x_r:.3f} R -> {verdict(met)}")
        if o is not small and o.n > small.n:
            slope = (_peak(o) - _peak(small)) * 1024 / (o.n - small.n)
            print(f"  {o.n:,} servers, peak RSS over {small.n:,} servers' <= {TARGET_KB:g} KB a"
                  f" server more: {slope:.2f} KB -> {verdict(slope <= TARGET_KB)}")  # fmt: skip
        if o.n in TARGET_PEAK_MB:
            cap = TARGET_PEAK_MB[o.n]
            met = _peak(o) < cap
            print(f"  {o.n:,} servers peak under {cap:g} MB: {_peak(o):.0f} MB -> {verdict(met)}")
        met = _largest(o) < TARGET_ARTIFACT
        print(f"  {o.n:,} servers, every artifact < 1 MB: {_largest(o):,} bytes -> {verdict(met)}")


def _creating(o: Outcome) -> float:
    """Servers per second over the creating alone (not the flow's start, plan and records)."""
    seconds = float(o.figures.get("provision_wall") or o.figures["wall"])
    return o.n / seconds / o.gateway


def _peak(o: Outcome) -> float:
    """Return the child's peak RSS in MB up to the run's end (before reading the artifacts)."""
    return float(o.figures.get("rss_run_peak_mb", o.figures["peak_rss_mb"]))


def _kb(o: Outcome) -> float:
    """Return the peak RSS over the child's RSS before the flow run, per server, in KB."""
    base = float(o.figures.get("rss_base_mb", 0.0))
    return (_peak(o) - base) * 1024 / max(o.n, 1)


def _artifacts(o: Outcome) -> dict[str, int]:
    return {k: int(v) for k, v in o.figures.get("artifact_bytes", {}).items()}


def _largest(o: Outcome) -> int:
    return max(_artifacts(o).values(), default=0)
