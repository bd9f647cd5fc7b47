"""Before creating: compare the inventory with the ledger and with what NCP lists.

Every (region, VPC) the rollout touches is listed once. Then per server:
- created before: done (a second server found under its name, made inside the window of its
  sends, is recorded as a duplicate: ours, flagged, and taken down with it);
- a create may be out (in flight, or failed ambiguous): found where it was sent, it is recorded
  (reconciled); otherwise it is left to the engine, which settles it with the same window;
- not sent, and the name exists: someone else's server; the rollout stops (or adopts it);
- refused before with the same parameters: skipped (unless retried);
- otherwise: to create.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .client import NcpClient, ServerInstance
from .errors import RolloutError
from .ledger import AsyncLedger, Instance, PlanDelta, Record, State, TeardownState
from .provisioner import found_from
from .settling import CLAIM_HORIZON, epoch
from .spec import ServerSpec

__all__ = ["CLOCK_SKEW", "Survey", "in_send_window", "survey"]

# How far NCP's createDate (its clock, second resolution) may be from our send times.
CLOCK_SKEW = 120.0

Listing = dict[tuple[str, str], dict[str, list[ServerInstance]]]


@dataclass(frozen=True, slots=True)
class Survey:
    """What a rollout would do, and what it found already there."""

    to_create: tuple[ServerSpec, ...]
    unsettled: tuple[ServerSpec, ...]  # a create may be out, not listed (yet): settled first
    done: tuple[str, ...]  # created by an earlier run of this rollout
    reconciled: tuple[str, ...]  # a create was out when a run stopped, and it does exist
    adopted: tuple[str, ...]  # existed, not ours, and taken over on request
    conflicts: tuple[tuple[str, str], ...]  # (name, instance numbers) existing, not ours
    skipped_failed: tuple[str, ...]  # refused before with these parameters
    duplicates: tuple[tuple[str, str], ...]  # (name, instance numbers): several servers, ours
    delta: PlanDelta

    @property
    def work(self) -> tuple[ServerSpec, ...]:
        """Return the servers the engine has to settle or create, in inventory order."""
        return self.unsettled + self.to_create


def in_send_window(record: Record, server: ServerInstance, margin: float) -> bool:
    """Whether NCP made this server while this row's creates were going out."""
    made = epoch(server.create_date)
    first, last = epoch(record.first_sent_at), epoch(record.sent_at)
    if made is None or first is None or last is None:
        return False
    return first - CLOCK_SKEW <= made <= last + CLAIM_HORIZON + margin + CLOCK_SKEW


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
    to_create: list[ServerSpec]
    unsettled: list[ServerSpec]
    done: list[str]
    reconciled: list[tuple[ServerSpec, Record, list[ServerInstance]]]
    adopt: list[tuple[ServerSpec, list[ServerInstance]]]
    conflicts: list[tuple[str, str]]
    skipped: list[str]
    duplicates: list[tuple[Record, list[ServerInstance]]]


def _numbers(servers: Sequence[ServerInstance]) -> str:
    return " ".join(s.instance_no for s in servers)


def _sort(
    specs: Sequence[ServerSpec],
    known: dict[str, Record],
    owned: dict[str, set[str]],
    listing: Listing,
    *,
    adopt_existing: bool,
    margin: float,
) -> _Sorting:
    out = _Sorting([], [], [], [], [], [], [], [])
    for spec in specs:
        rec = known.get(spec.name)
        there = listing.get((spec.region, spec.vpc_no), {}).get(spec.name, [])
        if (
            rec is not None
            and rec.state == State.CREATED
            and rec.teardown != TeardownState.TERMINATED
        ):
            out.done.append(spec.name)
            ours = owned.get(spec.name, set())
            mine = listing.get((rec.region, rec.vpc_no), {}).get(spec.name, [])
            extra = [
                s for s in mine if s.instance_no not in ours and in_send_window(rec, s, margin)
            ]
            if extra:
                out.duplicates.append((rec, extra))
        elif rec is not None and rec.unsettled:
            sent = listing.get((rec.sent_region, rec.sent_vpc), {}).get(spec.name, [])
            if sent:
                out.reconciled.append((spec, rec, sent))
            else:
                out.unsettled.append(spec)
        elif there:
            if adopt_existing:
                out.adopt.append((spec, there))
            else:
                out.conflicts.append((spec.name, _numbers(there)))
        elif rec is not None and rec.state == State.FAILED and not rec.sendable:
            out.skipped.append(spec.name)
        else:
            out.to_create.append(spec)
    return out


