"""The Ledger's hold on rollouts: where each lives (binding), who runs it (lease), how fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from . import leases
from .base import LedgerBase
from .model import Aside, Binding, LeaseInfo, Ownership
from .schema import aside, rates, rollouts

__all__ = ["Holds"]


class Holds(LedgerBase):
    """Bindings, leases, the rates gateways allowed, and what creates made beside servers."""

    # -- bindings and leases ----------------------------------------------------------------

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

    def ownership(
        self,
        rollout: str,
        *,
        window: float,
        new_marker: str | None = None,
    ) -> Ownership:
        """Return the rollout's create-marker id and absence window, as its ledger keeps them.

        With ``new_marker`` (a run holding the lease): the rollout gets that id if it has none
        yet, and keeps this run's ``window``, which every later path that judges absence reads
        (a teardown has no window of its own). Without: a read, ``window`` standing in for a
        rollout that kept none.
        """
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(rollouts.c.marker, rollouts.c.window).where(rollouts.c.rollout == rollout)
            ).first()
            marker = None if row is None else row.marker
            kept = None if row is None or row.window is None else float(row.window)
            if new_marker is None:
                return Ownership(rollout, marker, kept if kept is not None else window)
            self._fence(conn, rollout)
            marker = marker or new_marker
            if row is None:  # not bound yet (an engine run on its own): bound on first bind
                conn.execute(
                    rollouts.insert().values(
                        rollout=rollout, endpoint="", account="", marker=marker, window=window
                    )
                )
            else:
                conn.execute(
                    rollouts.update()
                    .where(rollouts.c.rollout == rollout)
                    .values(marker=marker, window=window)
                )
            return Ownership(rollout, marker, window)

    # -- rates -------------------------------------------------------------------------------

    def remember_rate(self, endpoint: str, account: str, rate: float) -> None:
        """Keep the call rate a gateway allowed this account, for the next run to start near."""
        with self.db.transaction() as conn:
            conn.execute(
                rates.delete().where(rates.c.endpoint == endpoint, rates.c.account == account)
            )
            conn.execute(
                rates.insert().values(
                    endpoint=endpoint, account=account, rate=rate, found_at=self._stamp(conn)
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

    # -- what creates made beside their servers ---------------------------------------------

    def keep_aside(self, rollout: str, items: Sequence[Aside]) -> None:
        """Write down public IPs and disks to return, before their servers are stopped."""
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            known = {
                (row.kind, row.number)
                for row in conn.execute(
                    sa.select(aside.c.kind, aside.c.number).where(aside.c.rollout == rollout)
                )
            }
            fresh = [i for i in items if (i.kind, i.number) not in known]
            if fresh:
                stamp = self._stamp(conn)
                conn.execute(
                    aside.insert(),
                    [{"rollout": rollout, **asdict(i), "found_at": stamp} for i in fresh],
                )

    def aside(self, rollout: str) -> list[Aside]:
        """Return what the rollout's creates made beside their servers, not yet returned."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                sa.select(aside)
                .where(aside.c.rollout == rollout, aside.c.returned_at.is_(None))
                .order_by(aside.c.server, aside.c.kind, aside.c.number)
            )
            return [Aside(r.kind, r.number, r.region, r.server, r.server_no, r.label) for r in rows]

    def aside_returned(self, rollout: str, items: Sequence[Aside]) -> None:
        """Record that these were returned (or were gone with their server)."""
        if not items:
            return
        with self.db.transaction() as conn:
            self._fence(conn, rollout)
            stamp = self._stamp(conn)
            for item in items:
                conn.execute(
                    aside.update()
                    .where(
                        aside.c.rollout == rollout,
                        aside.c.kind == item.kind,
                        aside.c.number == item.number,
                    )
                    .values(returned_at=stamp)
                )
