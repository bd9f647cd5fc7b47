"""Changing servers that exist to match the inventory: resize in place, replace, destroy.

Every action here takes a server whose instance number the rollout recorded (proof,
``ownership``): nothing else is ever stopped, changed or terminated. Each writes its intent
before its first call (``fleet.states``), so a run that dies part-way is finished by the next
(``fleet.reshape.finish``):
- **resize**: NCP changes a spec (or product) only on a stopped server, within its product
  type and disk type: ``resizing`` (with the parameters it goes to), then stop, change, start.
  Each step is read off what NCP shows (``resize_step``), so a resize resumes where it stopped.
  The row then holds the inventory's parameters. A refusal (another type, say) leaves the
  server started again as it was, and is reported.
- **replace**: the old server is ``deposed`` and a new one created under the same name (with a
  create marker, exactly once, through the engine); only once the new one runs is the old one
  taken down (``retire``); the ledger keeps both numbers. If the new one fails, the old one is
  the name's again. A server with termination protection is reported and left alone.
- **destroy**: the teardown of servers no longer in the inventory, with all its rules (adopted
  servers only when asked; protected ones left alone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from fleet.create.engine import Provisioner
from fleet.errors import NcpError
from fleet.ledger import AsyncLedger, Observed, State
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.options import DEFAULT_WAIT, TeardownOptions
from fleet.plan.changes import Action, Change
from fleet.planned import PlannedServer
from fleet.states import Operation, ServerStatus
from fleet.teardown import TeardownReport, TeardownTarget, Tell, teardown
from fleet.watch.polling import Clock, Poller, Sleep, Told, read_statuses
from fleet.watch.readiness import wait_running

__all__ = [
    "Pace",
    "Reshaped",
    "ResizeStep",
    "destroy",
    "replace",
    "resize",
    "resize_one",
    "resize_step",
    "retire",
]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Reshaped:
    """What resizing or replacing did, per server name."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    left: dict[str, str] = field(default_factory=dict)  # name -> why left alone


@dataclass(frozen=True, slots=True)
class Pace:
    """How to wait on NCP: poll interval, time limit, and the clock and sleep to do it with."""

    interval: float = 2.0
    time_limit: float = DEFAULT_WAIT
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep


class ResizeStep(StrEnum):
    """What a resize does next, read off what NCP shows of the server."""

    STOP = "stop"  # running on the old spec
    CHANGE = "change"  # stopped on the old spec
    START = "start"  # stopped on the new spec
    DONE = "done"  # running on the new spec
    WAIT = "wait"  # an operation under way, or not shown: look again


def _spec_of(server: ServerInstance, spec: PlannedServer) -> bool:
    """Whether the server runs on the spec (or product) the inventory names."""
    want = dict(spec.params)
    if want.get("serverSpecCode"):
        return server.spec_code == want["serverSpecCode"]
    return bool(want.get("serverProductCode")) and (
        server.product_code == want["serverProductCode"]
    )


def resize_step(server: ServerInstance | None, spec: PlannedServer) -> ResizeStep:
    """Return the next step of a resize to ``spec``, from the server as NCP shows it now."""
    if server is None or server.operation != Operation.NULL:
        return ResizeStep.WAIT
    changed = _spec_of(server, spec)
    if server.status == ServerStatus.RUN:
        return ResizeStep.DONE if changed else ResizeStep.STOP
    if server.status == ServerStatus.NSTOP:
        return ResizeStep.START if changed else ResizeStep.CHANGE
    return ResizeStep.WAIT


async def _read(client: NcpClient, region: str, number: str) -> ServerInstance | None:
    seen = await read_statuses(client, [(region, number)])
    return None if seen is None else seen.get(number)


async def _take(
    client: NcpClient, step: ResizeStep, no: str, region: str, spec: PlannedServer
) -> None:
    """Make one resize step's call."""
    if step == ResizeStep.STOP:
        await client.stop_servers([no], region=region)
    elif step == ResizeStep.START:
        await client.start_servers([no], region=region)
    elif step == ResizeStep.CHANGE:
        new = dict(spec.params)
        await client.change_spec(
            no,
            spec_code=new.get("serverSpecCode") or None,
            product_code=new.get("serverProductCode") or None,
            region=region,
        )


async def resize_one(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    target: TeardownTarget,
    spec: PlannedServer,
    pace: Pace,
    tell: Tell | None = None,
) -> str | None:
    """Bring one server (already ``resizing``) to ``spec``; return why not, or None once done.

    Stop, change, start, each read off NCP's status (``resize_step``): a rerun resumes here.
    A refused change starts the server again as it was and drops the intent.
    """
    no, region = target.instance_no, target.region
    refusal: NcpError | None = None
    told = Told(tell or log.info, pace.clock)

    async def round_() -> bool:
        nonlocal refusal
        server = await _read(client, region, no)
        step = resize_step(server, spec)
        told(lambda: f"{target.name} ({no}): resizing: {step}")
        if step == ResizeStep.DONE or (refusal is not None and _running(server)):
            return True
        if step == ResizeStep.CHANGE and refusal is not None:
            step = ResizeStep.START  # refused: start it again on its old spec
        try:
            await _take(client, step, no, region, spec)
        except NcpError as exc:
            if step != ResizeStep.CHANGE:
                raise
            refusal = exc
        return False

    try:
        done = await Poller(pace.interval, pace.time_limit, pace.clock, pace.sleep).run(round_)
    except NcpError as exc:
        return f"refused: {exc}"
    if not done:
        return f"not done in {pace.time_limit:.0f} s: a later run resumes it"
    if refusal is not None:
        await ledger.move(rollout, [no], State.RUNNING, message=f"resize refused: {refusal}")
        return f"resize refused: {refusal}"
    await ledger.observe(rollout, [Observed(no, ServerStatus.RUN)])
    await ledger.record_resized(rollout, spec, no)
    return None


