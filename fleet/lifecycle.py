"""After the creates: wait until servers run, and take a rollout back down.

Both are loops over observed state, not over remembered intentions: each round reads the status of
every server still pending (a batch of instance numbers per call) and does what that status calls
for. So a round that fails, or a process that dies, loses nothing: the next round, or the next run,
reads the state again and carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .client import BATCH_SIZE, NcpClient, ServerInstance
from .errors import NcpError, PermanentError
from .ledger import Ledger, Record, State

__all__ = [
    "FAILURE_STATUSES",
    "TeardownReport",
    "TeardownTarget",
    "WaitReport",
    "teardown",
    "teardown_targets",
    "wait_running",
]

log = logging.getLogger(__name__)

FAILURE_STATUSES = frozenset({"FSTOP", "SD_FL", "ST_FL", "RS_FL", "TERMT"})
# Stopped, or stuck in a failure: what terminateServerInstances may be asked to remove.
TERMINABLE = frozenset({"NSTOP"}) | (FAILURE_STATUSES - {"TERMT"})

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Hook = Callable[[int, int], Awaitable[None] | None]


@dataclass(slots=True)
class WaitReport:
    """How waiting for RUN ended."""

    running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> status or reason
    timed_out: dict[str, str] = field(default_factory=dict)  # name -> last status seen


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


async def _notify(hook: Hook | None, done: int, total: int) -> None:
    if hook is not None:
        result = hook(done, total)
        if result is not None:
            await result


async def _statuses(client: NcpClient, numbers: Sequence[str]) -> dict[str, ServerInstance] | None:
    """Read many servers' status; None when the read failed even after the client's retries."""
    try:
        return {s.instance_no: s for s in await client.get_servers(numbers)}
    except NcpError as exc:
        log.warning("status poll failed, will poll again: %s", exc)
        return None


async def wait_running(
    client: NcpClient,
    ledger: Ledger,
    rollout: str,
    *,
    time_limit: float = 1800.0,
    interval: float = 10.0,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
) -> WaitReport:
    """Poll the rollout's created servers until each is RUN, has failed, or the timeout passes."""
    report = WaitReport()
    records = [r for r in ledger.records(rollout) if r.state == State.CREATED and r.instance_no]
    pending: dict[str, Record] = {}
    for r in records:
        if r.server_status == "RUN" and r.run_seconds is not None:
            report.running.append(r.name)
        else:
            pending[r.instance_no or ""] = r
    total = len(records)
    deadline = clock() + time_limit
    last_seen: dict[str, str] = {}
    while pending:
        seen = await _statuses(client, list(pending))
        if seen is not None:
            updates: list[tuple[str, str, float | None]] = []
            for number, rec in list(pending.items()):
                server = seen.get(number)
                if server is None:
                    status, why = "GONE", "server no longer exists"
                else:
                    status, why = server.status, f"server ended in status {server.status}"
                last_seen[number] = status
                if status == "RUN" and (server is None or server.operation == "NULL"):
                    created = _epoch(rec.created_at)
                    secs = None if created is None else max(0.0, wall_clock() - created)
                    updates.append((rec.name, status, secs))
                    report.running.append(rec.name)
                    del pending[number]
                elif status in FAILURE_STATUSES or status == "GONE":
                    updates.append((rec.name, status, None))
                    ledger.note_error(rollout, rec.name, "status", why, code=status)
                    report.failed[rec.name] = status
                    del pending[number]
                elif status != rec.server_status:
                    updates.append((rec.name, status, None))
            ledger.set_status(rollout, updates)
            await _notify(on_progress, len(report.running), total)
        if not pending:
            break
        if clock() >= deadline:
            for number, rec in pending.items():
                status = last_seen.get(number, rec.server_status or "unknown")
                ledger.note_error(
                    rollout,
                    rec.name,
                    "timeout",
                    f"not RUN after {time_limit:.0f} s (last status {status})",
                    code=status,
                )
                report.timed_out[rec.name] = status
            break
        await sleep(interval)
    return report


@dataclass(frozen=True, slots=True)
class TeardownTarget:
    """A server to take down: the rollout's record, and whether the ledger knew its number."""

    name: str
    instance_no: str
    recorded: bool


@dataclass(slots=True)
class TeardownReport:
    """How a teardown ended."""

    terminated: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)  # left alone: termination protection
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    timed_out: dict[str, str] = field(default_factory=dict)  # name -> last status


