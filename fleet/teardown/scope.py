"""What a teardown takes, and what it finds but leaves alone: proof, never a name and a time.

``teardown_targets`` is the teardown's own plan, computed once by the same code for the dry run
and for the teardown, which prints it and takes exactly it:
- **targets**: the rollout's live recorded servers (duplicates and deposed ones included;
  adopted ones only when asked, ``include_adopted``: fleet did not create them), and lost
  creates: a server whose create went out but whose answer never came (a row in flight, or one
  that had an ambiguous send), listed under the row's exact name where it was sent, carrying
  this rollout's create marker (a row last sent before markers: made while its creates went
  out, within the rollout's window). Each by ``ownership.judge``.
- **protected**: targets with termination protection on, as NCP lists them now: left, unless
  the teardown lifts it.
- **pending**: rows whose create may be out and that NCP does not list yet: the teardown looks
  them up (``settling``) and takes what carries our marker, once the window says so.
- **left alone**: every other server under the rollout's names, with the reason (another
  rollout's marker, no marker of ours, adopted, another run's for a rollback).
A rollback (``only_run``) narrows it all to what that run created: never an earlier run's server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fleet.ledger import AsyncLedger, Instance, Record
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.options import DEFAULT_TIMEOUT, DEFAULT_WINDOW
from fleet.ownership import Evidence, Ground, in_send_window, judge
from fleet.plan.survey import owned_instances

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
    protected: bool = False  # termination protection on, as NCP listed it for the plan


@dataclass(frozen=True, slots=True)
class LeftAlone:
    """A server found under one of the rollout's names that a teardown will not touch, and why."""

    name: str
    instance_no: str
    region: str
    reason: str


@dataclass(frozen=True, slots=True)
class TeardownScope:
    """A teardown's plan: what it takes, what is protected, what it looks up, what it leaves."""

    targets: list[TeardownTarget]
    left: list[LeftAlone]
    pending: list[str] = field(default_factory=list)  # names whose create may be out, unlisted

    def taken(self, *, lift_protection: bool = False) -> list[TeardownTarget]:
        """Return the servers the teardown stops and terminates (protected ones if lifting)."""
        return [t for t in self.targets if lift_protection or not t.protected]

    @property
    def protected(self) -> list[TeardownTarget]:
        """Return the targets termination protection keeps (unless lifted)."""
        return [t for t in self.targets if t.protected]


# Why a recorded instance is left alone, beside ``ownership.Ground``'s reasons.
ADOPTED_LEFT = f"{Ground.ADOPTED.value}; pass --include-adopted to take it down too"
OTHER_RUN = "made by another run of this rollout (a rollback takes only what its run created)"


def lost_create(record: Record) -> bool:
    """Whether a row may have made a server the ledger never heard of."""
    return record.instance_no is None and (record.unsettled or record.ambiguous_sends > 0)


@dataclass(frozen=True, slots=True)
class _Own:
    """What judges a server found under the rollout's names: its id, window, rows, numbers."""

    rollout_id: str | None
    margin: float
    rows: dict[str, Record]
    recorded: dict[str, dict[str, str]]  # name -> instance number -> origin
    only_run: str | None


async def teardown_targets(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
    include_adopted: bool = False,
    only_run: str | None = None,
) -> TeardownScope:
    """Return the teardown's plan (see the module's docstring); it changes nothing.

    The rollout's marker id and window are its ledger's. A row sent before create markers is
    judged by the old rule: a server made within the request timeout and the window of its
    sends. ``only_run`` (a rollback) narrows it all to what that run created.
    """
    own_row = await ledger.ownership(rollout, window=DEFAULT_WINDOW)
    instances = await ledger.instances(rollout)
    rows = {r.name: r for r in await ledger.records(rollout)}
    own = _Own(
        own_row.marker,
        request_timeout + own_row.window,
        rows,
        owned_instances(instances),
        only_run,
    )
    scope = TeardownScope([], [])
    for i in instances:
        if not i.state.live:
            continue
        reason = _leave_recorded(i.origin, i.run, include_adopted, only_run)
        if reason is None:
            scope.targets.append(TeardownTarget(i.name, i.instance_no, i.region, True))
        else:
            scope.left.append(LeftAlone(i.name, i.instance_no, i.region, reason))
    listed = await _listing(client, rows.values(), instances)
    _found_under_names(scope, listed, own)
    return _with_protection(scope, listed)


