"""Taking a rollout back down: only what it can prove it made, each stopped, terminated, gone.

What a teardown takes (``teardown_targets``), each by ``ownership.judge``:
- the instances the ledger recorded (duplicates included); adopted ones only when asked
  (``include_adopted``: fleet did not create them);
- lost creates: a server whose create went out but whose answer never came (a row in flight, or
  one that had an ambiguous send), listed under the row's exact name where it was sent, and
  carrying this rollout's create marker (a row last sent before markers: made while its creates
  went out, within the rollout's window).
Everything else found under the rollout's names is listed as left alone, with the reason: a
server of another rollout (its marker), or of nobody we know. A rollback (``only_run``) takes
only what that run created: never an earlier run's server.

What to do with each server is ``decide``: a pure table from what NCP says of it.

What the creates made beside the servers (public IPs, extra disks: ``side``) is found before
anything is stopped, and returned once the servers it was made with are gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import NcpError, PermanentError
from .ledger import Aside, AsyncLedger, Instance, Record, State, TeardownState
from .ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from .ncp.reads import Resource
from .options import TeardownOptions
from .ownership import Claim, Evidence, judge
from .polling import Clock, Hook, Poller, Sleep, notify, read_statuses
from .provisioner import found_from
from .side import SideResource, return_side, side_of
from .states import Operation, ServerStatus
from .survey import DEFAULT_TIMEOUT, DEFAULT_WINDOW, in_send_window, owned_instances

__all__ = [
    "TERMINABLE",
    "Action",
    "LeftAlone",
    "TeardownReport",
    "TeardownScope",
    "TeardownTarget",
    "decide",
    "lost_create",
    "teardown",
    "teardown_targets",
]

log = logging.getLogger(__name__)

# Stopped, or stuck in a failure: what terminateServerInstances may be asked to remove.
TERMINABLE = frozenset(
    {
        ServerStatus.NSTOP,
        ServerStatus.FSTOP,
        ServerStatus.SD_FL,
        ServerStatus.ST_FL,
        ServerStatus.RS_FL,
    }
)


class Action(StrEnum):
    """What a teardown round does with one server."""

    WAIT = "wait"  # an operation is under way, or it is still being made: look again
    STOP = "stop"
    TERMINATE = "terminate"
    LIFT_PROTECTION = "lift-protection"
    LEAVE = "leave"  # termination protection is on and may not be lifted: left alone
    MISSING = "missing"  # not listed this round: not yet taken for gone
    GONE = "gone"  # not listed several rounds in a row: terminated


def decide(server: ServerInstance | None, misses: int, options: TeardownOptions) -> Action:
    """Return what to do with a server, given its status now (None: not listed this round)."""
    if server is None:
        return Action.GONE if misses >= options.gone_after else Action.MISSING
    if server.operation != Operation.NULL:
        return Action.WAIT
    if server.protected:
        return Action.LIFT_PROTECTION if options.lift_protection else Action.LEAVE
    if server.status == ServerStatus.RUN:
        return Action.STOP
    if server.status in TERMINABLE:
        return Action.TERMINATE
    return Action.WAIT


@dataclass(frozen=True, slots=True)
class TeardownTarget:
    """A server to take down, where it lives, and whether the ledger knew its number."""

    name: str
    instance_no: str
    region: str
    recorded: bool


@dataclass(frozen=True, slots=True)
class LeftAlone:
    """A server found under one of the rollout's names that a teardown will not touch, and why."""

    name: str
    instance_no: str
    region: str
    reason: str


@dataclass(frozen=True, slots=True)
class TeardownScope:
    """What a teardown takes down, and what it found but leaves alone."""

    targets: list[TeardownTarget]
    left: list[LeftAlone]


# Why a recorded instance is left alone, beside ``ownership.Claim``'s reasons.
ADOPTED_LEFT = f"{Claim.ADOPTED.value}; pass --include-adopted to take it down too"
OTHER_RUN = "made by another run of this rollout (a rollback takes only what its run created)"


@dataclass(slots=True)
class TeardownReport:
    """How a teardown ended, per server name."""

    terminated: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)  # left alone: termination protection
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    timed_out: dict[str, str] = field(default_factory=dict)  # name -> last status
    # Public IPs and extra disks of the terminated servers: returned, or still billed and why.
    returned: list[SideResource] = field(default_factory=list)
    side_left: dict[SideResource, str] = field(default_factory=dict)
    # Found under the rollout's names, not provably its own (or adopted): never touched.
    left_alone: list[LeftAlone] = field(default_factory=list)


def lost_create(record: Record) -> bool:
    """Whether a row may have made a server the ledger never heard of."""
    return record.instance_no is None and (record.unsettled or record.ambiguous_sends > 0)