async def survey(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    specs: Sequence[ServerSpec],
    *,
    owner: str | None,
    adopt_existing: bool = False,
    retry_failed: bool = False,
    margin: float = 60.0,
    clock: Callable[[], float] = time.time,
) -> Survey:
    """Compare the plan with the ledger and NCP; record what an earlier run left open.

    ``owner`` is this run's lease token; without one (a dry run) nothing is written.
    ``margin`` is how long after its last send a create may still have made a server (the
    request timeout and the settle window).

    Raises:
        RolloutError: names exist that are not this rollout's, unless adopting.

    """
    book = ledger.sync
    if owner is None:
        delta = await ledger.run(book.compare, rollout, specs, retry_failed=retry_failed)
    else:
        delta = await ledger.run(book.plan, rollout, specs, owner=owner, retry_failed=retry_failed)
    known = {r.name: r for r in await ledger.run(book.records, rollout)}
    owned = owned_instances(await ledger.run(book.instances, rollout))
    groups = {(s.region, s.vpc_no) for s in specs}
    for rec in known.values():
        groups.add((rec.sent_region, rec.sent_vpc) if rec.unsettled else (rec.region, rec.vpc_no))
    listing = await _listing(client, groups, {s.name for s in specs})
    out = _sort(specs, known, owned, listing, adopt_existing=adopt_existing, margin=margin)
    if out.conflicts and owner is not None:
        shown = ", ".join(f"{n} ({nos})" for n, nos in out.conflicts[:10])
        more = f" and {len(out.conflicts) - 10} more" if len(out.conflicts) > 10 else ""
        raise RolloutError(
            f"{len(out.conflicts)} server name(s) already exist where this rollout creates them "
            f"and are not part of rollout {rollout!r}: {shown}{more}. Rename them in the "
            "inventory, or pass --adopt-existing to record the existing servers as this "
            f"rollout's. (Ledger in use: {book.shown}; if this rollout was recorded in another "
            "ledger, pass that one with --ledger or FLEET_LEDGER.)"
        )
    if owner is not None:
        await _record(ledger, rollout, owner, out)
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
    )


async def _record(ledger: AsyncLedger, rollout: str, owner: str, out: _Sorting) -> None:
    book = ledger.sync
    for spec, rec, servers in out.reconciled:
        found = found_from(servers, rec.sent_region, rec.sent_vpc)
        await ledger.run(
            book.record_created,
            rollout,
            spec.name,
            found,
            request_id=rec.request_id,
            origin="lookup",
        )
    for spec, servers in out.adopt:
        await ledger.run(
            book.adopt, rollout, spec.name, found_from(servers, spec.region, spec.vpc_no), owner
        )
    for rec, extra in out.duplicates:
        # The row is created: the extra servers join it as duplicates (record_created keeps a
        # number it did not know as a duplicate rather than dropping it).
        await ledger.run(
            book.record_created,
            rollout,
            rec.name,
            found_from(extra, rec.region, rec.vpc_no),
            request_id=None,
            origin="lookup",
        )


def owned_instances(instances: Sequence[Instance]) -> dict[str, set[str]]:
    """Return the instance numbers the rollout owns, per server name."""
    owned: dict[str, set[str]] = defaultdict(set)
    for instance in instances:
        owned[instance.name].add(instance.instance_no)
    return owned
