"""The Ledger: one object for every read and write of a rollout's record, on either backend.

Each method is one transaction around one function of the modules beside it (``planning``,
``outcomes``, ``changing``, ``tracking``, ``leases``, ``rollouts``, ``extras``, ``addresses``,
``queries``), which hold the SQL; every write is fenced by the rollout's lease. ``AsyncLedger``
(``aio``) offers the same methods, awaited, on a thread of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleet.errors import ErrorKind, LedgerConflict, NcpError
from fleet.planned import PlannedServer
from fleet.states import State

from . import (
    addresses,
    changing,
    extras,
    leases,
    lifecycle,
    names,
    outcomes,
    planning,
    queries,
    rollouts,
    tracking,
)
from .addresses import Address
from .base import DEFAULT_LEDGER, LedgerBase
from .lifecycle import Observed
from .model import Binding, Extra, Instance, LeaseInfo, Ownership, PlanDelta, Record, RolloutCounts
from .outcomes import Found
from .rows import iso

__all__ = ["DEFAULT_LEDGER", "Ledger"]


# One class for every operation, as its size says (the size rule names it as the exception): a
# facade of one-transaction methods, each a few lines around a function that holds the SQL.
class Ledger(LedgerBase):
    """A ledger of rollouts (SQLite file or PostgreSQL URL); safe to share between threads."""

    # -- planning ------------------------------------------------------------------------------

    def compare(
        self, rollout: str, specs: Sequence[PlannedServer], *, retry_failed: bool = False
    ) -> PlanDelta:
        """Say how an inventory differs from the ledger's record of the rollout; write nothing."""
        with self.db.transaction() as conn:
            return planning.compare(conn, rollout, specs, retry_failed=retry_failed)

    def plan(
        self,
        rollout: str,
        specs: Sequence[PlannedServer],
        *,
        owner: str,
        retry_failed: bool = False,
    ) -> PlanDelta:
        """Enter the rollout's servers under this run's lease, and say what changed since."""
        with self.db.transaction() as conn:
            leases.check(conn, self._now(conn), rollout, owner)
            return planning.plan(conn, self._stamp(conn), rollout, specs, retry_failed=retry_failed)

    # -- the engine's state changes (each a compare-and-set) ------------------------------

    def claim(
        self,
        rollout: str,
        spec: PlannedServer,
        owner: str,
        run: str | None = None,
        ncp: float | None = None,
    ) -> int:
        """Mark a server in flight before its create goes out; return its attempt number.

        ``run`` is the tag its create marker carries (None: sent without one); ``ncp`` is NCP's
        clock now, as its answers' Date gave it (None: no answer came yet).
        """
        with self.db.transaction() as conn:
            now = self._now(conn)
            return outcomes.claim(conn, now, iso(now), rollout, spec, owner, run, ncp)

    def resend(
        self, rollout: str, name: str, attempt: int, owner: str, ncp: float | None = None
    ) -> int:
        """Record that an in-flight create goes out again; return the new attempt number."""
        with self.db.transaction() as conn:
            now = self._now(conn)
            return outcomes.resend(conn, now, iso(now), rollout, name, attempt, owner, ncp)

    def claim_many(
        self,
        rollout: str,
        specs: Sequence[PlannedServer],
        owner: str,
        run: str | None = None,
        ncp: float | None = None,
    ) -> list[int | LedgerConflict]:
        """Claim several servers in one commit, ahead of their creates (see outcomes.claim_many)."""
        with self.db.transaction() as conn:
            now = self._now(conn)
            return outcomes.claim_many(conn, now, iso(now), rollout, specs, owner, run, ncp)

    def restamp(
        self, rollout: str, name: str, attempt: int, owner: str, ncp: float | None = None
    ) -> None:
        """Stamp a claim's send time anew: its create goes out later than its claim promised."""
        with self.db.transaction() as conn:
            now = self._now(conn)
            outcomes.restamp(conn, now, iso(now), rollout, name, attempt, owner, ncp)

    def unclaim(self, rollout: str, name: str, attempt: int) -> None:
        """Undo a claim whose create never went out (the run stopped first)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.unclaim(conn, self._stamp(conn), rollout, name, attempt)

    def record_created(
        self,
        rollout: str,
        name: str,
        found: Sequence[Found],
        *,
        request_id: str | None,
        origin: str = "answer",
        from_states: Sequence[State] = (State.IN_FLIGHT,),
        run: str | None = None,
    ) -> None:
        """Record the server(s) a create made or a look-up found under this name.

        ``run`` is the run that created them (its create marker's), when fleet did.
        """
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.record_created(
                conn,
                self._stamp(conn),
                rollout,
                name,
                found,
                request_id=request_id,
                origin=origin,
                from_states=from_states,
                run=run,
            )

    def adopt(self, rollout: str, name: str, found: Sequence[Found], owner: str) -> None:
        """Record existing servers under a planned name as this rollout's (on request only)."""
        with self.db.transaction() as conn:
            leases.check(conn, self._now(conn), rollout, owner)
            outcomes.record_created(
                conn,
                self._stamp(conn),
                rollout,
                name,
                found,
                request_id=None,
                origin="adopted",
                from_states=(State.PLANNED, State.FAILED),
            )

    def record_failed(self, rollout: str, name: str, error: NcpError) -> None:
        """Record that NCP refused a server's create, or that its retries ran out."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.record_failed(conn, self._stamp(conn), rollout, name, error)

    def note_ambiguous(self, rollout: str, name: str, error: NcpError) -> None:
        """Record that a create's outcome is unknown (the server stays in flight)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.note_ambiguous(conn, self._stamp(conn), rollout, name, error)

    def note_lookup_failed(self, rollout: str, name: str, error: NcpError) -> None:
        """Record why an unsettled server could not be looked up."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.note_lookup_failed(conn, self._stamp(conn), rollout, name, error)

    def release_absent(self, rollout: str, spec: PlannedServer, attempt: int) -> None:
        """Record that a server surely does not exist: planned again with these parameters."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.release_absent(conn, self._stamp(conn), rollout, spec, attempt)

    def clear_absent(self, rollout: str, name: str, attempt: int) -> None:
        """Record that a create surely made nothing (a teardown's look-up): planned again."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.clear_absent(conn, self._stamp(conn), rollout, name, attempt)

    def give_up(self, rollout: str, name: str, attempt: int, message: str) -> None:
        """Record that every create of a server was ambiguous and none was found."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.give_up(conn, self._stamp(conn), rollout, name, attempt, message)

    def record_resized(self, rollout: str, spec: PlannedServer, instance_no: str) -> None:
        """Record that a created server was changed in place to the inventory's parameters."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            changing.record_resized(conn, self._stamp(conn), rollout, spec, instance_no)

    def begin_replace(
        self, rollout: str, spec: PlannedServer, instance_no: str, run: str | None = None
    ) -> None:
        """Plan a server anew under its name; its old instance is deposed (the intent)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            changing.begin_replace(conn, self._stamp(conn), rollout, spec, instance_no, run)

    def restore(self, rollout: str, instance_no: str) -> bool:
        """Make a deposed server its name's own again (its replacement failed or went)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            return changing.restore(conn, self._stamp(conn), rollout, instance_no)

    # -- after creation: each server's life ------------------------------------------------

    def observe(self, rollout: str, seen: Iterable[Observed]) -> None:
        """Record what reads showed of recorded servers: status, first seen, life moved."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            lifecycle.observe(conn, self._stamp(conn), rollout, list(seen))

    def move(
        self,
        rollout: str,
        numbers: Sequence[str],
        to: State,
        *,
        intent: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> list[str]:
        """Move recorded servers to ``to`` where their state allows; return the numbers moved."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            stamp = self._stamp(conn)
            return lifecycle.move(conn, stamp, rollout, numbers, to, intent=intent, message=message)

    def accepted_terminate(self, rollout: str, numbers: Sequence[str]) -> None:
        """Record that NCP accepted our terminate of these servers."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            lifecycle.accepted_terminate(conn, self._stamp(conn), rollout, numbers)

    def missed(self, rollout: str, numbers: Sequence[str]) -> None:
        """Count one more read in a row that did not show these servers."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            lifecycle.missed(conn, rollout, numbers)

    def intents(self, rollout: str) -> list[Instance]:
        """Return the rollout's servers with a change under way, for a run to finish."""
        with self.db.transaction() as conn:
            return lifecycle.intents(conn, rollout)

    def release_names(self, rollout: str) -> None:
        """Release the names under which the rollout holds no live server (it was torn down)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            names.release_idle(conn, rollout)

    def note_error(
        self, rollout: str, name: str, kind: ErrorKind, message: str, code: str | None = None
    ) -> None:
        """Record a problem with a server that exists (a failure status, a timeout)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            tracking.note_error(conn, self._stamp(conn), rollout, name, kind, message, code)

    # -- bindings, leases, the rollout's own row --------------------------------------------

    def bind(self, binding: Binding, *, rebind: bool = False) -> Binding:
        """Bind a rollout to an endpoint and account, or check it is already bound to them."""
        with self.db.transaction() as conn:
            self._fence(conn, binding.rollout)
            return leases.bind(conn, self._stamp(conn), binding, rebind=rebind)

    def binding(self, rollout: str) -> Binding | None:
        """Return where a rollout's servers live, if it was ever run."""
        with self.db.transaction() as conn:
            return leases.read_binding(conn, rollout)

    def acquire(self, rollout: str, owner: str, holder: str, ttl: float) -> LeaseInfo:
        """Take a rollout's lease (raise LeaseHeld, naming the holder, if another run has it)."""
        with self.db.transaction() as conn:
            lease = leases.acquire(conn, self._now(conn), rollout, owner, holder, ttl)
        self._owners[rollout] = owner
        return lease

    def renew(self, rollout: str, owner: str, ttl: float) -> None:
        """Push this run's lease expiry forward (raise LeaseLost if it was taken)."""
        with self.db.transaction() as conn:
            leases.renew(conn, self._now(conn), rollout, owner, ttl)

    def release(self, rollout: str, owner: str) -> None:
        """Give this run's lease up."""
        if self._owners.get(rollout) == owner:
            del self._owners[rollout]
        with self.db.transaction() as conn:
            leases.release(conn, rollout, owner)

    def lease(self, rollout: str) -> LeaseInfo | None:
        """Return who holds a rollout's lease, if anyone does (expired leases included)."""
        with self.db.transaction() as conn:
            return leases.read_lease(conn, rollout)

    def ownership(self, rollout: str, *, window: float, new_marker: str | None = None) -> Ownership:
        """Return the rollout's create-marker id and absence window, as its ledger keeps them.

        With ``new_marker`` (a run holding the lease): the rollout gets that id if it has none
        yet, and keeps this run's ``window``, which every later path that judges absence reads
        (a teardown has no window of its own). Without: a read, ``window`` standing in for a
        rollout that kept none.
        """
        with self.db.transaction() as conn:
            if new_marker is not None:
                self._fence(conn, rollout)
            return rollouts.ownership(conn, rollout, window, new_marker)

    def retire(self, rollout: str, *, revive: bool = False) -> None:
        """Mark a rollout torn down (no run creates it again), or, with ``revive``, alive again."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            rollouts.retire(conn, self._stamp(conn), rollout, revive=revive)

    def retired(self, rollout: str) -> str | None:
        """Return when a rollout was torn down, if it is retired."""
        with self.db.transaction() as conn:
            return rollouts.retired(conn, rollout)

    def remember_rate(self, endpoint: str, account: str, rate: float) -> None:
        """Keep the call rate a gateway allowed this account, for the next run to start near."""
        with self.db.transaction() as conn:
            rollouts.remember_rate(conn, self._stamp(conn), endpoint, account, rate)

    def known_rate(self, endpoint: str, account: str) -> float | None:
        """Return the rate the last run found for this endpoint and account, if any."""
        with self.db.transaction() as conn:
            return rollouts.known_rate(conn, endpoint, account)

    def forget(self, rollout: str, *, unbound_is_rehearsal: bool = False) -> None:
        """Delete a rehearsal rollout's records (its simulator, and servers, are gone).

        ``unbound_is_rehearsal``: a rollout bound nowhere (from before bindings existed) counts
        as a rehearsal; only for the rehearsal ledger itself.

        Raises:
            LedgerError: the rollout is not bound to a rehearsal: real servers are never forgotten.

        """
        with self.db.transaction() as conn:
            rollouts.forget(conn, rollout, unbound_is_rehearsal=unbound_is_rehearsal)

    # -- what creates made beside their servers, and where servers are reached --------------

    def keep_extras(self, rollout: str, items: Sequence[Extra]) -> None:
        """Write down public IPs and disks to return, before their servers are stopped."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            extras.keep(conn, self._stamp(conn), rollout, items)

    def extras(self, rollout: str) -> list[Extra]:
        """Return what the rollout's creates made beside their servers, not yet returned."""
        with self.db.transaction() as conn:
            return extras.unreturned(conn, rollout)

    def extras_returned(self, rollout: str, items: Sequence[Extra]) -> None:
        """Record that these were returned (or were gone with their server)."""
        if items:
            with self.db.transaction() as conn:
                self._fence(conn, rollout)
                extras.returned(conn, self._stamp(conn), rollout, items)

    def set_addresses(self, rollout: str, seen: Sequence[Address]) -> None:
        """Record (or replace) the addresses of servers just seen RUN."""
        if seen:
            with self.db.transaction() as conn:
                self._fence(conn, rollout)
                addresses.record(conn, self._stamp(conn), rollout, seen)

    def addresses(self, rollout: str) -> dict[str, Address]:
        """Return the addresses known for a rollout's servers, by instance number."""
        with self.db.transaction() as conn:
            return addresses.known(conn, rollout)

    # -- reading -------------------------------------------------------------------------------

    def records(self, rollout: str, names: Sequence[str] | None = None) -> list[Record]:
        """Return a rollout's servers (or only these ``names``), in inventory order."""
        with self.db.transaction() as conn:
            return queries.records(conn, rollout, names)

    def names(self, rollout: str) -> list[str]:
        """Return a rollout's server names, in inventory order (its rows, read page by page)."""
        with self.db.transaction() as conn:
            return queries.names_of(conn, rollout)

    def record(self, rollout: str, name: str) -> Record | None:
        """Return one server's row, if the rollout has it."""
        with self.db.transaction() as conn:
            return queries.record(conn, rollout, name)

    def instances(self, rollout: str, names: Sequence[str] | None = None) -> list[Instance]:
        """Return every NCP instance the rollout owns (or only these ``names``')."""
        with self.db.transaction() as conn:
            return queries.instances_of(conn, rollout, names)

    def counts(self, rollout: str) -> RolloutCounts:
        """Return a rollout's servers per state."""
        with self.db.transaction() as conn:
            return queries.counts(conn, rollout)

    def rollouts(self) -> list[str]:
        """Return the names of every rollout in the ledger."""
        with self.db.transaction() as conn:
            return queries.rollout_names(conn)
