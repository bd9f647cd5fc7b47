"""What a teardown takes, and what it finds but leaves alone: proof, never a name and a time.

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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from fleet.ledger import AsyncLedger, Instance, Record, TeardownState
from fleet.ncp.client import NcpClient
from fleet.ownership import Claim, Evidence, judge
from fleet.survey import DEFAULT_TIMEOUT, DEFAULT_WINDOW, in_send_window, owned_instances

__all__ = [
    "ADOPTED_LEFT",
    "OTHER_RUN",
    "LeftAlone",
    "TeardownScope",
    "TeardownTarget",
    "lost_create",
    "teardown_targets",
]


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
    own = await ledger.ownership(rollout, window=DEFAULT_WINDOW)
    margin, rollout_id = request_timeout + own.window, own.marker
    instances = await ledger.instances(rollout)
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
    lost = [r for r in await ledger.records(rollout) if lost_create(r)]
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
