"""The Ledger's reads, and forgetting a rehearsal."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from fleet.errors import LedgerError

from . import leases, queries
from .base import LedgerBase
from .model import Instance, Record, RolloutCounts
from .schema import addresses, aside, instances, rollouts, servers
from .schema import leases as lease_table

__all__ = ["Reads"]


class Reads(LedgerBase):
    """Records, instances, counts and the list of rollouts."""

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
            for table in (servers, instances, rollouts, lease_table, aside, addresses):
                conn.execute(table.delete().where(table.c.rollout == rollout))