async def teardown_targets(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
    include_adopted: bool = False,
    only_run: str | None = None,
) -> TeardownScope:
    """Return what a teardown takes down (recorded instances, lost creates of ours) and leaves.

    The rollout's marker id and window are its ledger's. A row sent before create markers is
    judged by the old rule: a server made within the request timeout and the window of its
    sends. ``only_run`` (a rollback) narrows it all to what that run created.
    """
    book = ledger.sync
    own = await ledger.run(book.ownership, rollout, window=DEFAULT_WINDOW)
    margin, rollout_id = request_timeout + own.window, own.marker
    instances = await ledger.run(book.instances, rollout)
    scope = TeardownScope([], [])
    for i in instances:
        if i.teardown == TeardownState.TERMINATED:
            continue
        reason = _leave_recorded(i.origin, i.run, include_adopted, only_run)
        if reason is None:
            scope.targets.append(TeardownTarget(i.name, i.instance_no, i.region, True))
        else:
            scope.left.append(LeftAlone(i.name, i.instance_no, i.region, reason))
    await _lost_creates(client, ledger, rollout, scope, margin, rollout_id, only_run, instances)
    return scope


def _leave_recorded(
    origin: str, run: str | None, include_adopted: bool, only_run: str | None
) -> str | None:
    """Return why a recorded instance is left alone, or None to take it down."""
    if origin == "adopted":
        return None if include_adopted and only_run is None else ADOPTED_LEFT
    if only_run is not None and run != only_run:
        return OTHER_RUN
    return None


async def _lost_creates(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    scope: TeardownScope,
    margin: float,
    rollout_id: str | None,
    only_run: str | None,
    instances: Sequence[Instance],
) -> None:
    """Add the lost creates found where they were sent: ours to take, the others left alone."""
    lost = [r for r in await ledger.run(ledger.sync.records, rollout) if lost_create(r)]
    if only_run is not None:
        lost = [r for r in lost if r.sent_run == only_run]
    recorded = owned_instances(instances)
    groups: dict[tuple[str, str], dict[str, Record]] = defaultdict(dict)
    for r in lost:
        groups[(r.sent_region, r.sent_vpc)][r.name] = r
    for (region, vpc), rows in sorted(groups.items()):
        for server in await client.list_servers(region=region, vpc_no=vpc):
            rec = rows.get(server.name)
            if rec is None or server.instance_no in recorded.get(server.name, {}):
                continue
            legacy = not rec.marked
            window = legacy and in_send_window(rec, server, margin)
            verdict = judge(server, Evidence(rollout_id, {}, legacy, window))
            theirs = only_run is not None and (
                verdict.marker is None or verdict.marker.run != only_run
            )
            if verdict.ours and not theirs:
                scope.targets.append(TeardownTarget(server.name, server.instance_no, region, False))
            else:
                why = OTHER_RUN if verdict.ours else verdict.claim.value
                scope.left.append(LeftAlone(server.name, server.instance_no, region, why))


@dataclass(slots=True)
class _Round:
    """One teardown's state between rounds."""

    pending: dict[str, TeardownTarget]
    gone: set[str] = field(default_factory=set)  # instance numbers taken for terminated
    misses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)


async def teardown(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    targets: Sequence[TeardownTarget],
    options: TeardownOptions | None = None,
    *,
    max_errors: int = 5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
) -> TeardownReport:
    """Stop, then terminate, each target; wait until each is gone. Safe to rerun."""
    options = options or TeardownOptions()
    book = ledger.sync
    report = TeardownReport()
    await _write_down_lost(client, ledger, rollout, targets)
    # Before anything is stopped: a server's record is the only place that names its public IP.
    side = await _side_to_return(client, ledger, rollout, targets)
    state = _Round({t.instance_no: t for t in targets})

    async def round_() -> bool:
        keys = ((t.region, n) for n, t in state.pending.items())
        seen = await read_statuses(client, keys)
        if seen is not None:
            await _act(client, ledger, rollout, state, seen, report, options, max_errors)
            done = len(report.terminated) + len(report.protected) + len(report.failed)
            await notify(on_progress, done, len(targets))
        return not state.pending

    if state.pending and not await Poller(
        options.poll_interval, options.time_limit, clock, sleep
    ).run(round_):
        for number, target in state.pending.items():
            report.timed_out[target.name] = state.last.get(number, "unknown")
        message = f"not gone after {options.time_limit:.0f} s"
        await ledger.run(
            book.set_teardown, rollout, list(state.pending), TeardownState.FAILED, message=message
        )
    report.terminated = sorted(set(report.terminated))
    # Returned once their server is gone (this run, or an earlier one that stopped before it
    # returned them); the others stay with their server, for a rerun.
    taken = {t.instance_no for t in targets}
    gone = [r for r in side if r.server_no in state.gone or r.server_no not in taken]
    await _return_side(client, ledger, rollout, gone, report, options, clock, sleep)
    return report


async def _write_down_lost(
    client: NcpClient, ledger: AsyncLedger, rollout: str, targets: Sequence[TeardownTarget]
) -> None:
    """Record each lost create found by name before touching it, so its number is known."""
    by_name: dict[str, list[TeardownTarget]] = defaultdict(list)
    for t in targets:
        if not t.recorded:
            by_name[t.name].append(t)
    for name, found in by_name.items():
        servers = await client.get_servers([t.instance_no for t in found], region=found[0].region)
        await ledger.run(
            ledger.sync.record_created,
            rollout,
            name,
            found_from(servers, found[0].region, ""),
            request_id=None,
            origin="lost",
            from_states=(State.PLANNED, State.IN_FLIGHT, State.FAILED),
        )


