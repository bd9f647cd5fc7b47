"""What a rollout's creates made beside its servers (extras), and returning them: public IPs, disks.

Both are billed until returned, and both may outlive their server:

- ``associateWithPublicIp=true`` makes a public IP instance associated with the server. NCP does
  not release it with the server. It is returned with ``disassociatePublicIpFromServerInstance``
  (while it is still associated), then ``deletePublicIpInstance``.
- each ``blockStorageMappingList`` item of order 1 or more (without ``noBlockStorage=true``) makes
  an extra block storage instance. Whether NCP deletes it with its server is not documented:
  the reading that leaves nothing billed is taken, so a disk still listed once its server is gone
  is detached if need be (``detachBlockStorageInstances``), then deleted
  (``deleteBlockStorageInstances``); a disk that went with its server is simply gone.

Only what this rollout's own creates asked for is taken, found from its servers before they go:
the public IP a server's record names if its create sent ``associateWithPublicIp=true``, and of
the extra disks attached to it (never a root disk, type ``BASIC``) as many as its create asked
for, oldest first; nothing of an adopted server. A public IP or disk that is found tied to
another server by then is left alone, and said so. What to do with each is ``extra_step``: a
pure table from what NCP lists of it now; ``return_extras`` loops over it until all are gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from fleet.errors import NcpError
from fleet.ledger import AsyncLedger, Extra, Record
from fleet.ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from fleet.ncp.reads import BlockStorage, Item, PublicIp, Resource, read
from fleet.watch.polling import Clock, Poller, Sleep

from .scope import TeardownTarget

__all__ = ["ExtraStep", "ExtrasReport", "Made", "extra_step", "extras_of", "return_extras"]

log = logging.getLogger(__name__)

# Up to this many servers with disks, their disks are read one server per call (the filter NCP
# has); beyond, the region's listing is read once, a page per 100 disks.
PER_SERVER_READS: Final = 10


@dataclass(frozen=True, slots=True)
class Made:
    """What one create asked for beside its server."""

    public_ip: bool
    disks: int

    @classmethod
    def by(cls, record: Record) -> Made:
        """Return what the server's last create asked for (nothing for an adopted server)."""
        if record.adopted or not record.sent_params:
            return cls(False, 0)
        params = dict(json.loads(record.sent_params))
        items: dict[str, dict[str, str]] = defaultdict(dict)
        for key, value in params.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "blockStorageMappingList":
                items[parts[1]][parts[2]] = value
        disks = sum(
            1
            for item in items.values()
            if item.get("order", "0") != "0" and item.get("noBlockStorage") != "true"
        )
        return cls(params.get("associateWithPublicIp") == "true", disks)


class ExtraStep(StrEnum):
    """What a round does with one extra."""

    WAIT = "wait"  # an operation is under way on it: look again
    DISASSOCIATE = "disassociate"
    DETACH = "detach"
    DELETE = "delete"
    GONE = "gone"  # not listed: returned (or went with its server)
    LEAVE = "leave"  # tied to a server that is not the one it was made with: not ours to take


def _key(extra: Extra) -> tuple[Resource, str]:
    return Resource(extra.kind), extra.number


def extra_step(extra: Extra, now: Item | None) -> ExtraStep:
    """Return what to do with an extra, given what NCP lists of it now (None: nothing)."""
    if now is None:
        return ExtraStep.GONE
    if not isinstance(now, PublicIp | BlockStorage) or now.operation != "NULL":
        return ExtraStep.WAIT
    if not now.server_no:
        return ExtraStep.DELETE
    if now.server_no != extra.server_no:
        return ExtraStep.LEAVE
    return ExtraStep.DISASSOCIATE if isinstance(now, PublicIp) else ExtraStep.DETACH


@dataclass(slots=True)
class ExtrasReport:
    """What became of the extras of the servers a teardown took down."""

    returned: list[Extra] = field(default_factory=list)
    left: dict[Extra, str] = field(default_factory=dict)  # still billed, and why


async def _disks_of(
    client: NcpClient, region: str, servers: Sequence[ServerInstance]
) -> dict[str, list[BlockStorage]]:
    """Return the extra disks attached to each server, oldest first, by server number."""
    if len(servers) <= PER_SERVER_READS:
        found: list[Item] = []
        for server in servers:
            params = [("serverInstanceNo", server.instance_no)]
            found += await read(client, Resource.BLOCK_STORAGE, region=region, params=params)
    else:
        found = await read(client, Resource.BLOCK_STORAGE, region=region)
    by_server: dict[str, list[BlockStorage]] = defaultdict(list)
    for disk in found:
        if isinstance(disk, BlockStorage) and disk.type != "BASIC" and disk.server_no:
            by_server[disk.server_no].append(disk)
    for disks in by_server.values():
        disks.sort(key=lambda d: (str(d.raw.get("createDate", "")), int(d.key or 0)))
    return by_server


async def extras_of(
    client: NcpClient, ledger: AsyncLedger, rollout: str, targets: Sequence[TeardownTarget]
) -> list[Extra]:
    """Return the extras of a teardown's targets that still exist.

    What each target's create asked for is read from the rollout's ledger rows.
    """
    records = await ledger.records(rollout)
    return await _extras(client, [(t.region, t.instance_no) for t in targets], records)


