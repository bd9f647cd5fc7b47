"""Benchmark: create N servers through a rate-limited gateway, four ways, on one machine state.

The NCP simulator runs in its own process with a gateway limit of R calls/s (token bucket) and
some latency; it is reset between contenders. Each contender runs in a fresh child process (this
file with ``--contender``), so its CPU time and peak RSS are its own:

1. sequential: a plain loop of signed httpx calls, one create at a time (an SDK script); run on
   the first few hundred servers only, its rate extrapolated to N;
2. threads: 10 threads of synchronous signed httpx calls (Terraform's parallelism=10, or a
   ThreadPoolExecutor script), no client-side limit, a fixed 1 s sleep after each 429;
3. engine: fleet's Provisioner (preflight + provision) over NcpClient + AdaptiveRateLimiter and a
   fresh Ledger, no Prefect;
4. flow: the same rollout through the ``provision_fleet`` Prefect flow, from an inventory CSV,
   against a Prefect server started here (``prefect server start`` on a free loopback port, as in
   production; its start-up is reported apart and is not part of the flow's time).

After each contender the simulator's admin state is checked: every name exactly once. Then, with a
higher gateway limit so that they run quickly, the engine and the flow run at 2,000 and at 10,000
servers and the growth of each one's peak RSS per extra server is reported (the flow's is the
target; the engine's shows how much of it is the library's). A measurement, not a test: it
always exits 0 and says MISSED when a target is missed.

    .venv/bin/python bench/bench_throughput.py            # defaults, about 3 minutes
    .venv/bin/python bench/bench_throughput.py --quick    # about 1 minute, smaller sizes
    .venv/bin/python bench/bench_throughput.py --memory   # the memory part only, about 70 s
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from prefect_server import prefect_server  # bench/prefect_server.py

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --- settings ----------------------------------------------------------------------------------

RATE = 100.0  # gateway limit R, calls/s
GATEWAY_BURST = 10  # the gateway's token bucket size
LATENCY = 0.05  # seconds added to every answer ...
JITTER = 0.02  # ... plus up to this much more, uniformly drawn
# The engine's and the flow's limiter, tuned here (2,000 servers, R=100, gateway burst 10):
# - burst 1: the client never runs ahead of R, so the gateway's bucket stays nearly full and the
#   jitter between sending and the gateway counting a call does not empty it;
# - 10 in flight: R x (latency + jitter) needs ~7, and 10 still allows ~150 calls/s. More hurt:
#   Provisioner.provision starts every server's coroutine at once and each writes the ledger
#   before reaching the limiter, a ~0.1 ms/server stall of the event loop (0.22 s at 2,000);
#   the limiter's reservations made before it then all fall due together, a burst of up to
#   max_in_flight calls. At 32 that burst overflows the gateway's 10 tokens: ~10 429s, one 30%
#   rate cut and ~4 s of CUBIC recovery (0.96 x R); at 10 it never can (0.98 x R, no 429).
#   Fewer connections also cost less CPU per call in httpcore's pool bookkeeping.
CLIENT_BURST = 1
CONCURRENCY = 10
SEQUENTIAL_CAP = 300  # the sequential loop creates only this many; its rate is extrapolated
THREADS = 10
THROTTLE_SLEEP = 1.0  # what a typical script sleeps after a 429

MEMORY_RATE = 1000.0  # a higher gateway limit for the memory runs, so they end quickly
MEMORY_BURST = 50
MEMORY_LATENCY = 0.01
MEMORY_JITTER = 0.005
MEMORY_SIZES = (2_000, 10_000)

TARGET_RATIO = 0.95  # engine servers/s >= 0.95 R
TARGET_FLOW_SLOWDOWN = 0.10  # flow wall <= 1.10 x engine wall
# Peak RSS growth per extra server through the flow. One server's unavoidable state is its spec
# (~1 KB), its ledger record with the create response (~2 KB), a results row and an artifact row
# (~1 KB): a few KB. 20 KB/server leaves room for that while catching anything per-server that
# should not be there (one task run per server costs ~35 KB/server in Prefect 3.9) and keeps a
# 100,000-server rollout under 2 GB more than a small one.
TARGET_KB_PER_SERVER = 20.0

GROUP = 100  # servers per inventory row (serverCreateCount)
PREFIX = "bench"
VPC, SUBNET, IMAGE, SPEC = "75001", "75101", "25495367", "s2-g3"
API_PATH = "/vserver/v2/createServerInstances"
QUERY = "responseFormatType=json"


# --- the servers -------------------------------------------------------------------------------


def names(n: int) -> list[str]:
    """Return the names an inventory of n servers in rows of GROUP expands to."""
    return [f"{PREFIX}-g{i // GROUP:03d}-{i % GROUP + 1:03d}" for i in range(n)]


def write_inventory(path: Path, n: int) -> Path:
    """Write an inventory CSV of n servers, GROUP per row, named bench-gNNN-001 ..."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "serverName",
                "serverCreateCount",
                "serverCreateStartNo",
                "serverImageNo",
                "serverSpecCode",
                "vpcNo",
                "subnetNo",
            ]
        )
        for row, start in enumerate(range(0, n, GROUP)):
            count = min(GROUP, n - start)
            writer.writerow([f"{PREFIX}-g{row:03d}", count, 1, IMAGE, SPEC, VPC, SUBNET])
    return path


