"""The provisioning engine: survey, then create each server once, recording every outcome.

The rules that make a rollout safe to interrupt and rerun:
- a server is ``in_flight`` in the ledger before its create goes out;
- only failures NCP did not process are retried blindly (inside the client);
- after an ambiguous failure (timeout, lost connection, 5xx) the server is looked up by its exact
  name first, and created again only if it is not there;
- a rerun skips what was created, looks up everything ``in_flight``, and sends only the rest;
- a name that exists in the VPC but is not this rollout's stops the rollout (or is adopted).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .client import NcpClient, ServerInstance
from .errors import AmbiguousError, NcpError, RolloutError
from .ledger import Ledger, PlanDelta, Record, State
from .spec import ServerSpec

__all__ = ["Preflight", "Progress", "Provisioner"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Progress:
    """Running counts of a rollout, for progress bars and artifacts."""

    total: int = 0
    done: int = 0
    created: int = 0
    failed: int = 0
    unknown: int = 0  # in flight and could not be looked up: a rerun settles them
    running: int = 0  # seen in status RUN, when waiting for it
    waiting: bool = False  # creating is over; waiting for RUN


@dataclass(frozen=True, slots=True)
class Preflight:
    """What a rollout would do, and what it found already there."""

    to_create: tuple[ServerSpec, ...]
    done: tuple[str, ...]  # created by an earlier run of this rollout
    reconciled: tuple[str, ...]  # were in flight when a run stopped, and do exist
    adopted: tuple[str, ...]  # existed, not ours, and taken over on request
    conflicts: tuple[tuple[str, str], ...]  # (name, instance numbers) existing, not ours
    skipped_failed: tuple[str, ...]  # failed permanently with these parameters before
    delta: PlanDelta


ProgressHook = Callable[[Progress], Awaitable[None] | None]


class Provisioner:
    """Creates a rollout's servers through one client, recording everything in the ledger."""

    def __init__(
        self,
        client: NcpClient,
        ledger: Ledger,
        rollout: str,
        *,
        max_create_attempts: int = 3,
        settle_seconds: float = 2.0,
        workers: int = 32,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_progress: ProgressHook | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.rollout = rollout
        self.max_create_attempts = max_create_attempts
        # After an ambiguous failure, give NCP a moment to show a server it did create before
        # deciding it does not exist.
        self.settle_seconds = settle_seconds
        # Servers are taken from a queue by a bounded set of workers: a coroutine per server
        # would hold thousands of waiting states and stall the loop when they all start.
        self.workers = workers
        self._sleep = sleep
        self._on_progress = on_progress
        self.progress = Progress()

    async def existing(self, specs: Sequence[ServerSpec]) -> dict[str, list[ServerInstance]]:
        """Return the servers already in the target VPCs whose names the plan uses."""
        wanted = {s.name for s in specs}
        found: dict[str, list[ServerInstance]] = defaultdict(list)
        for vpc in sorted({s.vpc_no for s in specs}):
            for server in await self.client.list_servers(vpc_no=vpc):
                if server.name in wanted:
                    found[server.name].append(server)
        return dict(found)

    async def preflight(
        self, specs: Sequence[ServerSpec], *, adopt_existing: bool = False, dry_run: bool = False
    ) -> Preflight:
        """Compare the plan with the ledger and with NCP; settle what an earlier run left open.

        Raises RolloutError when names exist that are not this rollout's, unless adopting.
        With ``dry_run`` nothing is written.
        """
        if dry_run:
            delta = self.ledger.compare(self.rollout, specs)
        else:
            delta = self.ledger.plan(self.rollout, specs)
        known = {r.name: r for r in self.ledger.records(self.rollout)}
        existing = await self.existing(specs)
        to_create: list[ServerSpec] = []
        done, reconciled, adopted, skipped = [], [], [], []
        conflicts: list[tuple[str, str]] = []
        for spec in specs:
            rec = known.get(spec.name)
            there = existing.get(spec.name, [])
            if rec is not None and rec.state == State.CREATED:
                done.append(spec.name)
            elif there and rec is not None and rec.state == State.IN_FLIGHT:
                # Our create went out before the last run stopped, and it did land.
                reconciled.append(spec.name)
                if not dry_run:
                    self._record_found(spec, there, request_id=rec.request_id)
            elif there:
                numbers = " ".join(s.instance_no for s in there)
                if adopt_existing:
                    adopted.append(spec.name)
                    if not dry_run:
                        self._record_found(spec, there, request_id=None, adopted=True)
                else:
                    conflicts.append((spec.name, numbers))
            elif rec is not None and not rec.retryable and rec.params_hash == spec.params_hash:
                skipped.append(spec.name)
            else:
                to_create.append(spec)
        if conflicts and not dry_run:
            shown = ", ".join(f"{n} ({nos})" for n, nos in conflicts[:10])
            more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
            raise RolloutError(
                f"{len(conflicts)} server name(s) already exist in the VPC and are not part of "
                f"rollout {self.rollout!r}: {shown}{more}. Rename them in the inventory, or "
                "pass --adopt-existing to record the existing servers as this rollout's."
            )
        return Preflight(
            tuple(to_create),
            tuple(done),
            tuple(reconciled),
            tuple(adopted),
            tuple(conflicts),
            tuple(skipped),
            delta,
        )

    def _record_found(
        self,
        spec: ServerSpec,
        there: Sequence[ServerInstance],
        *,
        request_id: str | None,
        adopted: bool = False,
    ) -> None:
        # Several servers with one name means someone else made one too; the lowest number is
        # the oldest, and all of them are kept in the record so none is lost from view.
        chosen = min(there, key=lambda s: (len(s.instance_no), s.instance_no))
        if len(there) > 1:
            log.warning(
                "%s: %d servers carry this name (%s); recording %s",
                spec.name,
                len(there),
                ", ".join(s.instance_no for s in there),
                chosen.instance_no,
            )
        response = dict(chosen.raw)
        if len(there) > 1:
            response["fleetSameName"] = [s.instance_no for s in there]
        self.ledger.mark_created(
            self.rollout,
            spec.name,
            chosen.instance_no,
            request_id=request_id,
            response=response,
            server_status=chosen.status,
            adopted=adopted,
        )

    async def provision(self, specs: Sequence[ServerSpec]) -> list[Record]:
        """Create these servers concurrently (the client's limiter sets the pace).

        Safe to call again with the same servers (a retried task, a second call): what the
        ledger holds as created is skipped, and what it holds in flight is looked up first.
        """
        queue = iter(specs)  # shared by the workers: each server is taken exactly once

        async def worker() -> None:
            for spec in queue:
                await self._provision_one(spec)

        await asyncio.gather(*(worker() for _ in range(min(self.workers, len(specs)))))
        return [r for r in (self.ledger.record(self.rollout, s.name) for s in specs) if r]

    async def _provision_one(self, spec: ServerSpec) -> None:
        last: NcpError | None = None
        known = self.ledger.record(self.rollout, spec.name)
        if known is not None and known.state == State.CREATED:
            return
        # Sent before, outcome never recorded: it may exist, so look before sending again.
        if (
            known is not None
            and known.state == State.IN_FLIGHT
            and await self._look_up(spec, None, settle=False) is not False
        ):
            return

        def in_flight() -> None:
            # Written when the limiter lets the call go, not while it queues: after a crash only
            # the calls that were really on their way need looking up.
            self.ledger.mark_in_flight(self.rollout, spec.name)

        for _ in range(self.max_create_attempts):
            try:
                result = await self.client.create_server(spec.params, before_send=in_flight)
                server = next((s for s in result.servers if s.name == spec.name), None)
                server = server or (result.servers[0] if result.servers else None)
                if server is None:
                    raise AmbiguousError(
                        "create answered success with no server in it",
                        action="createServerInstances",
                        request_id=result.request_id,
                    )
            except AmbiguousError as exc:
                last = exc
                log.info("%s: create may have gone through (%s); looking it up", spec.name, exc)
                found = await self._look_up(spec, exc)
                if found is None:
                    return  # could not tell; left in flight for a rerun to settle
                if found:
                    return
                continue  # it is not there: creating again cannot duplicate it
            except NcpError as exc:
                self.ledger.mark_failed(self.rollout, spec.name, exc)
                await self._count("failed")
                return
            self.ledger.mark_created(
                self.rollout,
                spec.name,
                server.instance_no,
                request_id=result.request_id,
                response=server.raw,
                server_status=server.status,
            )
            await self._count("created")
            return
        assert last is not None
        self.ledger.mark_failed(self.rollout, spec.name, last)
        await self._count("failed")

    async def _look_up(
        self, spec: ServerSpec, cause: AmbiguousError | None, *, settle: bool = True
    ) -> bool | None:
        """After an ambiguous create: True if found (recorded), False if absent, None if unknown."""
        try:
            if settle:
                await self._sleep(self.settle_seconds)
            there = await self.client.find_by_name(spec.name, spec.vpc_no)
        except NcpError as lookup_error:
            self.ledger.mark_failed(self.rollout, spec.name, lookup_error, state=State.IN_FLIGHT)
            await self._count("unknown")
            return None
        if not there:
            self.ledger.mark_planned(self.rollout, spec.name)
            return False
        self._record_found(spec, there, request_id=cause.request_id if cause else None)
        await self._count("created")
        return True

    async def _count(self, outcome: str) -> None:
        p = self.progress
        p.done += 1
        setattr(p, outcome, getattr(p, outcome) + 1)
        if self._on_progress is not None:
            result = self._on_progress(p)
            if result is not None:
                await result
