"""What creates make besides servers, and what may outlive them: public IPs, extra disks, NICs.

- ``associateWithPublicIp=true`` makes a public IP instance associated with the server (its
  record shows ``publicIpInstanceNo`` and ``publicIp``). It is billed until deleted, and it
  outlives the server: a terminated server's IP stays, unassociated. NCP's order to return one:
  ``disassociatePublicIpFromServerInstance``, then ``deletePublicIpInstance``; deleting an
  associated IP is refused (900030).
- each ``blockStorageMappingList`` item of order 1 or more (unless ``noBlockStorage=true``) makes
  a block storage instance attached to the server (status ATTAC). Whether extra disks outlive
  their server is UNKNOWN at NCP: with ``storage_outlives_server`` (the default) they stay,
  detached (status CREAT) and billed; without, they go with the server. Return one with
  ``detachBlockStorageInstances``, then ``deleteBlockStorageInstances``; deleting an attached
  disk is refused (900030). Each server's own base storage is not listed.
- a ``networkInterfaceNo`` given to a create is taken by that server until it is gone.

Everything is worked out lazily against the server book (a gone server leaves its IP unassociated,
its disks detached or deleted, its NIC free) so a termination scans nothing. Public IP numbers
count from 20000001 and addresses from 198.18.0.0/15 (the benchmarking range, never routed);
disk numbers count from 30000001.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from fleet.simulator.catalog import NicEntry
from fleet.simulator.config import SimulatorConfig
from fleet.simulator.references import Placement
from fleet.simulator.servers import Server, ServerBook, ncp_date

__all__ = ["DiskEntry", "PublicIpEntry", "Resources"]

_IP_POOL: Final = ipaddress.ip_network("198.18.0.0/15")
FIRST_PUBLIC_IP_NO: Final = 20000001
FIRST_NIC_NO: Final = 30000000  # plus the server's number: its default interface
FIRST_DISK_NO: Final = 30000001


@dataclass(slots=True)
class PublicIpEntry:
    """A public IP instance: billed from its creation until deleted."""

    no: int
    ip: str
    region: str
    server: int | None  # the server it is associated with, if any (and that server still is)
    created_at: float  # monotonic: with its server's commit
    created_wall: float

    def record(self, server: Server | None) -> dict[str, Any]:
        """Return the publicIpInstance record NCP answers."""
        return {
            "publicIpInstanceNo": str(self.no),
            "publicIp": self.ip,
            "publicIpDescription": "",
            "createDate": ncp_date(self.created_wall),
            "publicIpInstanceStatusName": "사용중" if server else "생성됨",
            "publicIpInstanceStatus": {"code": "RUN", "codeName": "운영중"},
            "serverInstanceNo": str(server.no) if server else "",
            "serverName": server.name if server else "",
            "privateIp": "",
            "lastModifyDate": ncp_date(self.created_wall),
            "publicIpInstanceOperation": {"code": "NULL", "codeName": "NULL OP"},
        }


@dataclass(slots=True)
class DiskEntry:
    """An extra block storage instance: billed from its creation until deleted."""

    no: int
    name: str
    region: str
    zone: str
    size_gb: int
    volume_type: str
    snapshot: str
    server: int | None  # the server it is attached to, if any (and that server still is)
    owner: int  # the server it was made with
    device: str
    created_at: float
    created_wall: float

    def record(self, server: Server | None) -> dict[str, Any]:
        """Return the blockStorageInstance record NCP answers."""
        status = ("ATTAC", "attached") if server else ("CREAT", "created")
        detail = "HDD" if self.volume_type == "HDD" else "SSD"
        return {
            "blockStorageInstanceNo": str(self.no),
            "serverInstanceNo": str(server.no) if server else "",
            "serverName": server.name if server else "",
            "blockStorageName": self.name,
            "blockStorageType": {"code": "SVRBS", "codeName": "Server BS"},
            "blockStorageSize": self.size_gb << 30,
            "deviceName": self.device if server else "",
            "blockStorageProductCode": f"SPBSTBSTAD{self.size_gb:06d}",
            "blockStorageInstanceStatus": {"code": status[0], "codeName": status[1]},
            "blockStorageInstanceOperation": {"code": "NULL", "codeName": "NULL OP"},
            "blockStorageInstanceStatusName": status[1],
            "createDate": ncp_date(self.created_wall),
            "blockStorageDescription": "",
            "blockStorageDiskType": {"code": "NET", "codeName": "Network Storage"},
            "blockStorageDiskDetailType": {"code": detail, "codeName": detail},
            "blockStorageVolumeType": {"code": self.volume_type, "codeName": self.volume_type},
            "maxIopsThroughput": 4000,
            "isEncryptedVolume": False,
            "isReturnProtection": False,
            "zoneCode": self.zone,
            "regionCode": self.region,
        }


class Resources:
    """The account's public IPs, extra disks and taken NICs (pure, no I/O)."""

    def __init__(self, config: SimulatorConfig, book: ServerBook, clock: Callable[[], float]):
        self.config = config
        self.book = book
        self.clock = clock
        self.ips: dict[int, PublicIpEntry] = {}
        self.disks: dict[int, DiskEntry] = {}
        self._disks_of: dict[int, list[int]] = {}  # server number -> its disks' numbers
        self._nics: dict[str, int] = {}  # catalog NIC -> the server that took it
        self.made_nics: dict[str, NicEntry] = {}  # default NICs made with servers
        self._ip_count = 0
        self._disk_count = 0

    def clear(self) -> None:
        """Forget every IP, disk and NIC taken (numbers keep counting)."""
        self.ips.clear()
        self.disks.clear()
        self._disks_of.clear()
        self._nics.clear()
        self.made_nics.clear()

    def holder(self, no: int | None, now: float) -> Server | None:
        """Return the server of that number if it still exists now, else None."""
        server = self.book.get(no) if no is not None else None
        return server if server is not None and server.at(now)[0] is not None else None

    def nic_taken(self, nic: str) -> bool:
        """Return whether a catalog NIC is attached to a server of the simulator's."""
        return self.holder(self._nics.get(nic), self.clock()) is not None

    def nic_user(self, nic: str) -> str:
        """Return the number of the server that holds a catalog NIC, or ''."""
        server = self.holder(self._nics.get(nic), self.clock())
        return str(server.no) if server is not None else ""

    def attach(self, server: Server, placement: Placement, wall: float) -> None:
        """Make what a new server's create asked for: its public IP, its disks, its NIC."""
        at = server.committed_at
        if placement.nic:
            self._nics[placement.nic] = server.no
            server.nics = (placement.nic,)
        elif placement.cidr:
            server.nics = (self._default_nic(server, placement),)
        if placement.public_ip:
            no, self._ip_count = FIRST_PUBLIC_IP_NO + self._ip_count, self._ip_count + 1
            address = str(_IP_POOL[1 + self._ip_count % (_IP_POOL.num_addresses - 2)])
            self.ips[no] = PublicIpEntry(no, address, server.region, server.no, at, wall)
            server.public_ip_no, server.public_ip = str(no), address
        for i, plan in enumerate(placement.disks):
            no, self._disk_count = FIRST_DISK_NO + self._disk_count, self._disk_count + 1
            name = plan.name or f"{server.name}-disk{i + 1}"
            device = f"/dev/xvd{chr(ord('b') + i)}"
            self.disks[no] = DiskEntry(
                no, name, server.region, server.zone, plan.size_gb, plan.volume_type or "SSD",
                plan.snapshot, server.no, server.no, device, at, wall,
            )  # fmt: skip
            self._disks_of.setdefault(server.no, []).append(no)

    def _default_nic(self, server: Server, placement: Placement) -> str:
        """Make a server's default interface (eth0), as NCP does: a private IP of its subnet."""
        no = str(FIRST_NIC_NO + server.no)
        subnet = ipaddress.ip_network(placement.cidr, strict=False)
        # NCP keeps a subnet's first addresses (gateway, DNS ...): hosts start at .6 here.
        ip = placement.ip or str(subnet[6 + server.no % max(subnet.num_addresses - 8, 1)])
        self.made_nics[no] = NicEntry(
            no,
            f"nic-{server.no}",
            server.subnet_no,
            server.vpc_no,
            ip,
            str(server.no),
            server.region,
        )
        return no

    def live_nics(self) -> list[NicEntry]:
        """Return the default interfaces of servers that still exist."""
        now = self.clock()
        return [
            nic
            for nic in self.made_nics.values()
            if self.holder(int(nic.instance), now) is not None
        ]

    def ip_view(self, ip: PublicIpEntry, now: float) -> Server | None:
        """Return the server an IP is associated with now, dropping a gone server's tie."""
        server = self.holder(ip.server, now)
        if server is None:
            ip.server = None
        return server

    def disk_view(self, disk: DiskEntry, now: float) -> tuple[bool, Server | None]:
        """Return (exists, attached server) now: a gone server's disk detaches, or goes with it."""
        server = self.holder(disk.server, now)
        if server is None and disk.server is not None:
            if not self.config.storage_outlives_server:
                self.drop_disk(disk)
                return False, None
            disk.server = None
        return True, server

    def drop_disk(self, disk: DiskEntry) -> None:
        """Delete a disk."""
        del self.disks[disk.no]
        made_with = self._disks_of.get(disk.owner, [])
        if disk.no in made_with:
            made_with.remove(disk.no)
        if not made_with:
            self._disks_of.pop(disk.owner, None)

    def disks_of(self, server_no: int) -> list[DiskEntry]:
        """Return the disks made with a server (attached to it or not any more)."""
        return [self.disks[no] for no in self._disks_of.get(server_no, ())]

    def admin(self) -> dict[str, list[dict[str, Any]]]:
        """Return every IP and disk that exists (so is billed), for the admin state."""
        now = self.clock()
        ips = [
            {
                "publicIpInstanceNo": str(ip.no),
                "publicIp": ip.ip,
                "regionCode": ip.region,
                "serverInstanceNo": str(server.no) if (server := self.ip_view(ip, now)) else "",
                "billed": True,
            }
            for ip in list(self.ips.values())
            if ip.created_at <= now
        ]
        disks = []
        for disk in list(self.disks.values()):
            exists, server = self.disk_view(disk, now)
            if exists and disk.created_at <= now:
                disks.append(
                    {
                        "blockStorageInstanceNo": str(disk.no),
                        "blockStorageName": disk.name,
                        "regionCode": disk.region,
                        "serverInstanceNo": str(server.no) if server else "",
                        "status": "ATTAC" if server else "CREAT",
                        "billed": True,
                    }
                )
        return {"public_ips": ips, "block_storages": disks}
