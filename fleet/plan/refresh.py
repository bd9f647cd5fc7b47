"""Keeping the fleet at its inventory: refresh what the rollout recorded, and say what to do.

A scheduled rollout is a desired-state loop. Before each plan and each run, every server the
rollout recorded is read by its instance number (filtered reads, a batch per call):
- running, or on its way (created, booting, an operation under way): nothing to do;
- stopped (``NSTOP``) out of band: **start** it;
- missing from a read, read again ``pause`` seconds later: missing twice, and listed before, it
  is **gone** (terminated out of band; ``fleet.states.is_gone``, the one rule) and is
  **recreated** under its name (its old number stays in the ledger's history, as a torn-down
  one does). A server that was listed does not vanish by lag, so two reads by number a few
  seconds apart are enough; one row missing from a paged listing is never enough, and a server
  NCP never showed (a create's answer comes long before its listing) is never gone;
- with a change of ours under way (starting, resizing): nothing here; the change finishes it.

Only numbers the rollout recorded are read, so only proven servers (``ownership``) are ever
started. What to do per server is ``changes``: a pure function of the inventory, the ledger and
the refresh, the same for ``plan`` and ``provision``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from fleet.errors import NcpError
from fleet.ledger import AsyncLedger, ErrorKind, Instance, Role
from fleet.ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from fleet.states import Operation, ServerStatus, State, is_gone

__all__ = ["GONE_MESSAGE", "Live", "Refreshed", "by_live", "refresh", "start_stopped"]

log = logging.getLogger(__name__)

GONE_MESSAGE = "gone: terminated out of band (missing from two reads by its number)"

Sleep = Callable[[float], Awaitable[None]]


class Live(StrEnum):
    """What NCP says now of a server the rollout recorded."""

    RUNNING = "running"  # RUN with no operation under way
    STOPPED = "stopped"  # NSTOP with no operation under way: to start
    BUSY = "busy"  # being made, an operation or a change of ours under way: nothing to do now
    FAILED = "failed"  # a failure status (FSTOP, SD_FL ...): reported, not acted on
    GONE = "gone"  # missing from two reads by its number: to recreate


@dataclass(frozen=True, slots=True)
class Refreshed:
    """One recorded server as the refresh found it."""

    name: str
    instance_no: str
    region: str
    live: Live
    server: ServerInstance | None  # None: gone


def _live(server: ServerInstance | None) -> Live:
    if server is None:
        return Live.GONE
    if server.operation != Operation.NULL:
        return Live.BUSY
    if server.status == ServerStatus.RUN:
        return Live.RUNNING
    if server.status == ServerStatus.NSTOP:
        return Live.STOPPED
    if server.status in (ServerStatus.INIT, ServerStatus.CREAT):
        return Live.BUSY
    return Live.FAILED


async def _read(client: NcpClient, wanted: Sequence[Instance]) -> dict[str, ServerInstance]:
    """Read these instances by number, per region (``get_servers`` reads a batch per call).

    Unlike ``polling.read_statuses``, a read that fails raises: a refresh that could not read is
    never taken for servers gone.
    """
    by_region: dict[str, list[str]] = defaultdict(list)
    for instance in wanted:
        by_region[instance.region].append(instance.instance_no)
    found: dict[str, ServerInstance] = {}
    for region, numbers in sorted(by_region.items()):
        for server in await client.get_servers(numbers, region=region):
            found[server.instance_no] = server
    return found


async def refresh(
    client: NcpClient,
    instances: Sequence[Instance],
    *,
    pause: float = 3.0,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, Refreshed]:
    """Return what NCP says now of each recorded server its name keeps (its primary), by name.

    Servers being taken down (or deposed) are not read: their change reads them. Only a server
    NCP listed before can be gone (``is_gone``); the rest may just not be listed yet.
    """
    wanted = [i for i in instances if i.role == Role.PRIMARY and i.state.kept]
    found = await _read(client, wanted)
    missing = [i for i in wanted if i.instance_no not in found and i.listed]
    read_twice = {i.instance_no for i in missing}
    if missing:  # a second read by number, a moment later, before anything is called gone
        await sleep(pause)
        found.update(await _read(client, missing))
    out = {}
    for i in wanted:
        server = found.get(i.instance_no)
        misses = 0 if server is not None else 1 + (i.instance_no in read_twice)
        if server is None:
            gone = is_gone(listed=i.listed, terminate_accepted=False, misses=misses)
            live = Live.GONE if gone else Live.BUSY
        elif i.state in (State.STARTING, State.RESIZING):
            live = Live.BUSY  # a change of ours is under way: it reads and finishes it
        else:
            live = _live(server)
        out[i.name] = Refreshed(i.name, i.instance_no, i.region, live, server)
    return out


async def start_stopped(
    client: NcpClient, ledger: AsyncLedger, rollout: str, stopped: Sequence[Refreshed]
) -> list[str]:
    """Start servers stopped out of band, a batch per region; return the names started.

    Only servers the refresh read by a number the rollout recorded: proven its own. Each is
    written ``starting`` (the intent) before its start goes out, so a run that dies here is
    finished by the next; a refused start is noted on the server's row, and the others go on.
    """
    by_region: dict[str, list[Refreshed]] = defaultdict(list)
    for seen in stopped:
        by_region[seen.region].append(seen)
    started: list[str] = []
    for region, group in sorted(by_region.items()):
        for i in range(0, len(group), BATCH_SIZE):
            numbers = [s.instance_no for s in group[i : i + BATCH_SIZE]]
            intent = {"why": "start"}
            moved = set(await ledger.move(rollout, numbers, State.STARTING, intent=intent))
            batch = [s for s in group[i : i + BATCH_SIZE] if s.instance_no in moved]
            if not batch:
                continue
            try:
                await client.start_servers([s.instance_no for s in batch], region=region)
            except NcpError as exc:
                log.warning("start of %d servers refused: %s", len(batch), exc)
                for s in batch:
                    message = f"stopped out of band; start refused: {exc.message}"
                    await ledger.note_error(rollout, s.name, ErrorKind.STATUS, message, exc.code)
                continue
            started += [s.name for s in batch]
    return started


def by_live(seen: Mapping[str, Refreshed], live: Live) -> list[Refreshed]:
    """Return the refreshed servers in one live state, by name."""
    return sorted((s for s in seen.values() if s.live == live), key=lambda s: s.name)
