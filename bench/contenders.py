"""bench_throughput's contenders, one per child process: ``python bench/contenders.py KIND ...``.

- sequential: a plain loop of signed httpx calls, one create at a time (an SDK script);
- threads: 10 threads of signed httpx calls, no client-side limit, 1 s sleep after a 429
  (Terraform's parallelism=10, or a ThreadPoolExecutor script);
- engine: fleet's survey + Provisioner over NcpClient, the limiter the flows build from the
  same options, and a ledger (a SQLite file, or ``--ledger URL``); no Prefect;
- flow: the provision_fleet Prefect flow on an inventory CSV, against the parent's Prefect server.

Each prints its figures as one line, ``BENCH-RESULT {json}``: servers created, wall and CPU
seconds (of the timed part only), what the client saw, the rate found, the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchkit import ROOT, build_specs, peak_rss_mb, rss_mb  # bench/benchkit.py

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREADS = 10
THROTTLE_SLEEP = 1.0  # what a typical script sleeps after a 429
URI = "/vserver/v2/createServerInstances?responseFormatType=json"
OWNER = "bench"


def _keys() -> tuple[str, str]:
    return os.environ["NCLOUD_ACCESS_KEY"], os.environ["NCLOUD_SECRET_KEY"]


def _script_create(client: Any, params: Sequence[tuple[str, str]], tally: Counter[str]) -> bool:
    """Create one server the way a script does: sign, POST, sleep 1 s and resend on a 429."""
    from fleet.ncp.signing import signed_headers

    access, secret = _keys()
    body = urlencode(params)
    while True:
        headers = signed_headers("POST", URI, int(time.time() * 1000), access, secret)
        headers["content-type"] = "application/x-www-form-urlencoded"
        tally["calls"] += 1
        response = client.post(URI, content=body, headers=headers)
        if response.status_code != 429:
            return bool(response.status_code == 200)
        tally["throttled"] += 1
        time.sleep(THROTTLE_SLEEP)


def run_script(args: argparse.Namespace) -> dict[str, Any]:
    """Create the servers as a script does: one at a time, or THREADS threads sharing a client."""
    import httpx

    specs = build_specs(args.servers)
    threads = THREADS if args.kind == "threads" else 1
    tally: Counter[str] = Counter()
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(base_url=args.url, timeout=30.0, limits=limits) as client:

        def create(spec: Any) -> bool:
            mine: Counter[str] = Counter()
            ok = _script_create(client, spec.params, mine)
            with lock:
                tally.update(mine)
            return ok

        started, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            created = sum(pool.map(create, specs))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"created": created, "wall": wall, "cpu": cpu, "client_throttled": tally["throttled"]}


def _options(args: argparse.Namespace, **more: Any) -> Any:
    """Return the run's options: what the parent set, the options' own defaults for the rest."""
    from fleet.options import ProvisionOptions

    names = ("rate", "max_rate", "burst", "concurrency", "canary", "waves", "poll_interval")
    given = {k: getattr(args, k) for k in names}
    if args.wait:
        given["wait"] = True
    return ProvisionOptions(**{k: v for k, v in given.items() if v is not None}, **more)


async def _engine(args: argparse.Namespace, location: str) -> dict[str, Any]:
    """Survey and provision the servers through the engine; time both."""
    from fleet.config import Credentials
    from fleet.create.engine import Provisioner
    from fleet.ledger import AsyncLedger, Ledger
    from fleet.ncp.client import NcpClient
    from fleet.plan.survey import survey
    from flows.runtime import build_limiter

    specs = build_specs(args.servers)
    options = _options(args)
    limiter = build_limiter(options)
    client = NcpClient(
        Credentials(*_keys(), "bench"),
        args.url,
        limiter=limiter,
        max_connections=options.concurrency,
    )
    book = AsyncLedger(Ledger(location))
    book.sync.acquire("bench", OWNER, "bench", ttl=600)
    try:
        async with client:
            engine = Provisioner(client, book, "bench", OWNER, options)
            started, cpu = time.perf_counter(), time.process_time()
            found = await survey(client, book, "bench", specs, owner=OWNER)
            sending = time.perf_counter()
            records = await engine.provision(found.work)
            end, cpu = time.perf_counter(), time.process_time() - cpu
    finally:
        book.close()
        book.sync.close()
    return {
        "created": sum(1 for r in records if r.state.made),
        "wall": end - started,
        "provision_wall": end - sending,
        "cpu": cpu,
        "client_throttled": client.stats.throttled,
        "found_rate": limiter.found_rate,
        "final_rate": limiter.rate,
        "ledger_commits": book.commits,
    }


def run_engine(args: argparse.Namespace) -> dict[str, Any]:
    """Run the engine on the given ledger, or on a fresh SQLite file."""
    if args.ledger:
        return asyncio.run(_engine(args, args.ledger))
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        return asyncio.run(_engine(args, str(Path(tmp) / "ledger.db")))


def run_flow(args: argparse.Namespace) -> dict[str, Any]:
    """Run the provision_fleet flow on the inventory; only the flow call is timed."""
    imported = time.perf_counter()
    from fleet.report.summary import RolloutSummary
    from flows.provision import provision_fleet

    imported = time.perf_counter() - imported
    ledgers = _count_ledgers()
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp:
        # A ledger given is kept, and with it the rate this run remembers, for the next run.
        ledger = args.ledger or str(Path(tmp) / "ledger.db")
        where: dict[str, Any] = {"ledger": ledger}
        if "://" in ledger:  # a URL with a password is never a flow parameter: the environment
            os.environ["FLEET_LEDGER"] = ledger
            where = {"results": str(Path(tmp) / "results.csv")}
        options = _options(args, endpoint=args.url, **where)
        base = rss_mb()  # the process before the run: Python, fleet and Prefect imported
        started, cpu = time.perf_counter(), time.process_time()
        flow_run: Any = provision_fleet(
            inventories=[args.inventory], rollout=args.rollout, options=options, return_state=True
        )
        state = asyncio.run(flow_run)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        summary: Any = state.result(raise_on_failure=False)
        peak = peak_rss_mb()  # before the artifacts are read back, which is the bench's own work
        artifacts = asyncio.run(_artifact_sizes())
    if not isinstance(summary, RolloutSummary):
        return {"created": 0, "wall": wall, "cpu": cpu, "error": str(summary)}
    return {
        "created": summary.counts.made,
        "wall": wall,
        "provision_wall": summary.seconds,
        "cpu": cpu,
        "state": state.type.value,
        "import_seconds": imported,
        "client_throttled": summary.throttled,
        "found_rate": summary.rate_found,
        "final_rate": summary.rate_final,
        "rss_base_mb": base,
        "rss_run_peak_mb": peak,
        "artifact_bytes": artifacts,
        "ledger_commits": sum(book.commits for book in ledgers),
    }


def _count_ledgers() -> list[Any]:
    """Keep every AsyncLedger the flow opens, to count its commits afterwards."""
    from fleet.ledger import AsyncLedger

    opened: list[Any] = []
    init = AsyncLedger.__init__

    def keep(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    AsyncLedger.__init__ = keep  # type: ignore[method-assign]
    return opened


async def _artifact_sizes() -> dict[str, int]:
    """Return the size in bytes (as JSON) of the latest artifact under each key on the server."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        latest = await client.read_latest_artifacts(limit=50)
    return {
        str(a.key): len(json.dumps(a.data, default=str)) + len(a.description or "")
        for a in latest
        if a.key
    }


def main() -> None:
    """Run one contender in this fresh process; print its figures as one JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("kind", choices=["sequential", "threads", "engine", "flow"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--servers", type=int, required=True)
    parser.add_argument("--rate", help="calls/s, or auto (default: the options' default)")
    parser.add_argument("--max-rate", type=float, default=None)
    parser.add_argument("--burst", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--ledger", help="a ledger URL (default: a fresh SQLite file)")
    parser.add_argument("--inventory", help="the inventory CSV (flow)")
    parser.add_argument("--rollout", default="bench", help="the rollout's name (flow)")
    parser.add_argument("--canary", help="a staged rollout's canary (flow)")
    parser.add_argument("--waves", help="a staged rollout's waves (flow)")
    parser.add_argument("--wait", choices=["yes"], help="wait until every server runs (flow)")
    parser.add_argument("--poll-interval", type=float, default=None)
    args = parser.parse_args()
    rss_start = peak_rss_mb()
    runs = {"sequential": run_script, "threads": run_script, "engine": run_engine}
    figures = runs.get(args.kind, run_flow)(args)
    figures.update(rss_start_mb=rss_start, peak_rss_mb=peak_rss_mb())
    print("BENCH-RESULT " + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
