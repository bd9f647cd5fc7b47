"""Before creating: compare the inventory with the ledger and with what NCP lists.

Every (region, VPC) the rollout touches is listed once. Which servers under a name are ours is
``ownership.judge``'s: a recorded number or this rollout's create marker (for a row last sent
before markers existed, the old rule: made while its creates went out). Then per server:
- created before: done (a second server of ours under its name is recorded as a duplicate:
  flagged, and taken down with it; someone else's is left alone);
- a create may be out (in flight, or failed ambiguous): a server of ours where it was sent is
  recorded (reconciled); otherwise it is left to the engine, which settles it;
- not sent, and a server of ours carries the name (a create judged absent that NCP made after
  all): recorded, never sent again;
- not sent, and the name exists: someone else's server; the rollout stops (or adopts it);
- refused before with the same parameters: skipped (unless retried);
- otherwise: to create.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from fleet.errors import RolloutError
from fleet.ledger import AsyncLedger, Instance, Observed, PlanDelta, Record, State
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.options import DEFAULT_TIMEOUT, DEFAULT_WINDOW
from fleet.ownership import Evidence, Ground, found_from, in_send_window, judge
from fleet.plan.refresh import GONE_MESSAGE, Live, Refreshed, Sleep, by_live, refresh
from fleet.planned import PlannedServer

__all__ = [
    "Survey",
    "Twin",
    "ours_of",
    "owned_instances",
    "refreshed",
    "survey",
    "twins_of",
]

Listing = dict[tuple[str, str], dict[str, list[ServerInstance]]]


@dataclass(frozen=True, slots=True)
class Survey:
    """What a rollout would do, and what it found already there."""

    to_create: tuple[PlannedServer, ...]
    unsettled: tuple[PlannedServer, ...]  # a create may be out, not listed (yet): settled first
    done: tuple[str, ...]  # created by an earlier run of this rollout
    reconciled: tuple[str, ...]  # a create was out when a run stopped, and it does exist
    adopted: tuple[str, ...]  # existed, not ours, and taken over on request
    conflicts: tuple[tuple[str, str], ...]  # (name, instance numbers) existing, not ours
    skipped_failed: tuple[str, ...]  # refused before with these parameters
    duplicates: tuple[tuple[str, str], ...]  # (name, instance numbers): several servers, ours
    delta: PlanDelta
    gone: tuple[str, ...] = ()  # recorded, terminated out of band: created again (recreate)
    stopped: tuple[Refreshed, ...] = ()  # recorded, stopped out of band: started again
    seen: tuple[Refreshed, ...] = ()  # every recorded server as the refresh found it
    intents: tuple[Instance, ...] = ()  # changes earlier runs began and did not finish
    twins: tuple[Twin, ...] = ()  # second servers under names held, not the rollout's

    @property
    def work(self) -> tuple[PlannedServer, ...]:
        """Return the servers the engine has to settle or create, in inventory order."""
        return self.unsettled + self.to_create


async def _listing(client: NcpClient, groups: set[tuple[str, str]], names: set[str]) -> Listing:
    listing: Listing = {}
    for region, vpc in sorted(groups):
        found: dict[str, list[ServerInstance]] = defaultdict(list)
        for server in await client.list_servers(region=region, vpc_no=vpc):
            if server.name in names:
                found[server.name].append(server)
        listing[(region, vpc)] = found
    return listing


@dataclass(slots=True)
class _Sorting:
    to_create: list[PlannedServer]
    unsettled: list[PlannedServer]
    done: list[str]
    reconciled: list[tuple[PlannedServer, Record, list[ServerInstance]]]
    adopt: list[tuple[PlannedServer, list[ServerInstance]]]
    conflicts: list[tuple[str, str]]
    skipped: list[str]
    duplicates: list[tuple[Record, list[ServerInstance]]]
    theirs: list[tuple[str, str]] = field(default_factory=list)  # another rollout's: never adopted
    twins: list[Twin] = field(default_factory=list)  # not ours, under a name we hold a server of


# What a server's own marker says of it that no adoption overrides.
_MADE_ELSEWHERE = frozenset({Ground.OTHER_MARKER, Ground.PROBE})


def _made_elsewhere(server: ServerInstance, rollout_id: str | None) -> bool:
    return judge(server, Evidence(rollout_id, {})).ground in _MADE_ELSEWHERE


def _numbers(servers: Sequence[ServerInstance]) -> str:
    return " ".join(s.instance_no for s in servers)


def ours_of(
    servers: Sequence[ServerInstance],
    rec: Record | None,
    rollout_id: str | None,
    recorded: dict[str, str],
    margin: float,
) -> list[ServerInstance]:
    """Return the servers under a row's name that are this rollout's (``ownership.judge``)."""
    out = []
    for server in servers:
        legacy = rec is not None and rec.attempts > 0 and not rec.marked
        window = legacy and rec is not None and in_send_window(rec, server, margin)
        if judge(server, Evidence(rollout_id, recorded, legacy, window)).ours:
            out.append(server)
    return out


@dataclass(frozen=True, slots=True)
class Twin:
    """A second live server under a name the rollout holds a server of: not the rollout's."""

    name: str
    instance_no: str
    why: str  # why it is not the rollout's (another rollout's marker, or none of ours)

    def __str__(self) -> str:
        return f"{self.name}: a second server under this name, {self.instance_no} ({self.why})"


