"""The Ledger's hold on rollouts: where each lives (binding), who runs it (lease), how fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa

from . import leases
from .base import LedgerBase
from .model import Aside, Binding, LeaseInfo
from .schema import aside, rates

__all__ = ["Holds"]


class Holds(LedgerBase):
    """Bindings, leases, the rates gateways allowed, and what creates made beside servers."""

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

    # -- what creates made beside their servers ---------------------------------------------

    def keep_aside(self, rollout: str, items: Sequence[Aside]) -> None:
        """Write down public IPs and disks to return, before their servers are stopped."""
        with self.db.transaction() as conn:
            known = {
                (row.kind, row.number)
                for row in conn.execute(
                    sa.select(aside.c.kind, aside.c.number).where(aside.c.rollout == rollout)
                )
            }
            fresh = [i for i in items if (i.kind, i.number) not in known]
            if fresh:
                stamp = self._stamp()
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
            stamp = self._stamp()
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
