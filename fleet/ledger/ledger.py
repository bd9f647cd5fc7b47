"""The Ledger: one object for every read and write of a rollout's record, on either backend."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

from fleet.config import LedgerLocation
from fleet.errors import LedgerError, NcpError
from fleet.spec import ServerSpec
from fleet.states import ErrorKind, ServerStatus, State, TeardownState

from . import leases, outcomes, planning, queries, tracking
from .model import Binding, Instance, LeaseInfo, PlanDelta, Record, RolloutCounts
from .outcomes import Found
from .rows import iso
from .schema import instances, rates, rollouts, servers
from .schema import leases as lease_table
from .store import Database, open_database

__all__ = ["DEFAULT_LEDGER", "Ledger"]

DEFAULT_LEDGER = Path(".fleet") / "ledger.db"


class Ledger:
    """A ledger of rollouts (SQLite file or PostgreSQL URL); safe to share between threads."""

    def __init__(
        self,
        location: str | os.PathLike[str] | LedgerLocation = DEFAULT_LEDGER,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db: Database = open_database(location)
        self._clock = clock

    @property
    def shown(self) -> str:
        """Return where the ledger is, as it may be shown (a URL's password redacted)."""
        return self.db.shown

    def __repr__(self) -> str:
        return f"Ledger({self.shown!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connections."""
        self.db.close()

    def now(self) -> float:
        """Return the ledger's clock (epoch seconds)."""
        return self._clock()

    def _stamp(self) -> str:
        return iso(self._clock())

    # -- bindings and leases ----------------------------------------------------------------

    def bind(self, binding: Binding, *, rebind: bool = False) -> Binding:
        """Bind a rollout to an endpoint and account, or check it is already bound to them."""
        with self.db.transaction() as conn:
            return leases.bind(conn, self._stamp(), binding, rebind=rebind)

    def binding(self, rollout: str) -> Binding | None:
        """Return where a rollout's servers live, if it was ever run."""
        with self.db.transaction() as conn:
            return leases.read_binding(conn, rollout)

    def acquire(self, rollout: str, owner: str, holder: str, ttl: float) -> LeaseInfo:
        """Take a rollout's lease (raise LeaseHeld, naming the holder, if another run has it)."""
        with self.db.transaction() as conn:
            return leases.acquire(conn, self._clock(), rollout, owner, holder, ttl)

    def renew(self, rollout: str, owner: str, ttl: float) -> None:
        """Push this run's lease expiry forward (raise LeaseLost if it was taken)."""
        with self.db.transaction() as conn:
            leases.renew(conn, self._clock(), rollout, owner, ttl)

    def release(self, rollout: str, owner: str) -> None:
        """Give this run's lease up."""
        with self.db.transaction() as conn:
            leases.release(conn, rollout, owner)

    def lease(self, rollout: str) -> LeaseInfo | None:
        """Return who holds a rollout's lease, if anyone does (expired leases included)."""
        with self.db.transaction() as conn:
            return leases.read_lease(conn, rollout)

    # -- rates -------------------------------------------------------------------------------

    def remember_rate(self, endpoint: str, account: str, rate: float) -> None:
        """Keep the call rate a gateway allowed this account, for the next run to start near."""
        with self.db.transaction() as conn:
            conn.execute(
                rates.delete().where(rates.c.endpoint == endpoint, rates.c.account == account)
            )
            conn.execute(
                rates.insert().values(
                    endpoint=endpoint, account=account, rate=rate, found_at=self._stamp()
                )
            )

    def known_rate(self, endpoint: str, account: str) -> float | None:
        """Return the rate the last run found for this endpoint and account, if any."""
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(rates.c.rate).where(
                    rates.c.endpoint == endpoint, rates.c.account == account
                )
            ).first()
        return None if row is None else float(row.rate)

    # -- planning ------------------------------------------------------------------------------

    def compare(
        self, rollout: str, specs: Sequence[ServerSpec], *, retry_failed: bool = False
    ) -> PlanDelta:
        """Say how an inventory differs from the ledger's record of the rollout; write nothing."""
        with self.db.transaction() as conn:
            return planning.compare(conn, rollout, specs, retry_failed=retry_failed)

    def plan(
        self,
        rollout: str,
        specs: Sequence[ServerSpec],
        *,
        owner: str,
        retry_failed: bool = False,
    ) -> PlanDelta:
        """Enter the rollout's servers under this run's lease, and say what changed since."""
        with self.db.transaction() as conn:
            leases.check(conn, self._clock(), rollout, owner)
            return planning.plan(conn, self._stamp(), rollout, specs, retry_failed=retry_failed)

    # -- the engine's state changes (each a compare-and-set) ------------------------------

    def claim(self, rollout: str, spec: ServerSpec, owner: str) -> int:
        """Mark a server in flight before its create goes out; return its attempt number."""
        with self.db.transaction() as conn:
            return outcomes.claim(conn, self._clock(), self._stamp(), rollout, spec, owner)

    def resend(self, rollout: str, name: str, attempt: int, owner: str) -> int:
        """Record that an in-flight create goes out again; return the new attempt number."""
        with self.db.transaction() as conn:
            return outcomes.resend(
                conn, self._clock(), self._stamp(), rollout, name, attempt, owner
            )

    def record_created(
        self,
        rollout: str,
        name: str,
        found: Sequence[Found],
        *,
        request_id: str | None,
        origin: str = "answer",
        from_states: Sequence[State] = (State.IN_FLIGHT,),
        at: float | None = None,
    ) -> None:
        """Record the server(s) a create made or a look-up found under this name.

        ``at`` is when NCP's answer arrived (default: now), so a busy ledger thread does not
        make servers look younger than they are.
        """
        with self.db.transaction() as conn:
            outcomes.record_created(
                conn,
                iso(self._clock() if at is None else at),
                rollout,
                name,
                found,
                request_id=request_id,
                origin=origin,
                from_states=from_states,
            )

    def adopt(self, rollout: str, name: str, found: Sequence[Found], owner: str) -> None:
        """Record existing servers under a planned name as this rollout's (on request only)."""
        with self.db.transaction() as conn:
            leases.check(conn, self._clock(), rollout, owner)
            outcomes.record_created(
                conn,
                self._stamp(),
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
            outcomes.record_failed(conn, self._stamp(), rollout, name, error)

    def note_ambiguous(self, rollout: str, name: str, error: NcpError) -> None:
        """Record that a create's outcome is unknown (the server stays in flight)."""
        with self.db.transaction() as conn:
            outcomes.note_ambiguous(conn, self._stamp(), rollout, name, error)

    def note_lookup_failed(self, rollout: str, name: str, error: NcpError) -> None:
        """Record why an unsettled server could not be looked up."""
        with self.db.transaction() as conn:
            outcomes.note_lookup_failed(conn, self._stamp(), rollout, name, error)

    def release_absent(self, rollout: str, spec: ServerSpec, attempt: int) -> None:
        """Record that a server surely does not exist: planned again with these parameters."""
        with self.db.transaction() as conn:
            outcomes.release_absent(conn, self._stamp(), rollout, spec, attempt)

    def give_up(self, rollout: str, name: str, attempt: int, message: str) -> None:
        """Record that every create of a server was ambiguous and none was found."""
        with self.db.transaction() as conn:
            outcomes.give_up(conn, self._stamp(), rollout, name, attempt, message)

    # -- after creation ----------------------------------------------------------------------

    def set_status(
        self, rollout: str, updates: Iterable[tuple[str, ServerStatus, float | None]]
    ) -> None:
        """Record servers' NCP status (name, status, seconds from created to ready or None)."""
        with self.db.transaction() as conn:
            tracking.set_status(conn, self._stamp(), rollout, updates)

    def note_error(
        self, rollout: str, name: str, kind: ErrorKind, message: str, code: str | None = None
    ) -> None:
        """Record a problem with a server that exists (a failure status, a timeout)."""
        with self.db.transaction() as conn:
            tracking.note_error(conn, self._stamp(), rollout, name, kind, message, code)

    def set_teardown(
        self,
        rollout: str,
        instance_nos: Sequence[str],
        state: TeardownState,
        *,
        message: str | None = None,
    ) -> None:
        """Record how far the teardown of these instances has come."""
        with self.db.transaction() as conn:
            stamp = self._stamp()
            tracking.set_teardown(conn, stamp, rollout, instance_nos, state, message=message)

    # -- reading -------------------------------------------------------------------------------

    def records(self, rollout: str) -> list[Record]:
        """Return every server of a rollout, in inventory order."""
        with self.db.transaction() as conn:
            return queries.records(conn, rollout)

    def record(self, rollout: str, name: str) -> Record | None:
        """Return one server's row, if the rollout has it."""
        with self.db.transaction() as conn:
            return queries.record(conn, rollout, name)

    def instances(self, rollout: str) -> list[Instance]:
        """Return every NCP instance the rollout owns."""
        with self.db.transaction() as conn:
            return queries.instances_of(conn, rollout)

    def counts(self, rollout: str) -> RolloutCounts:
        """Return a rollout's servers per state."""
        with self.db.transaction() as conn:
            return queries.counts(conn, rollout)

    def rollouts(self) -> list[str]:
        """Return the names of every rollout in the ledger."""
        with self.db.transaction() as conn:
            return queries.rollout_names(conn)

    def forget(self, rollout: str, *, unbound_is_rehearsal: bool = False) -> None:
        """Delete a rehearsal rollout's records (its simulator, and servers, are gone).

        ``unbound_is_rehearsal``: a rollout bound nowhere (from before bindings existed) counts
        as a rehearsal; only for the rehearsal ledger itself.

        Raises:
            LedgerError: the rollout is not bound to a rehearsal: real servers are never forgotten.

        """
        with self.db.transaction() as conn:
            binding = leases.read_binding(conn, rollout)
            known = conn.execute(
                sa.select(servers.c.name).where(servers.c.rollout == rollout).limit(1)
            ).first()
            rehearsal = unbound_is_rehearsal if binding is None else binding.rehearsal
            if known is not None and not rehearsal:
                raise LedgerError(
                    f"rollout {rollout!r} is not a rehearsal: its record is never deleted"
                )
            for table in (servers, instances, rollouts, lease_table):
                conn.execute(table.delete().where(table.c.rollout == rollout))