def _twins(name: str, servers: Sequence[ServerInstance], rollout_id: str | None) -> list[Twin]:
    """Return the servers under a name that are not the rollout's, with why (never silent)."""
    return [
        Twin(name, s.instance_no, judge(s, Evidence(rollout_id, {})).ground.value) for s in servers
    ]


async def twins_of(
    client: NcpClient, ledger: AsyncLedger, rollout: str, names: Collection[str]
) -> list[Twin]:
    """Return the live servers under these names, held by the rollout, that are not its own.

    NCP does not refuse a second server under a name: another ledger's rollout (or a person)
    may have made one. Read after a run, so it is reported, not found by surprise later.
    """
    own = await ledger.ownership(rollout, window=DEFAULT_WINDOW)
    records = [r for r in await ledger.records(rollout, sorted(names)) if r.state.kept]
    owned = owned_instances(await ledger.instances(rollout, [r.name for r in records]))
    listing = await _listing(client, {(r.region, r.vpc_no) for r in records}, set(names))
    out: list[Twin] = []
    for r in records:
        found = _unknown(listing.get((r.region, r.vpc_no), {}).get(r.name, []), owned[r.name])
        ours = ours_of(found, r, own.marker, owned[r.name], 0.0)
        out += _twins(r.name, [s for s in found if s not in ours], own.marker)
    return out


def _unknown(servers: Sequence[ServerInstance], recorded: dict[str, str]) -> list[ServerInstance]:
    return [s for s in servers if s.instance_no not in recorded]


@dataclass(frozen=True, slots=True)
class _Sources:
    """What a survey sorts each planned server by: the ledger's rows and NCP's listing."""

    known: dict[str, Record]  # the ledger's row of each name
    owned: dict[str, dict[str, str]]  # the numbers recorded under each name
    listing: Listing
    rollout_id: str | None  # the rollout's create-marker id
    margin: float  # seconds around a send in which a server made is its (rows before markers)
    adopt_existing: bool
    retried: frozenset[str]  # a dry plan: failed rows --retry-failed would plan again
    gone: frozenset[str]  # a dry plan: rows gone out of band, not planned again yet

    def unknown(self, name: str, where: tuple[str, str]) -> list[ServerInstance]:
        """Return the servers NCP lists under a name in a (region, VPC) the rollout never recorded.

        A server whose number the rollout recorded is known already (a replaced one, one being
        torn down): never a create's outcome, never someone else's.
        """
        return _unknown(self.listing.get(where, {}).get(name, []), self.owned.get(name, {}))

    def ours(
        self, name: str, servers: Sequence[ServerInstance], rec: Record | None
    ) -> list[ServerInstance]:
        """Return those of the servers the rollout made (its marker, or the rule before markers)."""
        recorded = self.owned.get(name, {})
        return ours_of(servers, rec, self.rollout_id, recorded, self.margin)


