"""Changing servers that exist to match the inventory: resize in place, replace, destroy.

Every action here takes a ``changes.Change`` whose instance number the rollout recorded (proof,
``ownership``): nothing else is ever stopped, changed or terminated.
- **resize**: NCP changes a spec (or product) only on a stopped server, within its product
  type and disk type: stop, ``changeServerInstanceSpec``, start. The row then holds the
  inventory's parameters. A refusal (another type, say) leaves the server started again as it
  was, and is reported.
- **replace**: a new server is created under the same name (with a create marker, exactly once,
  through the engine), and only once it runs is the old one stopped and terminated; the ledger
  keeps both numbers. A server with termination protection is reported and left alone.
- **destroy**: the teardown of servers no longer in the inventory, with all its rules (adopted
  servers only when asked; protected ones left alone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from .changes import Action, Change
from .errors import NcpError
from .ledger import AsyncLedger, Role, State
from .ncp.client import NcpClient
from .options import TeardownOptions
from .polling import Clock, Poller, Sleep, read_statuses
from .provisioner import Provisioner
from .readiness import wait_running
from .spec import ServerSpec
from .states import Operation, ServerStatus
from .teardown import TeardownReport, TeardownTarget, teardown

__all__ = ["Pace", "Reshaped", "destroy", "replace", "resize", "retire"]

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
    time_limit: float = 1800.0
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep


async def _settled(client: NcpClient, change: Change, status: ServerStatus, pace: Pace) -> bool:
    """Wait until the server is in ``status`` with no operation under way."""

    async def round_() -> bool:
        seen = await read_statuses(client, [(change.region, str(change.instance_no))])
        server = None if seen is None else seen.get(str(change.instance_no))
        return (
            server is not None and server.status == status and (server.operation == Operation.NULL)
        )

    return await Poller(pace.interval, pace.time_limit, pace.clock, pace.sleep).run(round_)


async def _resize_one(client: NcpClient, change: Change, spec: ServerSpec, pace: Pace) -> None:
    """Stop, change, start one server; raise NcpError or TimeoutError if NCP will not."""
    no, region = str(change.instance_no), change.region
    await client.stop_servers([no], region=region)
    if not await _settled(client, change, ServerStatus.NSTOP, pace):
        raise TimeoutError("not stopped in time")
    new = dict(spec.params)
    try:
        await client.change_spec(
            no,
            spec_code=new.get("serverSpecCode") or None,
            product_code=new.get("serverProductCode") or None,
            region=region,
        )
        if not await _settled(client, change, ServerStatus.NSTOP, pace):
            raise TimeoutError("spec change not done in time")
    finally:
        await client.start_servers([no], region=region)  # changed or not, it runs again


async def resize(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    changes: Sequence[Change],
    specs: Sequence[ServerSpec],
    pace: Pace = Pace(),
) -> Reshaped:
    """Change recorded servers' spec in place, one at a time; record each one changed."""
    by_name = {s.name: s for s in specs}
    out = Reshaped()
    for change in changes:
        if change.action != Action.RESIZE or change.instance_no is None:
            continue
        spec = by_name[change.name]
        try:
            await _resize_one(client, change, spec, pace)
        except (NcpError, TimeoutError) as exc:
            log.warning("%s: resize failed: %s", change.name, exc)
            out.failed[change.name] = str(exc)
            continue
        await ledger.record_resized(rollout, spec, change.instance_no)
        out.done.append(change.name)
    return out


async def replace(
    engine: Provisioner,
    changes: Sequence[Change],
    specs: Sequence[ServerSpec],
    options: TeardownOptions,
    pace: Pace = Pace(),
    protected: Sequence[str] = (),
) -> Reshaped:
    """Replace recorded servers: the new one created and running before the old one goes."""
    client, ledger, rollout = engine.client, engine.ledger, engine.rollout
    by_name = {s.name: s for s in specs}
    out = Reshaped()
    todo = [c for c in changes if c.action == Action.REPLACE and c.instance_no is not None]
    for change in todo:
        if change.name in protected:
            out.left[change.name] = "termination protection is on: not replaced"
    todo = [c for c in todo if c.name not in out.left]
    for change in todo:
        await ledger.begin_replace(rollout, by_name[change.name], str(change.instance_no))
    await engine.provision([by_name[c.name] for c in todo])
    ready = await wait_running(
        client,
        ledger,
        rollout,
        names={c.name for c in todo},
        time_limit=pace.time_limit,
        interval=pace.interval,
        clock=pace.clock,
        sleep=pace.sleep,
    )
    report = await retire(client, ledger, rollout, options, ready.running, pace.sleep)
    out.done = sorted(report.terminated)
    for c in todo:
        if c.name not in ready.running:
            why = ready.failed.get(c.name) or ready.timed_out.get(c.name) or "not created"
            out.failed[c.name] = f"the new server is not running ({why}); the old one stays"
    out.failed.update(
        {n: f"the old server was not taken down: {w}" for n, w in report.failed.items()}
    )
    return out


async def retire(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    options: TeardownOptions,
    names: Collection[str] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> TeardownReport:
    """Take down the old instances of replaced servers (or of these names) whose successor runs."""
    rows = {r.name: r for r in await ledger.records(rollout)}
    targets = []
    for i in await ledger.instances(rollout):
        row = rows.get(i.name)
        if i.role != Role.REPLACED or i.teardown is not None or row is None:
            continue
        if names is not None and i.name not in names:
            continue
        if row.state == State.CREATED and row.server_status == ServerStatus.RUN:
            targets.append(TeardownTarget(i.name, i.instance_no, i.region, True))
    return await teardown(client, ledger, rollout, targets, options, sleep=sleep)


async def destroy(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    changes: Sequence[Change],
    options: TeardownOptions,
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
    return await teardown(client, ledger, rollout, targets, options)
