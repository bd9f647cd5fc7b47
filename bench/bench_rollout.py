"""Benchmark: time to a running fleet, `fleet provision` timed from outside, beside a baseline.

Each case runs the `fleet provision` command line (``python -m flows``) as a child process, the way
a user does, against the simulator in its own process (keep-alive, 5-20 ms an answer, a
token-bucket gateway whose burst is ``--gateway-burst``, 5 by default) and a Prefect server the
bench starts. The child's wall time is taken from outside, its CPU time and peak RSS from the
kernel (``wait4``); the simulator says how many calls it throttled, and when it made each
server. With ``--baseline-rev REV``, each case also runs REV's command line (a temporary git
worktree, this python) in the same run, turn about. Cases (issue 28):

- ``200``, ``500``: 20,000 servers, told the gateway's rate R = 200/s and 500/s;
- ``postgres``: the same at 200/s on a durable PostgreSQL ledger (tests/support/pgserver.py);
- ``auto``: 1,000 servers at R = 100/s, not told, nothing remembered: when R is reached;
- ``staged``: the same, after a staged rollout (30 servers, canary 2, waves 50%,100%, waiting for
  RUN between them) on the same ledger left what it measured, or nothing: >= 0.9 R while creating;
- ``wait``: `--wait`, 1,000 servers at 100/s booting in 10 s: done within 1.1 (N/R + boot) + 5 s;
- ``startup``: `--wait`, 10 servers booting in 1 s, no Prefect API configured (this checkout's
  one local server, found running from a first command; the baseline's temporary one): first
  create within 5 s of the command, done within 8 s;
- ``100k`` (only when named): 100,000 servers at 200/s: >= 0.9 R, peak RSS growth over the
  20,000-server run's <= 2 KB a server, artifacts small.

A measurement, not a test: it always exits 0, and says MISSED where a target is missed.

    .venv/bin/python bench/bench_rollout.py --baseline-rev b3f060b           # about 10 minutes
    .venv/bin/python bench/bench_rollout.py --only startup,wait --runs 3
    .venv/bin/python bench/bench_rollout.py --only 200,100k                   # about 13 minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit import (
    IMAGE,
    PREFIX,
    ROOT,
    SPEC,
    SUBNET,
    VPC,
    names,
    resolves_to,
    verdict,
    worktree,
    write_inventory,
)
from prefect_server import prefect_server  # bench/prefect_server.py

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LATENCY, JITTER = 0.005, 0.015  # an answer takes 5-20 ms
DEFAULT_CASES = ("200", "500", "postgres", "auto", "staged", "wait", "startup")
CONCURRENCY = ""  # --concurrency for every command, when given


@dataclass(frozen=True)
class Case:
    """One command line to time: its size, the gateway, what it is told, how long servers boot."""

    key: str
    servers: int
    rate: float  # the gateway's R
    told: float | None = None  # --rate (None: the default, auto)
    boot: float = 0.2  # the simulator's INIT -> RUN, seconds (create_seconds + setup_seconds)
    wait: bool = False
    postgres: bool = False
    startup: bool = False  # no Prefect API configured
    after_staged: bool = False  # a staged rollout on the same ledger first (not timed)


CASES = {
    case.key: case
    for case in (
        Case("200", 20_000, 200.0, told=200.0),
        Case("500", 20_000, 500.0, told=500.0),
        Case("postgres", 20_000, 200.0, told=200.0, postgres=True),
        Case("auto", 1_000, 100.0),
        Case("staged", 1_000, 100.0, boot=5.0, after_staged=True),
        Case("wait", 1_000, 100.0, boot=10.0, wait=True),
        Case("startup", 10, 100.0, boot=1.0, wait=True, startup=True),
        Case("100k", 100_000, 200.0, told=200.0),
    )
}


@dataclass
class Turn:
    """One command's run, as seen from outside and by the simulator."""

    case: Case
    who: str  # "this" or the baseline's revision
    wall: float = 0.0
    cpu: float = 0.0
    peak_mb: float = 0.0
    code: int = 0
    calls: int = 0  # createServerInstances calls the simulator received
    throttled: int = 0
    created: list[float] = field(default_factory=list)  # when each server was made (epoch)
    started: float = 0.0  # epoch, just before the command started
    duplicates: int = 0
    missing: int = 0
    largest_artifact: int = 0  # bytes
    load: float = 0.0  # the 1-minute load average as it began
    error: str = ""

    @property
    def x_r(self) -> float:
        """Servers per wall second of the whole command, as a share of R."""
        return self.case.servers / self.wall / self.case.rate if self.wall else 0.0

    @property
    def x_r_creating(self) -> float:
        """Servers per second from the first create to the last, as a share of R."""
        if len(self.created) < 2:
            return 0.0
        span = max(self.created) - min(self.created) + 1 / self.case.rate
        return len(self.created) / span / self.case.rate

    @property
    def first_create(self) -> float:
        """Seconds from the command to its first create."""
        return min(self.created) - self.started if self.created else float("nan")

    @property
    def reached_r(self) -> float:
        """Seconds from the first create to the first quarter second at 0.95 R or more."""
        times = sorted(self.created)
        need, j = 0.95 * self.case.rate * 0.25, 0
        for i, t in enumerate(times):
            while times[j] < t - 0.25:
                j += 1
            if i - j + 1 >= need:
                return t - times[0]
        return float("nan")

    @property
    def after_last_run(self) -> float:
        """Seconds from the last server's RUN (its create plus the boot) to the command's end."""
        if not self.created:
            return float("nan")
        return self.started + self.wall - (max(self.created) + self.case.boot)