def _sort(specs: Sequence[PlannedServer], by: _Sources) -> _Sorting:
    """Sort each planned server by what the ledger and NCP say of it, in the order of the rules."""
    out = _Sorting([], [], [], [], [], [], [], [])
    for spec in specs:
        rec = by.known.get(spec.name)
        there = by.unknown(spec.name, (spec.region, spec.vpc_no))
        if rec is not None and rec.state.live and spec.name not in by.gone:
            _sort_live(spec, rec, by, out)  # kept, or being taken down (finished first)
        elif rec is not None and rec.unsettled:
            sent = by.unknown(spec.name, (rec.sent_region, rec.sent_vpc))
            # A row last sent before markers takes any server under its name, as it did then.
            ours = sent if not rec.marked else by.ours(spec.name, sent, rec)
            if ours:
                out.reconciled.append((spec, rec, ours))
            else:
                out.unsettled.append(spec)
        elif rec is not None and (ours := by.ours(spec.name, there, None)):
            out.reconciled.append((spec, rec, ours))  # made after all, late: ours, never resent
        elif there:
            _sort_taken(spec, there, by, out)
        elif rec is not None and rec.state == State.FAILED and not rec.sendable:
            if spec.name in by.retried:  # a dry plan: the row is not planned again yet
                out.to_create.append(spec)
            else:
                out.skipped.append(spec.name)
        else:
            out.to_create.append(spec)
    return out


def _sort_live(spec: PlannedServer, rec: Record, by: _Sources, out: _Sorting) -> None:
    """Sort a server the rollout holds: done; any other server under its name is said, not taken."""
    out.done.append(spec.name)
    mine = by.unknown(spec.name, (rec.region, rec.vpc_no))
    extra = by.ours(spec.name, mine, rec)
    out.duplicates.extend([(rec, extra)] if extra else [])
    out.twins.extend(_twins(spec.name, [m for m in mine if m not in extra], by.rollout_id))


def _sort_taken(
    spec: PlannedServer, there: list[ServerInstance], by: _Sources, out: _Sorting
) -> None:
    """Sort a name NCP lists that the rollout never made: adopted if asked, else a conflict."""
    # Never adopted: a server another rollout (or a probe) made, as its marker says.
    theirs = [t for t in there if _made_elsewhere(t, by.rollout_id)]
    if by.adopt_existing and not theirs:
        out.adopt.append((spec, there))
    else:
        out.conflicts.append((spec.name, _numbers(there)))
        out.theirs.extend((spec.name, t.instance_no) for t in theirs)


async def survey(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    specs: Sequence[PlannedServer],
    *,
    owner: str | None,
    adopt_existing: bool = False,
    retry_failed: bool = False,
    request_timeout: float = DEFAULT_TIMEOUT,
    pause: float = 3.0,
    sleep: Sleep = asyncio.sleep,
) -> Survey:
    """Compare the plan with the ledger and NCP; record what an earlier run left open.

    ``owner`` is this run's lease token; without one (a dry run) nothing is written. Every
    recorded server is refreshed first (``fleet.plan.refresh``, reads ``pause`` seconds apart):
    one gone out of band is planned anew, one stopped is reported to be started.
    The rollout's marker id and window are its ledger's. A row sent before create markers is
    judged by the old rule: a server made within the request timeout and the window of its
    sends.

    Raises:
        RolloutError: names exist that are not this rollout's, unless adopting.

    """
    book = ledger.sync
    own = await ledger.ownership(rollout, window=DEFAULT_WINDOW)
    margin, rollout_id = request_timeout + own.window, own.marker
    seen = await _refreshed(client, ledger, rollout, owner, pause=pause, sleep=sleep)
    gone = frozenset(s.name for s in by_live(seen, Live.GONE))
    if owner is None:
        delta = await ledger.compare(rollout, specs, retry_failed=retry_failed)
    else:
        delta = await ledger.plan(rollout, specs, owner=owner, retry_failed=retry_failed)
    known = {r.name: r for r in await ledger.records(rollout)}
    owned = owned_instances(await ledger.instances(rollout))
    listing = await _listing(client, _groups(specs, known.values()), {s.name for s in specs})
    names = {s.name for s in specs}
    sources = _Sources(
        known,
        owned,
        listing,
        rollout_id,
        margin,
        adopt_existing,
        retried=frozenset(delta.retried),
        gone=gone,
    )
    out = _sort(specs, sources)
    if out.conflicts and owner is not None:
        raise _conflicting(rollout, out.conflicts, book.shown, out.theirs)
    if owner is not None:
        await _record(ledger, rollout, owner, out, rollout_id)
    found = [s for s in seen.values() if s.name in names]
    return _result(out, delta, gone & names, found, await ledger.intents(rollout))