def _running(server: ServerInstance | None) -> bool:
    return server is not None and server.ready


async def resize(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    changes: Sequence[Change],
    specs: Sequence[PlannedServer],
    pace: Pace = Pace(),
    tell: Tell | None = None,
) -> Reshaped:
    """Change recorded servers' spec in place, one at a time: intent first, then each step."""
    by_name = {s.name: s for s in specs}
    out = Reshaped()
    for change in changes:
        if change.action != Action.RESIZE or change.instance_no is None:
            continue
        spec = by_name[change.name]
        intent = {"why": "resize", "file": spec.file, "line": spec.line,
                  "params": [list(p) for p in spec.params]}  # fmt: skip
        moved = await ledger.move(rollout, [change.instance_no], State.RESIZING, intent=intent)
        if not moved:
            out.left[change.name] = "not kept any more: not resized"
            continue
        target = TeardownTarget(change.name, change.instance_no, change.region, True)
        why = await resize_one(client, ledger, rollout, target, spec, pace, tell)
        if why is None:
            out.done.append(change.name)
        else:
            log.warning("%s: resize: %s", change.name, why)
            out.failed[change.name] = why
        if tell is not None:
            tell(f"{change.name} ({change.instance_no}): " + ("resized" if why is None else why))
    return out


async def replace(
    engine: Provisioner,
    changes: Sequence[Change],
    specs: Sequence[PlannedServer],
    options: TeardownOptions,
    pace: Pace = Pace(),
    protected: Sequence[str] = (),
    tell: Tell | None = None,
) -> Reshaped:
    """Replace recorded servers: the old deposed, the new created and running, then the old goes."""
    client, ledger, rollout = engine.client, engine.ledger, engine.rollout
    by_name = {s.name: s for s in specs}
    out = Reshaped()
    todo = [c for c in changes if c.action == Action.REPLACE and c.instance_no is not None]
    for change in todo:
        if change.name in protected:
            out.left[change.name] = "termination protection is on: not replaced"
    todo = [c for c in todo if c.name not in out.left]
    for change in todo:
        spec, number = by_name[change.name], str(change.instance_no)
        await ledger.begin_replace(rollout, spec, number, engine.run)
    await engine.provision([by_name[c.name] for c in todo])
    retired = await retire(client, ledger, rollout, options, pace, {c.name for c in todo}, tell)
    out.done, out.failed = retired.done, retired.failed
    return out


async def retire(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    options: TeardownOptions,
    pace: Pace = Pace(),
    names: Collection[str] | None = None,
    tell: Tell | None = None,
) -> Reshaped:
    """Finish replaces: take each deposed server down once its replacement runs.

    A replacement that failed (or ended) gives the name its old server back; one still on its
    way is waited for (to ``pace.time_limit``) and, if not running by then, its old server stays
    deposed: a later run finishes it.
    """
    deposed = [i for i in await ledger.intents(rollout)
               if i.state == State.DEPOSED and (names is None or i.name in names)]  # fmt: skip
    out = Reshaped()
    if not deposed:
        return out
    rows = {r.name: r for r in await ledger.records(rollout, sorted({i.name for i in deposed}))}
    waiting = {n for n, r in rows.items() if r.state.kept and r.state != State.RUNNING}
    if waiting:
        await wait_running(
            client,
            ledger,
            rollout,
            names=waiting,
            time_limit=pace.time_limit,
            interval=pace.interval,
            clock=pace.clock,
            sleep=pace.sleep,
        )
        rows.update({r.name: r for r in await ledger.records(rollout, sorted(waiting))})
    targets = []
    for i in deposed:
        row = rows.get(i.name)
        if row is not None and row.state == State.RUNNING:
            targets.append(TeardownTarget(i.name, i.instance_no, i.region, True))
        elif await ledger.restore(rollout, i.instance_no):
            out.failed[i.name] = "its replacement failed: the old server is kept"
        else:
            out.failed[i.name] = "the new server is not running yet; the old one stays deposed"
    report = await teardown(
        client, ledger, rollout, targets, options, why="retire", sleep=pace.sleep, tell=tell
    )
    out.done = sorted(report.terminated)
    out.failed.update({n: f"the old server was not taken down: {w}"
                       for n, w in report.left_live.items()})  # fmt: skip
    return out


async def destroy(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    changes: Sequence[Change],
    options: TeardownOptions,
    tell: Tell | None = None,
) -> TeardownReport:
    """Take down recorded servers no longer in the inventory (adopted ones only when asked)."""
    adopted = {i.instance_no for i in await ledger.instances(rollout)
               if i.origin == "adopted"}  # fmt: skip
    targets = [
        TeardownTarget(c.name, str(c.instance_no), c.region, True)
        for c in changes
        if c.action == Action.DESTROY
        and c.instance_no is not None
        and (options.include_adopted or c.instance_no not in adopted)
    ]
    return await teardown(client, ledger, rollout, targets, options, why="prune", tell=tell)