def _leave_recorded(
    origin: str, run: str | None, include_adopted: bool, only_run: str | None
) -> str | None:
    """Return why a recorded instance is left alone, or None to take it down."""
    if origin == "adopted":
        return None if include_adopted and only_run is None else ADOPTED_LEFT
    if only_run is not None and run != only_run:
        return OTHER_RUN
    return None


async def _listing(
    client: NcpClient, rows: Iterable[Record], instances: Sequence[Instance]
) -> dict[str, list[tuple[str, ServerInstance]]]:
    """List every (region, VPC) the rollout's names live in; return what is there, by name."""
    groups: set[tuple[str, str]] = set()
    for r in rows:
        groups.add((r.region, r.vpc_no))
        if r.attempts:
            groups.add((r.sent_region, r.sent_vpc))
    groups |= {(i.region, i.vpc_no) for i in instances if i.state.live}
    names = {r.name for r in rows}
    found: dict[str, list[tuple[str, ServerInstance]]] = defaultdict(list)
    seen: set[str] = set()
    for region, vpc in sorted(groups):
        for server in await client.list_servers(region=region, vpc_no=vpc or None):
            if server.name in names and server.instance_no not in seen:
                seen.add(server.instance_no)
                found[server.name].append((region, server))
    return found


def _found_under_names(
    scope: TeardownScope, listed: dict[str, list[tuple[str, ServerInstance]]], own: _Own
) -> None:
    """Sort the servers listed under the rollout's names that it never recorded."""
    looked_for: set[str] = set()
    for name, found in sorted(listed.items()):
        rec = own.rows.get(name)
        recorded = own.recorded.get(name, {})
        for region, server in found:
            if server.instance_no in recorded:
                continue  # recorded: a target or left above
            # A lost create of a row sent before markers: judged by when it was made.
            lost = (
                rec is not None
                and lost_create(rec)
                and region == rec.sent_region
                and server.vpc_no in ("", rec.sent_vpc)
            )
            judgement = judge(server, _evidence(rec, server, own, lost))
            theirs = own.only_run is not None and (
                judgement.marker is None or judgement.marker.run != own.only_run
            )
            # Where NCP says it is (its own code, the default region's too): the same region.
            where = server.region or region
            if judgement.ours and not theirs:
                scope.targets.append(TeardownTarget(name, server.instance_no, where, False))
                looked_for.add(name)
            else:
                why = OTHER_RUN if judgement.ours else judgement.ground.value
                scope.left.append(LeftAlone(name, server.instance_no, where, why))
    for name, rec in sorted(own.rows.items()):
        wanted = own.only_run is None or rec.sent_run == own.only_run
        if rec.unsettled and name not in looked_for and wanted:
            scope.pending.append(name)


def _evidence(rec: Record | None, server: ServerInstance, own: _Own, lost: bool) -> Evidence:
    legacy = lost and rec is not None and not rec.marked
    window = legacy and rec is not None and in_send_window(rec, server, own.margin)
    return Evidence(own.rollout_id, {}, legacy, window)


def _with_protection(
    scope: TeardownScope, listed: dict[str, list[tuple[str, ServerInstance]]]
) -> TeardownScope:
    """Mark the targets NCP lists with termination protection on, each in NCP's region code."""
    shown = {server.instance_no: server for found in listed.values() for _, server in found}
    targets = []
    for t in scope.targets:
        server = shown.get(t.instance_no)
        if server is None:
            targets.append(t)  # not listed (yet): as the ledger has it
            continue
        where = t.region or server.region  # the default region's own code, as NCP gives it
        targets.append(TeardownTarget(t.name, t.instance_no, where, t.recorded, server.protected))
    return TeardownScope(targets, scope.left, scope.pending)