def build_specs(n: int, file: str = "bench.csv") -> list[Any]:
    """Return the ServerSpecs of n servers, as load_inventories expands write_inventory's file."""
    from fleet.inventory import ServerSpec

    out = []
    for i, name in enumerate(names(n)):
        params = (
            ("serverImageNo", IMAGE),
            ("serverSpecCode", SPEC),
            ("vpcNo", VPC),
            ("subnetNo", SUBNET),
            ("serverCreateCount", "1"),
            ("serverName", name),
            ("networkInterfaceList.1.networkInterfaceOrder", "0"),
        )
        out.append(ServerSpec(name, file, i // GROUP + 2, params))
    return out


# --- the contenders (each in its own child process) --------------------------------------------


def _keys() -> tuple[str, str]:
    return os.environ["NCLOUD_ACCESS_KEY"], os.environ["NCLOUD_SECRET_KEY"]


def _script_create(client: Any, params: Sequence[tuple[str, str]], tally: Counter[str]) -> bool:
    """Create one server the way a script does: sign, POST, sleep 1 s and resend on a 429."""
    from fleet.signing import signed_headers

    access, secret = _keys()
    uri = f"{API_PATH}?{QUERY}"
    body = urlencode(params)
    while True:
        headers = signed_headers("POST", uri, int(time.time() * 1000), access, secret)
        headers["content-type"] = "application/x-www-form-urlencoded"
        tally["calls"] += 1
        response = client.post(uri, content=body, headers=headers)
        if response.status_code == 429:
            tally["throttled"] += 1
            time.sleep(THROTTLE_SLEEP)
            continue
        return response.status_code == 200


def run_sequential(url: str, n: int) -> dict[str, Any]:
    """One create at a time, in a plain loop."""
    import httpx

    specs = build_specs(n)
    tally: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=30.0) as client:
        started, cpu = time.perf_counter(), time.process_time()
        created = sum(_script_create(client, s.params, tally) for s in specs)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "created": created,
        "wall": wall,
        "cpu": cpu,
        "client_calls": tally["calls"],
        "client_throttled": tally["throttled"],
    }


