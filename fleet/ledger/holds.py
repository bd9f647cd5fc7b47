"""The Ledger's hold on rollouts: where each lives (binding), who runs it (lease), how fast."""

from __future__ import annotations

import sqlalchemy as sa

from . import leases
from .base import LedgerBase
from .model import Binding, LeaseInfo
from .schema import rates

__all__ = ["Holds"]


class Holds(LedgerBase):
    """Bindings, leases and the rates gateways allowed."""

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
