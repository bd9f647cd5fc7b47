"""Finishing what earlier runs began: every change is an intent first, and any run finishes it.

A change of a server that takes several calls (stop and terminate; stop, change, start; create
a replacement, then take the old one down) writes its intent into the ledger before its first
call (``fleet.states``). A run that dies between two calls leaves the intent; the next
``provision`` or ``teardown`` finds it (``Ledger.intents``) and finishes it first, whatever it
was asked, as Terraform finishes a deposed object on the next apply:

- ``terminating``: stopped and terminated (a teardown, prune, retire or rollback part-way);
- ``resizing``: resumed at the step NCP's status shows (``reshape.resize_step``), to the
  parameters the intent kept;
- ``starting``: started, if it still is stopped;
- ``deposed``: taken down once its replacement runs; given back its name if the replacement
  failed; left deposed (and shown by ``plan``) while the replacement is still on its way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleet.errors import NcpError
from fleet.ledger import AsyncLedger, Instance, Observed, State
from fleet.ncp.client import NcpClient
from fleet.options import TeardownOptions
from fleet.planned import PlannedServer
from fleet.reshape.resize import Pace, resize_one, retire
from fleet.states import Operation, ServerStatus
from fleet.teardown import TeardownTarget, Tell, teardown
from fleet.watch.polling import read_statuses

__all__ = ["Finished", "finish"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Finished:
    """What finishing the intents of earlier runs did, per server name."""

    done: dict[str, str] = field(default_factory=dict)  # name -> what was finished
    left: dict[str, str] = field(default_factory=dict)  # name -> why it is not finished yet

    def __bool__(self) -> bool:
        return bool(self.done or self.left)


def _why(instance: Instance) -> str:
    return str(json.loads(instance.intent).get("why", "")) if instance.intent else ""


def _target(i: Instance) -> TeardownTarget:
    return TeardownTarget(i.name, i.instance_no, i.region, True)


async def finish(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    options: TeardownOptions,
    pace: Pace | None = None,
    tell: Tell | None = None,
) -> Finished:
    """Finish every unfinished intent of the rollout that needs nothing from this run.

    Deposed servers whose replacement is still on its way are left for ``retire`` after this
    run's creates.
    """
    out, pace = Finished(), pace or Pace()
    intents = await ledger.intents(rollout)
    if not intents:
        return out
    terminating = [i for i in intents if i.state == State.TERMINATING]
    await _terminate(terminating, client, ledger, rollout, options, out, tell)
    for i in intents:
        if i.state == State.RESIZING:
            await _resize(client, ledger, rollout, i, pace, out)
    await _start([i for i in intents if i.state == State.STARTING], client, ledger, rollout, out)
    deposed = {i.name for i in intents if i.state == State.DEPOSED}
    if deposed:
        ready = Pace(pace.interval, 0.0, pace.clock, pace.sleep)  # only what runs now
        retired = await retire(client, ledger, rollout, options, ready, deposed, tell)
        out.done.update(dict.fromkeys(retired.done, "retired: its replacement runs"))
        out.left.update(retired.failed)
    for name, what in out.done.items():
        log.info("%s: %s (an earlier run began it)", name, what)
    return out


async def _terminate(
    intents: Sequence[Instance],
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    options: TeardownOptions,
    out: Finished,
    tell: Tell | None,
) -> None:
    """Finish teardowns, prunes, retirements and rollbacks an earlier run began."""
    if not intents:
        return
    report = await teardown(
        client, ledger, rollout, [_target(i) for i in intents], options, why="finish", tell=tell
    )
    whys = {i.name: _why(i) or "teardown" for i in intents}
    out.done.update({n: f"{whys.get(n, 'teardown')} finished" for n in report.terminated})
    out.left.update(report.left_live)


async def _resize(
    client: NcpClient, ledger: AsyncLedger, rollout: str, i: Instance, pace: Pace, out: Finished
) -> None:
    """Resume a resize at the step NCP's status shows, to the parameters its intent kept."""
    intent = json.loads(i.intent or "{}")
    params = tuple((str(k), str(v)) for k, v in intent.get("params", []))
    if not params:
        out.left[i.name] = "a resize without its parameters: not resumed"
        return
    spec = PlannedServer(i.name, str(intent.get("file", "")), int(intent.get("line", 0)), params)
    why = await resize_one(client, ledger, rollout, _target(i), spec, pace)
    if why is None:
        out.done[i.name] = "resized"
    else:
        out.left[i.name] = why


async def _start(
    intents: Sequence[Instance],
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    out: Finished,
) -> None:
    """Start again the servers an earlier run meant to start and that still are stopped."""
    if not intents:
        return
    seen = await read_statuses(client, ((i.region, i.instance_no) for i in intents)) or {}
    reads = [Observed(n, s.status, s.operation) for n, s in seen.items()]
    await ledger.observe(rollout, reads)  # one already running is running now
    for i in intents:
        server = seen.get(i.instance_no)
        if server is None or server.operation != Operation.NULL:
            continue  # not shown, or on its way: the next read moves it
        if server.status == ServerStatus.NSTOP:
            try:
                await client.start_servers([i.instance_no], region=i.region)
            except NcpError as exc:
                out.left[i.name] = f"start refused: {exc}"
                continue
        out.done[i.name] = "started"