async def teardown_targets(client: NcpClient, ledger: Ledger, rollout: str) -> list[TeardownTarget]:
    """Return what a teardown takes down: recorded servers, and lost creates found by name."""
    records = ledger.records(rollout)
    targets = [
        TeardownTarget(r.name, r.instance_no, True)
        for r in records
        if r.instance_no and r.teardown != "terminated"
    ]
    # A create whose answer was lost is a server carrying the name of a record that was sent
    # (attempts > 0) but has no number. A name never sent cannot be ours: a server carrying it
    # belongs to someone else and is left alone.
    unrecorded = {r.name: r for r in records if not r.instance_no and r.attempts > 0}
    for vpc in sorted({r.vpc_no for r in unrecorded.values()}):
        for server in await client.list_servers(vpc_no=vpc):
            if server.name in unrecorded:
                targets.append(TeardownTarget(server.name, server.instance_no, False))
    return targets


async def teardown(
    client: NcpClient,
    ledger: Ledger,
    rollout: str,
    targets: Sequence[TeardownTarget],
    *,
    lift_protection: bool = False,
    time_limit: float = 1800.0,
    interval: float = 10.0,
    max_errors: int = 5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
) -> TeardownReport:
    """Stop, then terminate, each target; wait until each is gone. Safe to rerun."""
    report = TeardownReport()
    for t in targets:
        if not t.recorded:
            # Write down the lost create before touching it, so the ledger knows the number.
            ledger.mark_created(rollout, t.name, t.instance_no, request_id=None)
    pending = {t.instance_no: t for t in targets}
    names = {t.instance_no: t.name for t in targets}
    errors: dict[str, int] = {}
    total = len(targets)
    deadline = clock() + time_limit
    last_seen: dict[str, str] = {}

    def give_up(number: str, why: str) -> None:
        report.failed[names[number]] = why
        ledger.set_teardown(rollout, [names[number]], "failed", message=why)
        del pending[number]

    while pending:
        seen = await _statuses(client, list(pending))
        if seen is not None:
            to_stop: list[str] = []
            to_terminate: list[str] = []
            for number in list(pending):
                server = seen.get(number)
                if server is None:
                    report.terminated.append(names[number])
                    ledger.set_teardown(rollout, [names[number]], "terminated")
                    del pending[number]
                    continue
                last_seen[number] = f"{server.status}/{server.operation}"
                if server.operation != "NULL":
                    continue  # an operation is under way: wait for it to finish
                if server.protected:
                    if not lift_protection:
                        report.protected.append(names[number])
                        ledger.set_teardown(rollout, [names[number]], "protected")
                        del pending[number]
                        continue
                    try:
                        await client.set_protection(number, False)
                    except NcpError as exc:
                        errors[number] = errors.get(number, 0) + 1
                        if isinstance(exc, PermanentError) or errors[number] >= max_errors:
                            give_up(number, f"lifting protection failed: {exc}")
                        continue
                if server.status == "RUN":
                    to_stop.append(number)
                elif server.status in TERMINABLE:
                    to_terminate.append(number)
            for action, numbers, mark in (
                (client.stop_servers, to_stop, "stopping"),
                (client.terminate_servers, to_terminate, "terminating"),
            ):
                for i in range(0, len(numbers), BATCH_SIZE):
                    batch = numbers[i : i + BATCH_SIZE]
                    try:
                        await action(batch)
                        ledger.set_teardown(rollout, [names[n] for n in batch], mark)
                    except NcpError as exc:
                        # Whatever happened, the next round reads the status again and acts
                        # on it; only repeated refusals end the attempt for these servers.
                        log.warning("%s of %d servers failed: %s", mark, len(batch), exc)
                        for n in batch:
                            errors[n] = errors.get(n, 0) + 1
                            if n in pending and errors[n] >= max_errors:
                                give_up(n, f"{mark} refused: {exc}")
            done = len(report.terminated) + len(report.protected) + len(report.failed)
            await _notify(on_progress, done, total)
        if not pending:
            break
        if clock() >= deadline:
            for number in list(pending):
                status = last_seen.get(number, "unknown")
                report.timed_out[names[number]] = status
                ledger.set_teardown(
                    rollout, [names[number]], "failed", message=f"not gone after {time_limit:.0f} s"
                )
            break
        await sleep(interval)
    return report
