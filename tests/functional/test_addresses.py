"""Addresses: recorded when a server is seen RUN, on both ledger backends and over loopback."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.ledger import Address, Ledger
from fleet.simulator import running_simulator
from fleet.watch.readiness import wait_running
from tests.support.engine import client_for, open_ledger, roll_out, specs
from tests.support.simulator import sim_config


def test_addresses_are_replaced_per_instance_and_forgotten_with_a_rehearsal(
    ledger_url: str,
) -> None:
    """A server's addresses are kept by instance number, rewritten when seen again."""
    with Ledger(ledger_url) as book:
        book.acquire("r", "run-1", "test run", ttl=60)  # every write is under the lease
        book.set_addresses("r", [Address("1", "10.0.1.6", None), Address("2", "10.0.1.7", "x")])
        book.set_addresses("r", [Address("1", "10.0.1.9", "198.18.0.2")])
        assert book.addresses("r") == {
            "1": Address("1", "10.0.1.9", "198.18.0.2"),
            "2": Address("2", "10.0.1.7", "x"),
        }
        assert book.addresses("other") == {}


@pytest.mark.anyio
async def test_wait_records_each_servers_private_and_public_ip(tmp_path: Path) -> None:
    """Servers seen RUN get the private IP of their default interface and their public IP."""
    plan = specs(3)
    first = plan[0]
    public = [replace(first, params=(*first.params, ("associateWithPublicIp", "true")))]
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "w", public + plan[1:])
            report = await wait_running(client, book, "w", interval=0.1, time_limit=30)
    assert len(report.running) == 3
    by_name = {r.name: r.instance_no or "" for r in book.sync.records("w")}
    seen = book.sync.addresses("w")
    subnet = ipaddress.ip_network("10.0.1.0/24")
    assert all(ipaddress.ip_address(seen[no].private_ip or "") in subnet for no in by_name.values())
    assert len({seen[no].private_ip for no in by_name.values()}) == 3
    assert seen[by_name["web-001"]].public_ip
    assert seen[by_name["web-002"]].public_ip is None