async def _side_to_return(
    client: NcpClient, ledger: AsyncLedger, rollout: str, targets: Sequence[TeardownTarget]
) -> list[SideResource]:
    """Return the public IPs and extra disks to return: the targets', and any left before.

    They are written to the ledger before anything is stopped: once a server is gone, NCP no
    longer ties them to it, and a teardown stopped there finds them in the ledger.
    """
    book = ledger.sync
    found = await side_of(client, ledger, rollout, targets)
    await ledger.run(book.keep_aside, rollout, [_aside(r) for r in found])
    side = [_resource(kept) for kept in await ledger.run(book.aside, rollout)]
    for resource in side:
        log.info("to return once its server is gone: %s", resource)
    return side


def _aside(resource: SideResource) -> Aside:
    return Aside(
        resource.kind.value,
        resource.number,
        resource.region,
        resource.server,
        resource.server_no,
        resource.label,
    )


def _resource(kept: Aside) -> SideResource:
    return SideResource(
        Resource(kept.kind), kept.number, kept.region, kept.server, kept.server_no, kept.label
    )


async def _return_side(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    side: Sequence[SideResource],
    report: TeardownReport,
    options: TeardownOptions,
    clock: Clock,
    sleep: Sleep,
) -> None:
    """Return the public IPs and extra disks of servers now gone; note what is still billed."""
    if not side:
        return
    returned = await return_side(
        client,
        side,
        interval=options.poll_interval,
        time_limit=options.time_limit,
        clock=clock,
        sleep=sleep,
    )
    report.returned, report.side_left = returned.returned, returned.left
    await ledger.run(ledger.sync.aside_returned, rollout, [_aside(r) for r in returned.returned])


async def _act(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    state: _Round,
    seen: dict[str, ServerInstance],
    report: TeardownReport,
    options: TeardownOptions,
    max_errors: int,
) -> None:
    """Decide and do one round's actions; settled servers leave ``state.pending``."""
    book = ledger.sync
    batches: dict[tuple[Action, str], list[str]] = defaultdict(list)
    for number, target in list(state.pending.items()):
        server = seen.get(number)
        state.misses[number] = 0 if server is not None else state.misses.get(number, 0) + 1
        if server is not None:
            state.last[number] = f"{server.status}/{server.operation}"
        action = decide(server, state.misses[number], options)
        if action == Action.GONE:
            report.terminated.append(target.name)
            state.gone.add(number)
            await ledger.run(book.set_teardown, rollout, [number], TeardownState.TERMINATED)
            del state.pending[number]
        elif action == Action.LEAVE:
            report.protected.append(target.name)
            await ledger.run(book.set_teardown, rollout, [number], TeardownState.PROTECTED)
            del state.pending[number]
        elif action == Action.LIFT_PROTECTION:
            try:
                await client.set_protection(number, False, region=target.region)
            except NcpError as exc:
                final = isinstance(exc, PermanentError)  # NCP will refuse it again
                await _refused(ledger, rollout, state, number, exc, report, max_errors, final=final)
        elif action in (Action.STOP, Action.TERMINATE):
            batches[(action, target.region)].append(number)
    for (action, region), numbers in sorted(batches.items()):
        await _control(client, ledger, rollout, state, action, region, numbers, report, max_errors)


async def _control(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    state: _Round,
    action: Action,
    region: str,
    numbers: list[str],
    report: TeardownReport,
    max_errors: int,
) -> None:
    call = client.stop_servers if action == Action.STOP else client.terminate_servers
    mark = TeardownState.STOPPING if action == Action.STOP else TeardownState.TERMINATING
    for i in range(0, len(numbers), BATCH_SIZE):
        batch = numbers[i : i + BATCH_SIZE]
        try:
            await call(batch, region=region)
        except NcpError as exc:
            # Whatever happened, the next round reads the status again and acts on it; only
            # repeated refusals end the attempt for these servers.
            log.warning("%s of %d servers failed: %s", action, len(batch), exc)
            for number in batch:
                await _refused(ledger, rollout, state, number, exc, report, max_errors)
            continue
        await ledger.run(ledger.sync.set_teardown, rollout, batch, mark)


async def _refused(
    ledger: AsyncLedger,
    rollout: str,
    state: _Round,
    number: str,
    error: NcpError,
    report: TeardownReport,
    max_errors: int,
    *,
    final: bool = False,
) -> None:
    """Count a refusal for one server; after too many (or a ``final`` one), give it up."""
    state.errors[number] = state.errors.get(number, 0) + 1
    target = state.pending.get(number)
    if target is None or not (final or state.errors[number] >= max_errors):
        return
    why = f"refused: {error}"
    report.failed[target.name] = why
    await ledger.run(ledger.sync.set_teardown, rollout, [number], TeardownState.FAILED, message=why)
    del state.pending[number]
