"""What bench_throughput's parent and its contender children share: servers, children, outcomes.

The parent runs each contender as a child process (``contenders.py``, or a previous revision's
own bench file in a temporary git worktree), resets the simulator before it and checks after it
that every planned name exists exactly once; ``Outcome`` holds both sides' figures.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
CONTENDERS = BENCH / "contenders.py"

GROUP = 100  # servers per inventory row (serverCreateCount)
PREFIX = "bench"
VPC, SUBNET, IMAGE, SPEC = "75001", "75101", "25495367", "s2-g3"


def names(n: int) -> list[str]:
    """Return the names an inventory of n servers in rows of GROUP expands to."""
    return [f"{PREFIX}-g{i // GROUP:03d}-{i % GROUP + 1:03d}" for i in range(n)]


def write_inventory(path: Path, n: int) -> Path:
    """Write an inventory CSV of n servers, GROUP per row, named bench-gNNN-001 ..."""
    header = ["serverName", "serverCreateCount", "serverCreateStartNo", "serverImageNo"]
    header += ["serverSpecCode", "vpcNo", "subnetNo"]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row, start in enumerate(range(0, n, GROUP)):
            count = min(GROUP, n - start)
            writer.writerow([f"{PREFIX}-g{row:03d}", count, 1, IMAGE, SPEC, VPC, SUBNET])
    return path


def build_specs(n: int, file: str = "bench.csv") -> list[Any]:
    """Return the ServerSpecs of n servers, as load_inventories expands write_inventory's file."""
    from fleet.planned import PlannedServer

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
        out.append(PlannedServer(name, file, i // GROUP + 2, params))
    return out


def peak_rss_mb() -> float:
    """Return this process's RSS high-water mark in MB (VmHWM: ru_maxrss starts at the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Return this process's resident set size now, in MB (0.0 where /proc is not readable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Outcome:
    """One contender's run: its child's figures and the simulator's."""

    label: str
    n: int  # servers it was asked to create
    gateway: float  # the gateway's limit R during its run
    figures: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0
    missing: int = 0
    extra: int = 0
    error: str | None = None
    extrapolated_to: int | None = None  # a capped run stands for this many servers

    @property
    def ok(self) -> bool:
        """Whether the child reported figures and created every server."""
        return self.error is None and self.figures.get("created") == self.n

    @property
    def per_second(self) -> float:
        """Servers created per wall second."""
        return self.figures["created"] / self.figures["wall"] if self.figures else 0.0

    @property
    def x_r(self) -> float:
        """Servers per second as a share of the gateway's limit."""
        return self.per_second / self.gateway

    @property
    def calls(self) -> int:
        """API calls the simulator received (429s included)."""
        return int(self.counters.get("requests", 0))

    @property
    def throttled(self) -> int:
        """429 answers the simulator gave."""
        return int(self.counters.get("by_status", {}).get("429", 0))

    @property
    def throttled_share(self) -> float:
        """The share of calls answered 429."""
        return self.throttled / max(self.calls, 1)

    @property
    def wall(self) -> float:
        """Wall seconds, extrapolated to the full size for a capped run."""
        if self.extrapolated_to:
            return self.extrapolated_to / self.per_second
        return float(self.figures.get("wall", float("nan")))

    @property
    def cpu_ms_per_create(self) -> float:
        """The child's CPU milliseconds per server created."""
        cpu = float(self.figures.get("cpu", float("nan")))
        return 1000 * cpu / max(int(self.figures.get("created", 0)), 1)

    @property
    def found(self) -> float | None:
        """The call rate the limiter found, if it measured one."""
        found = self.figures.get("found_rate")
        return None if found is None else float(found)


def run_child(
    argv: Sequence[str], env: dict[str, str], timeout: float, cwd: Path = ROOT
) -> tuple[dict[str, Any], str]:
    """Run one child; return the figures it printed (BENCH-RESULT line) and any error."""
    try:
        done = subprocess.run(
            [sys.executable, *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
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


@dataclass
class Arena:
    """The simulator (its own process), the children's environment, and a scratch directory."""

    sim: Any  # fleet.simulator.RunningSimulator
    env: dict[str, str]
    tmp: Path
    gateway_burst: int
    quiet: bool = False

    def contend(
        self,
        label: str,
        argv: list[str],
        n: int,
        gateway: float,
        *,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        extrapolate_to: int | None = None,
    ) -> Outcome:
        """Reset the simulator at this gateway rate, run one child, check every name once."""
        self.sim.configure(rate=gateway, burst=self.gateway_burst)
        self.sim.reset()
        print(f"  {label}: {n} servers at R={gateway:g} ...", end="", flush=True)
        load = os.getloadavg()[0]
        timeout = 90 + 20 * n / min(gateway, 10.0 if extrapolate_to else gateway)
        figures, error = run_child(argv, env or self.env, timeout, cwd)
        state = self.sim.state()
        outcome = Outcome(label, n, gateway, figures, state["counters"], error=error or None)
        outcome.extrapolated_to = extrapolate_to
        seen = Counter(s["serverName"] for s in state["servers"])
        expected = set(names(n))
        outcome.duplicates = sum(c - 1 for c in seen.values() if c > 1)
        outcome.missing = len(expected - seen.keys())
        outcome.extra = len(seen.keys() - expected)
        if outcome.error:
            print(f" FAILED ({outcome.error})")
        else:
            print(
                f" {outcome.figures['wall']:.1f} s, {outcome.per_second:.1f}/s"
                f" ({outcome.x_r:.3f} R), {outcome.throttled} 429s;"
                f" duplicates {outcome.duplicates}, missing {outcome.missing};"
                f" load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
            )
        return outcome


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """Check ``rev`` out in a temporary git worktree (detached); remove it afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-rev-") as tmp:
        path = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(path), rev], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=False)
            subprocess.run([*git, "worktree", "prune"], check=False)


def resolves_to(tree: Path, env: dict[str, str]) -> str:
    """Return where ``import fleet`` resolves for a child run in ``tree`` with ``env``."""
    code = "import fleet, os; print(os.path.dirname(fleet.__file__))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def rev_env(env: dict[str, str], tree: Path) -> dict[str, str]:
    """Return the children's environment for a run of the checkout in ``tree``."""
    return {**env, "PYTHONPATH": str(tree)}


def verdict(met: bool) -> str:
    """Say whether a target is met, loudly when not."""
    return "met" if met else "MISSED"


def environ_for_children(tmp: Path, access: str, secret: str) -> dict[str, str]:
    """Return the environment every child runs in: the simulator's keys, a private Prefect home."""
    env = {
        **os.environ,
        "NCLOUD_ACCESS_KEY": access,
        "NCLOUD_SECRET_KEY": secret,
        "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("NCLOUD_API_GW", None)
    env.pop("FLEET_LEDGER", None)
    (tmp / "prefect").mkdir(exist_ok=True)
    return env