def run_threads(url: str, n: int) -> dict[str, Any]:
    """THREADS worker threads sharing one httpx.Client, no client-side rate limit."""
    import httpx

    specs = build_specs(n)
    tally: Counter[str] = Counter()
    lock = threading.Lock()

    def create(spec: Any) -> bool:
        mine: Counter[str] = Counter()
        ok = _script_create(client, spec.params, mine)
        with lock:
            tally.update(mine)
        return ok

    limits = httpx.Limits(max_connections=THREADS, max_keepalive_connections=THREADS)
    with httpx.Client(base_url=url, timeout=30.0, limits=limits) as client:
        started, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(THREADS) as pool:
            created = sum(pool.map(create, specs))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "created": created,
        "wall": wall,
        "cpu": cpu,
        "client_calls": tally["calls"],
        "client_throttled": tally["throttled"],
    }


def run_engine(url: str, n: int, rate: float, burst: int, concurrency: int) -> dict[str, Any]:
    """Provisioner.preflight + provision over NcpClient and AdaptiveRateLimiter; no Prefect."""
    from fleet.client import NcpClient
    from fleet.config import Credentials
    from fleet.ledger import Ledger
    from fleet.provisioner import Provisioner
    from fleet.ratelimit import AdaptiveRateLimiter

    specs = build_specs(n)
    access, secret = _keys()

    async def go(ledger: Any) -> dict[str, Any]:
        limiter = AdaptiveRateLimiter(rate, burst, max_in_flight=concurrency)
        # The same pool size as the flow's runtime gives its client (max_connections=concurrency).
        client = NcpClient(
            Credentials(access, secret, "bench"), url, limiter=limiter, max_connections=concurrency
        )
        async with client:
            provisioner = Provisioner(client, ledger, "bench")
            started, cpu = time.perf_counter(), time.process_time()
            pre = await provisioner.preflight(specs)
            send_started = time.perf_counter()
            records = await provisioner.provision(pre.to_create)
            end = time.perf_counter()
            cpu = time.process_time() - cpu
        created = sum(1 for r in records if r.state == "created")
        ls = limiter.stats
        return {
            "created": created,
            "wall": end - started,
            "provision_wall": end - send_started,
            "cpu": cpu,
            "client_calls": sum(client.stats.calls.values()),
            "client_throttled": client.stats.throttled,
            "retries": client.stats.retries,
            "rate_cuts": ls.decreases,
            "final_rate": round(limiter.rate, 1),
        }

    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        ledger = Ledger(Path(tmp) / "ledger.db")
        try:
            return asyncio.run(go(ledger))
        finally:
            ledger.close()


