"""Each server's addresses as NCP showed them when it was seen RUN: for exports and results.

An address belongs to an instance number (a replaced server gets new ones), so rows are keyed
by rollout and instance number, and rewritten whenever a server is seen RUN again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .rows import insert_new
from .schema import addresses

__all__ = ["Address", "known", "record"]


@dataclass(frozen=True, slots=True)
class Address:
    """A server's addresses: the private IP of its default interface, its public IP if any."""

    instance_no: str
    private_ip: str | None
    public_ip: str | None


def record(conn: sa.Connection, stamp: str, rollout: str, seen: Sequence[Address]) -> None:
    """Record (or replace) the addresses of servers just seen RUN."""
    numbers = [a.instance_no for a in seen]
    conn.execute(
        addresses.delete().where(
            addresses.c.rollout == rollout, addresses.c.instance_no.in_(numbers)
        )
    )
    conn.execute(
        insert_new(conn.dialect.name, addresses),
        [
            {
                "rollout": rollout,
                "instance_no": a.instance_no,
                "private_ip": a.private_ip,
                "public_ip": a.public_ip,
                "seen_at": stamp,
            }
            for a in seen
        ],
    )


def known(conn: sa.Connection, rollout: str) -> dict[str, Address]:
    """Return the addresses known for a rollout's servers, by instance number."""
    rows = conn.execute(
        sa.select(addresses.c.instance_no, addresses.c.private_ip, addresses.c.public_ip).where(
            addresses.c.rollout == rollout
        )
    ).all()
    return {r.instance_no: Address(r.instance_no, r.private_ip, r.public_ip) for r in rows}
