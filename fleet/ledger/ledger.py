"""The Ledger: one object for every read and write of a rollout's record, on either backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fleet.errors import LedgerConflict, NcpError
from fleet.spec import ServerSpec
from fleet.states import ErrorKind, ServerStatus, State, TeardownState

from . import changing, leases, outcomes, planning, tracking
from .addresses import Addresses
from .base import DEFAULT_LEDGER
from .holds import Holds
from .model import PlanDelta
from .outcomes import Found
from .reads import Reads
from .rows import iso

__all__ = ["DEFAULT_LEDGER", "Ledger"]


class Ledger(Holds, Reads, Addresses):
    """A ledger of rollouts (SQLite file or PostgreSQL URL); safe to share between threads."""

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
            leases.check(conn, self._now(conn), rollout, owner)
            return planning.plan(conn, self._stamp(conn), rollout, specs, retry_failed=retry_failed)

    # -- the engine's state changes (each a compare-and-set) ------------------------------

    def claim(self, rollout: str, spec: ServerSpec, owner: str, run: str | None = None) -> int:
        """Mark a server in flight before its create goes out; return its attempt number.

        ``run`` is the tag its create marker carries (None: sent without one).
        """
        with self.db.transaction() as conn:
            now = self._now(conn)
            return outcomes.claim(conn, now, iso(now), rollout, spec, owner, run)

    def resend(self, rollout: str, name: str, attempt: int, owner: str) -> int:
        """Record that an in-flight create goes out again; return the new attempt number."""
        with self.db.transaction() as conn:
            now = self._now(conn)
            return outcomes.resend(conn, now, iso(now), rollout, name, attempt, owner)

    def claim_many(
        self, rollout: str, specs: Sequence[ServerSpec], owner: str, run: str | None = None
    ) -> list[int | LedgerConflict]:
        """Claim several servers in one commit, ahead of their creates (see outcomes.claim_many)."""
        with self.db.transaction() as conn:
            now = self._now(conn)
            return outcomes.claim_many(conn, now, iso(now), rollout, specs, owner, run)

    def restamp(self, rollout: str, name: str, attempt: int, owner: str) -> None:
        """Stamp a claim's send time anew: its create goes out later than its claim promised."""
        with self.db.transaction() as conn:
            now = self._now(conn)
            outcomes.restamp(conn, now, iso(now), rollout, name, attempt, owner)

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

    def release_absent(self, rollout: str, spec: ServerSpec, attempt: int) -> None:
        """Record that a server surely does not exist: planned again with these parameters."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.release_absent(conn, self._stamp(conn), rollout, spec, attempt)

    def give_up(self, rollout: str, name: str, attempt: int, message: str) -> None:
        """Record that every create of a server was ambiguous and none was found."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            outcomes.give_up(conn, self._stamp(conn), rollout, name, attempt, message)

    def record_resized(self, rollout: str, spec: ServerSpec, instance_no: str) -> None:
        """Record that a created server was changed in place to the inventory's parameters."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            changing.record_resized(conn, self._stamp(conn), rollout, spec, instance_no)

    def begin_replace(self, rollout: str, spec: ServerSpec, instance_no: str) -> None:
        """Plan a server anew under its name; its old instance stays recorded as replaced."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            changing.begin_replace(conn, self._stamp(conn), rollout, spec, instance_no)

    def restore_replaced(self, rollout: str) -> list[str]:
        """Give servers whose replacement was rolled back their old instance again."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            return changing.restore_replaced(conn, self._stamp(conn), rollout)

    # -- after creation ----------------------------------------------------------------------

    def set_status(
        self, rollout: str, updates: Iterable[tuple[str, ServerStatus, float | None]]
    ) -> None:
        """Record servers' NCP status (name, status, seconds from created to ready or None)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            tracking.set_status(conn, self._stamp(conn), rollout, updates)

    def note_error(
        self, rollout: str, name: str, kind: ErrorKind, message: str, code: str | None = None
    ) -> None:
        """Record a problem with a server that exists (a failure status, a timeout)."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            tracking.note_error(conn, self._stamp(conn), rollout, name, kind, message, code)

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
            self._fence(conn, rollout)
            stamp = self._stamp(conn)
            tracking.set_teardown(conn, stamp, rollout, instance_nos, state, message=message)
