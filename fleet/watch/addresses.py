"""Where a running server can be reached: its private IP (default interface) and public IP.

NCP's server listing gives the public IP and the numbers of the server's network interfaces;
the private IP lives on the interface (getNetworkInterfaceList, one batched read per region).
Addresses are a convenience for what comes after a rollout (Ansible, SSH): a read that fails is
logged and leaves the private IP unknown, it never fails the rollout.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from fleet.errors import NcpError
from fleet.ledger import Address
from fleet.ncp.client import NcpClient, ServerInstance
from fleet.ncp.reads import Resource, read

__all__ = ["addresses_of", "default_ip"]

log = logging.getLogger(__name__)


def _nic_numbers(server: ServerInstance) -> list[str]:
    return [str(n) for n in server.raw.get("networkInterfaceNoList") or ()]


def default_ip(server: ServerInstance, nics: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Return a server's private IP: its default interface's (eth0), else its first one's."""
    mine = [nics[n] for n in _nic_numbers(server) if n in nics]
    for nic in mine:
        if nic.get("isDefault") is True or nic.get("deviceName") == "eth0":
            return str(nic.get("ip") or "") or None
    if not mine:
        return None
    return str(mine[0].get("ip") or "") or None


async def addresses_of(
    client: NcpClient, servers: Sequence[tuple[str, ServerInstance]]
) -> list[Address]:
    """Return the addresses of servers (each with the region it is read in), a read per region."""
    by_region: dict[str, list[ServerInstance]] = defaultdict(list)
    for region, server in servers:
        by_region[region].append(server)
    found: list[Address] = []
    for region, group in by_region.items():
        numbers = sorted({n for s in group for n in _nic_numbers(s)})
        nics: dict[str, Mapping[str, Any]] = {}
        if numbers:
            try:
                items = await read(client, Resource.NIC, region=region, numbers=numbers)
            except NcpError as exc:
                log.warning("private IPs not read (getNetworkInterfaceList): %s", exc)
                items = []
            nics = {item.key: item.raw for item in items}
        for s in group:
            public = str(s.raw.get("publicIp") or "") or None
            found.append(Address(s.instance_no, default_ip(s, nics), public))
    return found