async def _extras(
    client: NcpClient, servers: Iterable[tuple[str, str]], records: Sequence[Record]
) -> list[Extra]:
    by_name = {r.name: r for r in records}  # decoded only for the servers NCP still lists
    by_region: dict[str, list[str]] = defaultdict(list)
    for region, number in servers:
        by_region[region].append(number)
    found: list[Extra] = []
    for region, numbers in sorted(by_region.items()):
        listed = await client.get_servers(numbers, region=region)
        asked = {
            s.instance_no: Made.by(by_name[s.name]) if s.name in by_name else Made(False, 0)
            for s in listed
        }
        for s in listed:
            ip_no = str(s.raw.get("publicIpInstanceNo") or "")
            if asked[s.instance_no].public_ip and ip_no:
                label = str(s.raw.get("publicIp") or "")
                found.append(
                    Extra(Resource.PUBLIC_IP.value, ip_no, region, s.name, s.instance_no, label)
                )
        with_disks = [s for s in listed if asked[s.instance_no].disks]
        disks = await _disks_of(client, region, with_disks) if with_disks else {}
        for s in with_disks:
            for disk in disks.get(s.instance_no, [])[: asked[s.instance_no].disks]:
                kind = Resource.BLOCK_STORAGE.value
                found.append(Extra(kind, disk.key, region, s.name, s.instance_no, disk.name))
    return found


@dataclass(slots=True)
class _Round:
    """A return's state between rounds."""

    pending: dict[tuple[Resource, str], Extra]
    errors: dict[tuple[Resource, str], int] = field(default_factory=dict)
    last: dict[tuple[Resource, str], ExtraStep] = field(default_factory=dict)


async def _listed(
    client: NcpClient, pending: Iterable[Extra]
) -> dict[tuple[Resource, str], Item] | None:
    """Read every pending extra by number, per kind and region; None when a read failed."""
    groups: dict[tuple[Resource, str], list[str]] = defaultdict(list)
    for r in pending:
        groups[(Resource(r.kind), r.region)].append(r.number)
    seen: dict[tuple[Resource, str], Item] = {}
    try:
        for (kind, region), numbers in sorted(groups.items()):
            for item in await read(client, kind, region=region, numbers=numbers):
                seen[(kind, item.key)] = item
    except NcpError as exc:
        log.warning("reading public IPs and disks failed, will read again: %s", exc)
        return None
    return seen


# The call each step makes, per kind: (action, the parameter naming the resource). Disk actions
# take a list, so a round's disks of a region go in one call.
_CALLS: Final[Mapping[tuple[Resource, ExtraStep], tuple[str, str]]] = {
    (Resource.PUBLIC_IP, ExtraStep.DISASSOCIATE): (
        "disassociatePublicIpFromServerInstance",
        "publicIpInstanceNo",
    ),
    (Resource.PUBLIC_IP, ExtraStep.DELETE): ("deletePublicIpInstance", "publicIpInstanceNo"),
    (Resource.BLOCK_STORAGE, ExtraStep.DETACH): (
        "detachBlockStorageInstances",
        "blockStorageInstanceNoList",
    ),
    (Resource.BLOCK_STORAGE, ExtraStep.DELETE): (
        "deleteBlockStorageInstances",
        "blockStorageInstanceNoList",
    ),
}


async def _send(
    client: NcpClient, step: ExtraStep, kind: Resource, region: str, batch: Sequence[Extra]
) -> None:
    """Send one step for a batch (a list action) or for one resource."""
    action, name = _CALLS[(kind, step)]
    params = [("regionCode", region)] if region else []
    if name.endswith("List"):
        params += [(f"{name}.{i}", r.number) for i, r in enumerate(batch, 1)]
    else:
        params.append((name, batch[0].number))
    # Not idempotent by NCP's rules (a second delete fails): the next round reads it again.
    await client.call(action, params, idempotent=False)


async def _act(
    client: NcpClient,
    state: _Round,
    seen: Mapping[tuple[Resource, str], Item],
    report: ExtrasReport,
    max_errors: int,
) -> None:
    """Decide and do one round's steps; settled resources leave ``state.pending``."""
    batches: dict[tuple[ExtraStep, Resource, str], list[Extra]] = defaultdict(list)
    for key, resource in list(state.pending.items()):
        now = seen.get(key)
        step = state.last[key] = extra_step(resource, now)
        if step == ExtraStep.GONE:
            report.returned.append(resource)
            del state.pending[key]
        elif step == ExtraStep.LEAVE:
            holder = now.server_no if isinstance(now, PublicIp | BlockStorage) else "?"
            report.left[resource] = f"now tied to server {holder}, not this rollout's: left alone"
            del state.pending[key]
        elif step != ExtraStep.WAIT:
            batches[(step, Resource(resource.kind), resource.region)].append(resource)
    for (step, kind, region), group in sorted(batches.items()):
        size = BATCH_SIZE if _CALLS[(kind, step)][1].endswith("List") else 1
        for i in range(0, len(group), size):
            batch = group[i : i + size]
            try:
                await _send(client, step, kind, region, batch)
            except NcpError as exc:
                log.warning("%s of %s failed: %s", step, ", ".join(map(str, batch)), exc)
                for resource in batch:
                    key = _key(resource)
                    state.errors[key] = state.errors.get(key, 0) + 1
                    if state.errors[key] >= max_errors and key in state.pending:
                        report.left[resource] = f"{step} refused: {exc}"
                        del state.pending[key]


async def return_extras(
    client: NcpClient,
    resources: Sequence[Extra],
    *,
    interval: float,
    time_limit: float,
    max_errors: int = 5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> ExtrasReport:
    """Disassociate and delete public IPs, detach and delete extra disks, until all are gone."""
    report = ExtrasReport()
    state = _Round({_key(r): r for r in resources})

    async def round_() -> bool:
        seen = await _listed(client, state.pending.values())
        if seen is not None:
            await _act(client, state, seen, report, max_errors)
        return not state.pending

    if state.pending and not await Poller(interval, time_limit, clock, sleep).run(round_):
        for key, resource in state.pending.items():
            last = state.last.get(key, "unread")
            report.left[resource] = f"not returned after {time_limit:.0f} s (last step: {last})"
    return report