def _command(case: Case, inventory: Path, sim_url: str, ledger: str, rollout: str) -> list[str]:
    argv = ["-m", "flows", "provision", str(inventory), "--endpoint", sim_url]
    argv += ["--rollout", rollout, "--ledger", ledger]
    if CONCURRENCY:
        argv += ["--concurrency", CONCURRENCY]
    if case.told is not None:
        argv += ["--rate", f"{case.told:g}"]
    if case.wait:
        argv += ["--wait"]
    return argv


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[float, ...]:
    """Run one child; return (wall, cpu, peak MB, exit code, started epoch)."""
    started, t0 = time.time(), time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(cwd / "stderr.log").open("a"),
    )
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            pid, status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), started


@dataclass
class Arena:
    """The simulator, the bench's Prefect server, the trees to run, and a scratch directory."""

    sim: Any
    api: str
    tmp: Path
    burst: int
    trees: dict[str, Path]  # "this" and the baseline's revision, each a checkout
    pg: Any = None
    turns: int = 0

    def env(self, tree: Path, case: Case, home: Path) -> dict[str, str]:
        """Return a child's environment: keys, its Prefect home and API (none when starting up)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FLEET_"))}
        env.update(
            NCLOUD_ACCESS_KEY=self.sim.config.access_key,
            NCLOUD_SECRET_KEY=self.sim.config.secret_key,
            PYTHONPATH=str(tree),
            PREFECT_HOME=str(home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        env.pop("NCLOUD_API_GW", None)
        if not case.startup:
            env["PREFECT_API_URL"] = self.api
        return env

    def staged_first(self, scratch: Path, ledger: str, env: dict[str, str]) -> None:
        """Run a staged rollout of 30 servers on the ledger, as an operator would before a big one.

        It waits for its servers between waves, so its calls come in bursts with idle gaps: the
        rate it leaves in the ledger (or not) is where the next command's discovery starts.
        """
        inventory = scratch / "staged.csv"
        head = "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo"
        inventory.write_text(f"{head}\nstaged,30,{IMAGE},{SPEC},{VPC},{SUBNET}\n")
        argv = ["-m", "flows", "provision", str(inventory), "--endpoint", self.sim.url]
        argv += ["--rollout", "staged", "--ledger", ledger, "--canary", "2"]
        argv += ["--waves", "50%,100%", "--wait", "--burst", "16", "--poll-interval", "1"]
        code = _run(argv, env, scratch, 300)[3]
        if code != 0:
            raise SystemExit(f"the staged rollout before the case failed (exit {code})")

    def turn(self, case: Case, who: str) -> Turn:
        """Run one case with one tree's command line; check every name exists once."""
        self.turns += 1
        tree, scratch = self.trees[who], self.tmp / f"turn-{self.turns}"
        scratch.mkdir()
        inventory = write_inventory(scratch / "bench.csv", case.servers)
        ledger = str(scratch / "ledger.db")
        if case.postgres:
            ledger = self.pg.create_database(f"turn{self.turns}")
        home = self.tmp / f"prefect-{who}" if case.startup else self.tmp / "prefect-bench"
        self.sim.configure(rate=case.rate, burst=self.burst, create_seconds=case.boot / 2)
        self.sim.configure(setup_seconds=case.boot / 2)
        self.sim.reset()
        if case.after_staged:
            self.staged_first(scratch, ledger, self.env(tree, case, home))
        argv = _command(case, inventory, self.sim.url, ledger, "bench")
        turn = Turn(case, who, load=os.getloadavg()[0])
        timeout = 120 + 3 * case.servers / case.rate
        wall, cpu, peak, code, started = _run(argv, self.env(tree, case, home), scratch, timeout)
        turn.wall, turn.cpu, turn.peak_mb, turn.code, turn.started = (
            wall,
            cpu,
            peak,
            int(code),
            started,
        )
        state = self.sim.state()
        counters = state["counters"]
        turn.calls = int(counters["by_action"].get("createServerInstances", 0))
        turn.throttled = int(counters["by_status"].get("429", 0))
        mine = [s for s in state["servers"] if s["serverName"].startswith(PREFIX)]
        turn.created = [float(s["created_at"]) for s in mine]
        seen = Counter(s["serverName"] for s in state["servers"])
        turn.duplicates = sum(c - 1 for c in seen.values() if c > 1)
        turn.missing = len(set(names(case.servers)) - seen.keys())
        if code != 0:
            turn.error = f"exit {code} (see {scratch / 'stderr.log'})"
        if not case.startup:
            turn.largest_artifact = _largest_artifact(self.api)
        print(f"    {who:>9}: {_line(turn)}", flush=True)
        return turn