def run_flow(url: str, inventory: str, rate: float, burst: int, concurrency: int) -> dict[str, Any]:
    """Run the provision_fleet Prefect flow on the inventory; only the flow call is timed."""
    # Prefect reads these when it is imported; PREFECT_HOME and PREFECT_API_URL come from the
    # parent (a temp dir, and the Prefect server it started).
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    imported = time.perf_counter()
    from flows.provision import provision_fleet

    imported = time.perf_counter() - imported
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        state = asyncio.run(
            provision_fleet(
                inventories=[inventory],
                rollout="bench",
                endpoint=url,
                rate=rate,
                burst=burst,
                concurrency=concurrency,
                ledger=str(Path(tmp) / "ledger.db"),
                return_state=True,
            )
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        summary: Any = state.result(raise_on_failure=False)
    if not isinstance(summary, dict):
        summary = {"error": str(summary)}
    return {
        "created": int(summary.get("created", 0)),
        "wall": wall,
        "cpu": cpu,
        "state": state.type.value,
        "import_seconds": imported,
        "provision_wall": summary.get("provisioning seconds"),
        "client_calls": summary.get("API calls"),
        "client_throttled": summary.get("throttled responses"),
    }


def peak_rss_mb() -> float:
    """Return this process's RSS high-water mark in MB.

    VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its parent's RSS at fork time
    (exec keeps the old address space's high-water mark), which would floor every child at the
    parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    """Run one contender in this fresh process; print its figures as one JSON line."""
    rss_before = peak_rss_mb()
    if args.contender == "sequential":
        figures = run_sequential(args.url, args.servers)
    elif args.contender == "threads":
        figures = run_threads(args.url, args.servers)
    elif args.contender == "engine":
        figures = run_engine(args.url, args.servers, args.rate, args.client_burst, args.concurrency)
    else:
        figures = run_flow(args.url, args.inventory, args.rate, args.client_burst, args.concurrency)
    figures["rss_start_mb"] = rss_before
    figures["peak_rss_mb"] = peak_rss_mb()
    print("BENCH-RESULT " + json.dumps(figures), flush=True)


# --- the parent: simulator, Prefect server, checks, report --------------------------------------


@dataclass
class Outcome:
    """One contender's figures, from its child and from the simulator."""

    label: str
    n: int  # servers it was asked to create
    rate: float  # gateway limit during its run
    figures: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0
    missing: int = 0
    extra: int = 0
    error: str | None = None
    extrapolated_to: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the child reported figures."""
        return self.error is None

    @property
    def per_second(self) -> float:
        """Servers created per wall second."""
        return self.figures["created"] / self.figures["wall"] if self.ok else 0.0

    @property
    def calls(self) -> int:
        """API calls the simulator received (429s included)."""
        return int(self.counters.get("requests", 0))

    @property
    def throttled(self) -> int:
        """429 answers the simulator gave."""
        return int(self.counters.get("by_status", {}).get("429", 0))

    @property
    def wall(self) -> float:
        """Wall seconds, extrapolated to the full size for a capped run."""
        if not self.ok:
            return float("nan")
        if self.extrapolated_to:
            return self.extrapolated_to / self.per_second
        return float(self.figures["wall"])


def run_child(argv: list[str], env: dict[str, str], timeout: float) -> tuple[dict[str, Any], str]:
    """Run this file as a contender child; return its figures and its stderr's tail."""
    try:
        done = subprocess.run(
            [sys.executable, __file__, *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {}, f"timed out after {timeout:.0f} s"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT ")), ""
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
    return {}, f"exit {done.returncode}: {tail}"


def contend(
    sim: Any,
    label: str,
    kind: str,
    n: int,
    expected: Sequence[str],
    *,
    env: dict[str, str],
    rate: float,
    burst: int,
    concurrency: int,
    inventory: Path | None = None,
    extrapolate_to: int | None = None,
) -> Outcome:
    """Reset the simulator, run one contender in a child, then check the simulator's servers."""
    sim.reset()
    argv = [
        "--contender",
        kind,
        "--url",
        sim.url,
        "--servers",
        str(n),
        "--rate",
        str(rate),
        "--client-burst",
        str(burst),
        "--concurrency",
        str(concurrency),
    ]
    if inventory is not None:
        argv += ["--inventory", str(inventory)]
    print(f"  {label}: {n} servers ...", end="", flush=True)
    timeout = 60 + 10 * n / rate + (n * 0.2 if kind == "sequential" else 0)
    figures, error = run_child(argv, env, timeout)
    state = sim.state()
    outcome = Outcome(
        label,
        n,
        rate,
        figures,
        state["counters"],
        error=error or None,
        extrapolated_to=extrapolate_to,
    )
    seen = Counter(s["serverName"] for s in state["servers"])
    outcome.duplicates = sum(c - 1 for c in seen.values() if c > 1)
    outcome.missing = len(set(expected) - seen.keys())
    outcome.extra = len(seen.keys() - set(expected))
    if outcome.ok:
        print(
            f" {figures['wall']:.1f} s, {outcome.per_second:.1f} servers/s,"
            f" {outcome.throttled} throttled; duplicates: {outcome.duplicates},"
            f" missing: {outcome.missing}" + (f", extra: {outcome.extra}" if outcome.extra else "")
        )
    else:
        print(f" FAILED ({outcome.error})")
    return outcome


def print_detail(o: Outcome) -> None:
    """Print one contender's block of figures."""
    f = o.figures
    print(f"{o.label}:")
    if not o.ok:
        print(f"  FAILED: {o.error}")
        return
    print(
        f"  servers created: {f['created']} of {o.n}; duplicates: {o.duplicates},"
        f" missing: {o.missing}" + (f", unexpected: {o.extra}" if o.extra else "")
    )
    wall = f"  wall: {f['wall']:.2f} s"
    if o.extrapolated_to:
        wall += f" (first {o.n} only; extrapolated to {o.extrapolated_to}: {o.wall:.0f} s)"
    if f.get("provision_wall") is not None:
        wall += f"; of which creating: {f['provision_wall']:.2f} s"
    print(wall)
    print(f"  servers/second: {o.per_second:.1f} = {o.per_second / o.rate:.3f} x R (R={o.rate:g})")
    print(
        f"  API calls: {o.calls}, throttled (429): {o.throttled}"
        f" (client saw {f.get('client_throttled')})"
        + (f", retries: {f['retries']}, rate cuts: {f['rate_cuts']}" if "rate_cuts" in f else "")
    )
    per_call = 1000 * f["cpu"] / max(o.calls, 1)
    print(f"  client CPU: {f['cpu']:.2f} s = {per_call:.2f} ms per API call")
    print(
        f"  peak RSS: {f['peak_rss_mb']:.0f} MB (at start of child: {f['rss_start_mb']:.0f} MB)"
        + (
            f"; prefect import {f['import_seconds']:.1f} s (not timed)"
            if "import_seconds" in f
            else ""
        )
    )


def table(outcomes: Sequence[Outcome]) -> None:
    """Print the summary table."""
    head = (
        f"{'contender':<24}{'servers':>8}{'wall s':>9}{'srv/s':>8}{'xR':>7}{'429s':>7}"
        f"{'calls':>7}{'CPU ms/call':>12}{'RSS MB':>8}{'dup/miss':>10}"
    )
    print(head)
    print("-" * len(head))
    for o in outcomes:
        if not o.ok:
            print(f"{o.label:<24}{o.n:>8}  FAILED")
            continue
        f = o.figures
        wall = f"{o.wall:.1f}" + ("*" if o.extrapolated_to else "")
        servers = o.extrapolated_to or f["created"]
        print(
            f"{o.label:<24}{servers:>8}{wall:>9}{o.per_second:>8.1f}{o.per_second / o.rate:>7.3f}"
            f"{o.throttled:>7}{o.calls:>7}{1000 * f['cpu'] / max(o.calls, 1):>12.2f}"
            f"{f['peak_rss_mb']:>8.0f}{f'{o.duplicates}/{o.missing}':>10}"
        )
    if any(o.extrapolated_to for o in outcomes):
        print("* extrapolated from the capped run's rate")


def verdict(met: bool) -> str:
    """Say whether a target is met, loudly when not."""
    return "met" if met else "MISSED"


def main() -> None:
    """Run every contender against one simulator and print the figures and the targets."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", type=int, default=2_000, help="N (default 2,000)")
    parser.add_argument("--rate", type=float, default=RATE, help="gateway limit R, calls/s")
    parser.add_argument("--gateway-burst", type=int, default=GATEWAY_BURST)
    parser.add_argument("--latency", type=float, default=LATENCY)
    parser.add_argument("--jitter", type=float, default=JITTER)
    parser.add_argument("--client-burst", type=int, default=CLIENT_BURST)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--sequential-cap", type=int, default=SEQUENTIAL_CAP)
    parser.add_argument("--only", help="comma-separated contenders: sequential,threads,engine,flow")
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--memory", action="store_true", help="only the memory runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--memory-sizes", default=None, help="two sizes, e.g. 2000,10000")
    # Child mode.
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--inventory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        child(args)
        return

    from fleet.inventory import load_inventories
    from fleet.simulator import SimulatorConfig, SimulatorProcess

    if args.quick:
        args.servers = min(args.servers, 500)
        args.sequential_cap = min(args.sequential_cap, 100)
    sizes = (
        tuple(int(s) for s in args.memory_sizes.split(","))
        if args.memory_sizes
        else ((500, 2_500) if args.quick else MEMORY_SIZES)
    )
    only = set(args.only.split(",")) if args.only else {"sequential", "threads", "engine", "flow"}
    do_throughput = not args.memory
    do_memory = (args.memory or not args.no_memory) and (args.memory or not args.only)
    n, rate = args.servers, args.rate
    cap = min(args.sequential_cap, n)

    config = SimulatorConfig(
        access_key="bench-" + secrets.token_hex(6),
        secret_key=secrets.token_urlsafe(24),
        rate=rate,
        burst=args.gateway_burst,
        latency=args.latency,
        latency_jitter=args.jitter,
        create_seconds=0.2,
        setup_seconds=0.2,
        seed=7,
    )
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(
        f"simulator (own process): gateway R={rate:g} calls/s, burst {args.gateway_burst},"
        f" latency {args.latency:g} s + up to {args.jitter:g} s; fast lifecycle (0.2 + 0.2 s)"
    )
    print(
        f"N={n} servers; engine/flow limiter: rate R, burst {args.client_burst},"
        f" max_in_flight {args.concurrency}; sequential capped at {cap};"
        f" threads: {THREADS}, {THROTTLE_SLEEP:g} s sleep on 429"
    )
    total_started = time.perf_counter()
    outcomes: list[Outcome] = []
    memory: list[Outcome] = []
    startup = float("nan")
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        inventory = write_inventory(tmp / "bench.csv", n)
        loaded = load_inventories([str(inventory)])
        same = [(s.name, s.params) for s in loaded] == [(s.name, s.params) for s in build_specs(n)]
        print(
            f"inventory {inventory.name}: {len(loaded)} servers in rows of {GROUP};"
            f" the bench's own specs match its expansion: {'yes' if same else 'NO'}"
        )
        env = {
            **os.environ,
            "NCLOUD_ACCESS_KEY": config.access_key,
            "NCLOUD_SECRET_KEY": config.secret_key,
            "PREFECT_HOME": str(tmp / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        env.pop("NCLOUD_API_GW", None)
        (tmp / "prefect").mkdir()
        common = {"env": env, "burst": args.client_burst, "concurrency": args.concurrency}
        with SimulatorProcess(config) as sim:
            print(f"simulator at {sim.url}\n")
            if do_throughput:
                print("throughput runs:")
                everything = names(n)
                if "sequential" in only:
                    outcomes.append(
                        contend(
                            sim,
                            "1 sequential",
                            "sequential",
                            cap,
                            everything[:cap],
                            rate=rate,
                            extrapolate_to=n,
                            **common,
                        )
                    )
                if "threads" in only:
                    outcomes.append(
                        contend(
                            sim,
                            f"2 threads ({THREADS}, naive)",
                            "threads",
                            n,
                            everything,
                            rate=rate,
                            **common,
                        )
                    )
                if "engine" in only:
                    outcomes.append(
                        contend(sim, "3 fleet engine", "engine", n, everything, rate=rate, **common)
                    )
            need_prefect = (do_throughput and "flow" in only) or do_memory
            if need_prefect:
                with prefect_server(tmp / "prefect") as (api, startup):
                    print(
                        f"  prefect server start (SQLite in a temp PREFECT_HOME):"
                        f" healthy after {startup:.1f} s (not part of any figure)"
                    )
                    env["PREFECT_API_URL"] = api
                    if do_throughput and "flow" in only:
                        outcomes.append(
                            contend(
                                sim,
                                "4 fleet via Prefect flow",
                                "flow",
                                n,
                                names(n),
                                rate=rate,
                                inventory=inventory,
                                **common,
                            )
                        )
                    if do_memory:
                        sim.configure(
                            rate=MEMORY_RATE,
                            burst=MEMORY_BURST,
                            latency=MEMORY_LATENCY,
                            latency_jitter=MEMORY_JITTER,
                        )
                        print(
                            f"\nmemory runs (gateway R={MEMORY_RATE:g}, burst {MEMORY_BURST},"
                            f" latency {MEMORY_LATENCY:g} + up to {MEMORY_JITTER:g} s;"
                            f" limiter rate {MEMORY_RATE:g}, burst {MEMORY_BURST},"
                            f" max_in_flight {args.concurrency}):"
                        )
                        for kind in ("engine", "flow"):
                            for size in sizes:
                                inv = write_inventory(tmp / f"memory-{size}.csv", size)
                                memory.append(
                                    contend(
                                        sim,
                                        f"{kind} at {size}",
                                        kind,
                                        size,
                                        names(size),
                                        env=env,
                                        rate=MEMORY_RATE,
                                        burst=MEMORY_BURST,
                                        concurrency=args.concurrency,
                                        inventory=inv,
                                    )
                                )
    total = time.perf_counter() - total_started

    print()
    for o in outcomes + memory:
        print_detail(o)
    print("\nsummary (R = gateway limit during the run; RSS = the child's peak):")
    table(outcomes + memory)
    print(f"\nPrefect server start-up (prefect server start, temp SQLite): {startup:.1f} s")

    print("\ntargets:")
    note = "" if n >= 2_000 else f" (run at N={n}; the target is stated at 2,000)"
    engine = next((o for o in outcomes if o.label.startswith("3")), None)
    flow = next((o for o in outcomes if o.label.startswith("4")), None)
    if engine is not None and engine.ok:
        ratio = engine.per_second / rate
        print(
            f"  engine >= {TARGET_RATIO} x R: {ratio:.3f} x R -> {verdict(ratio >= TARGET_RATIO)}"
            + note
        )
    if engine is not None and flow is not None and engine.ok and flow.ok:
        slower = flow.figures["wall"] / engine.figures["wall"] - 1
        print(
            f"  flow at most {TARGET_FLOW_SLOWDOWN:.0%} slower than the engine:"
            f" {flow.figures['wall']:.2f} s vs {engine.figures['wall']:.2f} s ="
            f" {slower:+.1%} -> {verdict(slower <= TARGET_FLOW_SLOWDOWN)}" + note
        )
    slopes = {}
    for kind in ("engine", "flow"):
        pair = [o for o in memory if o.label.startswith(kind)]
        if len(pair) == 2 and all(o.ok for o in pair):
            small, large = pair
            slope = (
                (large.figures["peak_rss_mb"] - small.figures["peak_rss_mb"])
                * 1024
                / (large.n - small.n)
            )
            slopes[kind] = (small, large, slope)
    if "flow" in slopes:
        small, large, slope = slopes["flow"]
        print(
            f"  flow memory flat (< {TARGET_KB_PER_SERVER:g} KB per extra server): peak RSS"
            f" {small.figures['peak_rss_mb']:.0f} MB at {small.n},"
            f" {large.figures['peak_rss_mb']:.0f} MB at {large.n} ->"
            f" {slope:.1f} KB/server -> {verdict(slope < TARGET_KB_PER_SERVER)}"
        )
    if "engine" in slopes:
        small, large, slope = slopes["engine"]
        print(
            f"  (for comparison, the engine alone: {small.figures['peak_rss_mb']:.0f} MB ->"
            f" {large.figures['peak_rss_mb']:.0f} MB = {slope:.1f} KB/server; not a target)"
        )
    for o in outcomes + memory:
        if o.ok and (o.duplicates or o.missing or o.extra):
            print(
                f"  {o.label}: duplicates {o.duplicates}, missing {o.missing},"
                f" unexpected {o.extra} -> MISSED (every name exactly once)"
            )
    print(f"\ntotal bench time: {total:.0f} s")


if __name__ == "__main__":
    main()