def _result(
    out: _Sorting,
    delta: PlanDelta,
    gone: Iterable[str],
    seen: Sequence[Refreshed],
    intents: Sequence[Instance] = (),
) -> Survey:
    return Survey(
        tuple(out.to_create),
        tuple(out.unsettled),
        tuple(out.done),
        tuple(spec.name for spec, _, _ in out.reconciled),
        tuple(spec.name for spec, _ in out.adopt),
        tuple(out.conflicts),
        tuple(out.skipped),
        tuple((rec.name, _numbers(extra)) for rec, extra in out.duplicates),
        delta,
        gone=tuple(sorted(gone)),
        stopped=tuple(s for s in seen if s.live == Live.STOPPED),
        seen=tuple(seen),
        intents=tuple(intents),
        twins=tuple(out.twins),
    )


def _groups(specs: Sequence[PlannedServer], records: Iterable[Record]) -> set[tuple[str, str]]:
    """Return every (region, VPC) the inventory or the ledger's rows name."""
    groups = {(s.region, s.vpc_no) for s in specs}
    for rec in records:
        groups.add((rec.sent_region, rec.sent_vpc) if rec.unsettled else (rec.region, rec.vpc_no))
    return groups


async def _refreshed(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    owner: str | None,
    *,
    pause: float,
    sleep: Sleep,
) -> dict[str, Refreshed]:
    """Refresh every recorded server; with a lease, write down what was seen and what is gone."""
    seen = await refresh(client, await ledger.instances(rollout), pause=pause, sleep=sleep)
    if owner is not None:
        gone = [s.instance_no for s in by_live(seen, Live.GONE)]
        await ledger.move(rollout, gone, State.GONE, message=GONE_MESSAGE)
        reads = [
            Observed(s.instance_no, s.server.status, s.server.operation)
            for s in seen.values()
            if s.server is not None
        ]
        await ledger.observe(rollout, reads)
    return seen


async def refreshed(
    client: NcpClient,
    instances: Sequence[Instance],
    *,
    pause: float = 3.0,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, Refreshed]:
    """Refresh the recorded servers (``fleet.plan.refresh``): only what NCP listed can be gone."""
    return await refresh(client, instances, pause=pause, sleep=sleep)


def _conflicting(
    rollout: str,
    conflicts: Sequence[tuple[str, str]],
    ledger: str,
    theirs: Sequence[tuple[str, str]] = (),
) -> RolloutError:
    shown = ", ".join(f"{n} ({nos})" for n, nos in conflicts[:10])
    more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
    if theirs:
        made = ", ".join(f"{n} ({no})" for n, no in theirs[:10])
        return RolloutError(
            f"{len(theirs)} server(s) under this rollout's names carry another rollout's create "
            f"marker and are never adopted: {made}. Rename the servers in the inventory, or "
            f"tear that rollout down first. (Ledger in use: {ledger}.)"
        )
    return RolloutError(
        f"{len(conflicts)} server name(s) already exist where this rollout creates them "
        f"and are not part of rollout {rollout!r}: {shown}{more}. Rename them in the "
        "inventory, or pass --adopt-existing to record the existing servers as this "
        f"rollout's. (Ledger in use: {ledger}; if this rollout was recorded in another "
        "ledger, pass that one with --ledger or FLEET_LEDGER.)"
    )


async def _record(
    ledger: AsyncLedger, rollout: str, owner: str, out: _Sorting, rollout_id: str | None
) -> None:
    for spec, rec, servers in out.reconciled:
        found = found_from(servers, rec.sent_region, rec.sent_vpc, rollout_id)
        await ledger.record_created(
            rollout,
            spec.name,
            found,
            request_id=rec.request_id,
            origin="lookup",
            from_states=(State.IN_FLIGHT, State.FAILED, State.PLANNED),
        )
    for spec, servers in out.adopt:
        await ledger.adopt(rollout, spec.name, found_from(servers, spec.region, spec.vpc_no), owner)
    for rec, extra in out.duplicates:
        # The row is created: the extra servers join it as duplicates (record_created keeps a
        # number it did not know as a duplicate rather than dropping it).
        await ledger.record_created(
            rollout,
            rec.name,
            found_from(extra, rec.region, rec.vpc_no, rollout_id),
            request_id=None,
            origin="lookup",
        )


def owned_instances(instances: Sequence[Instance]) -> dict[str, dict[str, str]]:
    """Return the instance numbers the rollout recorded, per server name, with their origin."""
    owned: dict[str, dict[str, str]] = defaultdict(dict)
    for instance in instances:
        owned[instance.name][instance.instance_no] = instance.origin
    return owned