def _largest_artifact(api: str) -> int:
    """Return the size in bytes (as JSON) of the largest latest artifact on the bench's server."""
    import httpx

    body = {"limit": 50, "sort": "CREATED_DESC"}
    answer = httpx.post(f"{api}/artifacts/latest/filter", json=body, timeout=30)
    if answer.status_code != 200:
        return 0
    return max(
        (len(json.dumps(a.get("data"))) + len(a.get("description") or "") for a in answer.json()),
        default=0,
    )


def _line(t: Turn) -> str:
    share = t.throttled / max(t.calls, 1)
    text = (
        f"{t.wall:6.1f} s, {t.x_r:.3f} R ({t.x_r_creating:.3f} creating), {t.throttled} 429s"
        f" ({share:.2%}), {1000 * t.cpu / t.case.servers:.2f} ms CPU a create,"
        f" {t.peak_mb:.0f} MB, first create {t.first_create:.2f} s"
    )
    if t.case.told is None:
        text += f", R reached {t.reached_r:.2f} s after it"
    if t.case.wait:
        text += f", ended {t.after_last_run:.2f} s after the last RUN"
    text += f"; dup/miss {t.duplicates}/{t.missing}; load {t.load:.1f}"
    return text + (f"; {t.error}" if t.error else "")


def judge(turns: list[Turn], twenty: dict[str, float]) -> list[str]:
    """Return the issue's targets for one case's turns of this checkout, met or missed."""
    case, out = turns[0].case, []

    def spread(values: list[float]) -> str:
        return f"{min(values):.3f}-{max(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

    x_r = [t.x_r for t in turns]
    share = [t.throttled / max(t.calls, 1) for t in turns]
    if case.key in ("200", "500", "postgres"):
        out.append(f">= 0.95 R: {spread(x_r)} -> {verdict(min(x_r) >= 0.95)}")
        out.append(f"<= 2% throttled: {spread(share)} -> {verdict(max(share) <= 0.02)}")
        peaks = [t.peak_mb for t in turns]
        out.append(f"peak RSS <= 300 MB: {spread(peaks)} -> {verdict(max(peaks) <= 300)}")
    if case.key == "staged":
        creating = [t.x_r_creating for t in turns]
        met = verdict(min(creating) >= 0.9)
        out.append(f">= 0.9 R while creating: {spread(creating)} -> {met}")
    if case.key == "auto":
        reached = [t.reached_r for t in turns]
        out.append(f"R within ~1 s: {spread(reached)} s -> {verdict(max(reached) <= 1.2)}")
        out.append(f">= 0.95 R while creating: {spread([t.x_r_creating for t in turns])}")
    if case.wait:
        bound = 1.1 * (case.servers / case.rate + case.boot) + 5
        if case.startup:
            bound = 8.0
            first = [t.first_create for t in turns]
            out.append(f"first create <= 5 s: {spread(first)} s -> {verdict(max(first) <= 5)}")
        walls = [t.wall for t in turns]
        out.append(f"done <= {bound:.1f} s: {spread(walls)} s -> {verdict(max(walls) <= bound)}")
        overshoot = [t.after_last_run for t in turns]
        out.append(f"ended after the last RUN by: {spread(overshoot)} s")
    if case.key == "100k":
        out.append(f">= 0.9 R: {spread(x_r)} -> {verdict(min(x_r) >= 0.9)}")
        if "200" in twenty:
            kb = [(t.peak_mb - twenty["200"]) * 1024 / 80_000 for t in turns]
            out.append(f"<= 2 KB a server over 20,000's: {spread(kb)} -> {verdict(max(kb) <= 2)}")
        big = [t.largest_artifact for t in turns]
        out.append(f"largest artifact: {max(big) / 1024:.1f} KB -> {verdict(max(big) < 100_000)}")
    return out


@contextmanager
def arena(burst: int, baseline: str | None, postgres: bool) -> Iterator[Arena]:
    """Start the simulator, a Prefect server, the baseline's worktree and PostgreSQL if needed."""
    from fleet.simulator import SimulatorConfig, SimulatorProcess

    config = SimulatorConfig(
        access_key="bench-" + secrets.token_hex(6),
        secret_key=secrets.token_urlsafe(24),
        rate=100.0,
        burst=burst,
        latency=LATENCY,
        latency_jitter=JITTER,
        seed=7,
        call_log_size=0,
        max_servers=200_000,
    )
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-rollout-") as name:
        tmp = Path(name)
        sim = stack.enter_context(SimulatorProcess(config))
        api, _ = stack.enter_context(prefect_server(tmp / "prefect-bench"))
        trees = {"this": ROOT}
        if baseline:
            trees[baseline] = stack.enter_context(worktree(baseline))
            env = {**os.environ, "PYTHONPATH": str(trees[baseline])}
            print(f"baseline {baseline}: fleet from {resolves_to(trees[baseline], env)}")
        pg = None
        if postgres:
            from tests.support.pgserver import PostgresServer

            pg = stack.enter_context(PostgresServer(durable=True))
        ring = Arena(sim, api, tmp, burst, trees, pg)
        try:
            yield ring
        finally:
            from flows.cli.localserver import stop

            stop(tmp / "prefect-this")  # the one this checkout's startup turns started


def main() -> None:
    """Run the cases named, each turn about with the baseline; print the targets."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help=f"cases, comma-separated: {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=1, help="turns of each case")
    parser.add_argument("--gateway-burst", type=int, default=5)
    parser.add_argument("--baseline-rev", help="also run this revision's command line")
    parser.add_argument("--quick", action="store_true", help="a tenth of the large sizes")
    parser.add_argument("--concurrency", help="every command's --concurrency (default: its own)")
    args = parser.parse_args()
    global CONCURRENCY
    CONCURRENCY = args.concurrency or ""
    keys = args.only.split(",") if args.only else list(DEFAULT_CASES)
    print(f"gateway burst {args.gateway_burst}, answers {LATENCY:g}-{LATENCY + JITTER:g} s")
    postgres = any(CASES[k].postgres for k in keys)
    twenty: dict[str, float] = {}
    with arena(args.gateway_burst, args.baseline_rev, postgres) as ring:
        for key in keys:
            case = CASES[key]
            print(f"\n{key}: {case.servers:,} servers, R = {case.rate:g}/s", flush=True)
            if args.quick and case.servers > 1_000:
                case = dataclasses.replace(case, servers=case.servers // 10)
            if case.startup:
                print("    first commands (this one starts its local Prefect server):")
                for who in ring.trees:
                    ring.turn(case, who)
                print("    then:")
            mine: list[Turn] = []
            for _ in range(args.runs):
                for who in ring.trees:
                    turn = ring.turn(case, who)
                    if who == "this":
                        mine.append(turn)
            if key == "200":
                twenty["200"] = max(t.peak_mb for t in mine)
            for line in judge(mine, twenty):
                print(f"  target {line}")


if __name__ == "__main__":
    main()
