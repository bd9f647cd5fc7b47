"""The servers of one account, stored for look-ups without scans, and their NCP records.

Each server keeps a timeline of (time, status, operation) steps on the injected monotonic clock;
its status at any moment is read off the timeline, so nothing runs in the background. A server
whose timeline ends in termination is forgotten once that time has passed (a heap of end times,
so no read scans every server to find them).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, NamedTuple

from fleet.simulator.catalog import disk_type
from fleet.states import Operation, ServerStatus

__all__ = [
    "FIRST_INSTANCE_NO",
    "Machine",
    "Row",
    "Server",
    "ServerBook",
    "StatusAt",
    "admin_record",
    "describe",
    "ncp_date",
    "visible_row",
]

FIRST_INSTANCE_NO: Final = 10000001
_KST = timezone(timedelta(hours=9))

_STATUS_NAMES: Final = {
    (ServerStatus.INIT, Operation.NULL): "init",
    (ServerStatus.CREAT, Operation.SETUP): "creating",
    (ServerStatus.RUN, Operation.NULL): "running",
    (ServerStatus.RUN, Operation.SHTDN): "shutting down",
    (ServerStatus.NSTOP, Operation.NULL): "stopped",
    (ServerStatus.NSTOP, Operation.START): "booting",
    (ServerStatus.NSTOP, Operation.TERMT): "terminating",
    (ServerStatus.NSTOP, Operation.CHNG): "changingSpec",
}


def ncp_date(epoch: float) -> str:
    """Return NCP's date format, KST to the second: ``2024-01-01T12:00:00+0900``."""
    return datetime.fromtimestamp(epoch, tz=_KST).strftime("%Y-%m-%dT%H:%M:%S%z")


class StatusAt(NamedTuple):
    """From monotonic time ``at``: this status (None once the server is gone) and operation."""

    at: float
    status: ServerStatus | None
    op: Operation


@dataclass(frozen=True, slots=True)
class Machine:
    """What a server runs: its size, hypervisor, and the image and spec codes NCP lists for it.

    A create names one image and one spec or product; the catalog gives the rest (a XEN image's
    image product, a spec's server product and back), and listings report all four, as NCP's do.
    """

    cpu: int = 2
    memory: int = 8 << 30
    hypervisor: str = "KVM"
    image_no: str = ""  # serverImageNo
    image_product_code: str = ""  # serverImageProductCode
    spec_code: str = ""  # serverSpecCode
    product_code: str = ""  # serverProductCode


@dataclass(slots=True)
class Server:
    """One simulated server: where it is, what was asked, and its timeline of steps."""

    no: int
    name: str
    region: str
    zone: str
    description: str
    vpc_no: str
    subnet_no: str
    protect: bool
    committed_at: float  # monotonic: the backend commits it (its INIT starts)
    visible_at: float  # monotonic: reads first show it (commit plus the listing lag)
    created_wall: float  # epoch seconds of the commit: createDate
    timeline: list[StatusAt]
    request: dict[str, str]  # the create's other echoed parameters (login key, init script ...)
    machine: Machine = Machine()  # changeServerInstanceSpec replaces it
    nics: tuple[str, ...] = ()  # catalog network interfaces it took
    public_ip_no: str = ""
    public_ip: str = ""

    def at(self, now: float) -> tuple[ServerStatus | None, Operation]:
        """Return (status, operation) at monotonic time ``now``; status None once gone."""
        current = self.timeline[0]
        for step in self.timeline:
            if step.at > now:
                break
            current = step
        return current.status, current.op


# A server as an action sees it: the record and its (status, operation) now.
Row = tuple[Server, ServerStatus, Operation]


def describe(server: Server, status: ServerStatus, op: Operation) -> dict[str, Any]:
    """Return a serverInstance record as NCP's Server API answers it."""
    created = ncp_date(server.created_wall)
    echo = server.request
    machine = server.machine
    disk = disk_type(machine.product_code) or "SSD"
    return {
        "serverInstanceNo": str(server.no),
        "serverName": server.name,
        "serverDescription": server.description,
        "cpuCount": machine.cpu,
        "memorySize": machine.memory,
        "platformType": {"code": "UBS64", "codeName": "Ubuntu Server 64 Bit"},
        "loginKeyName": echo.get("loginKeyName", ""),
        "publicIpInstanceNo": server.public_ip_no,
        "publicIp": server.public_ip,
        "serverInstanceStatus": {"code": status.value, "codeName": f"서버 {status} 상태"},
        "serverInstanceOperation": {"code": op.value, "codeName": f"서버 {op} OP"},
        "serverInstanceStatusName": _STATUS_NAMES.get((status, op), status.lower()),
        "createDate": created,
        "uptime": created,
        "serverImageProductCode": machine.image_product_code,
        "serverProductCode": machine.product_code,
        "isProtectServerTermination": server.protect,
        "zoneCode": server.zone,
        "regionCode": server.region,
        "vpcNo": server.vpc_no,
        "subnetNo": server.subnet_no,
        "networkInterfaceNoList": list(server.nics),
        "initScriptNo": echo.get("initScriptNo", ""),
        "serverInstanceType": {"code": "STAND", "codeName": "Standard"},
        "baseBlockStorageDiskType": {"code": "NET", "codeName": "네트웍 스토리지"},
        "baseBlockStorageDiskDetailType": {"code": disk, "codeName": disk},
        "placementGroupNo": echo.get("placementGroupNo", ""),
        "placementGroupName": "",
        "memberServerImageInstanceNo": echo.get("memberServerImageInstanceNo", ""),
        "hypervisorType": {"code": machine.hypervisor, "codeName": machine.hypervisor},
        "serverImageNo": machine.image_no,
        "serverSpecCode": machine.spec_code,
        "eventList": [],
    }


def visible_row(server: Server | None, region: str, now: float) -> Row | None:
    """Return the server as a read in ``region`` sees it now, or None if it cannot see it."""
    if server is None or server.region != region or server.visible_at > now:
        return None
    status, op = server.at(now)
    return None if status is None else (server, status, op)


def admin_record(server: Server, now: float) -> dict[str, Any]:
    """Return the admin state's short record of a server, listed or not yet."""
    status, op = server.at(now)
    return {
        "serverInstanceNo": str(server.no),
        "serverName": server.name,
        "regionCode": server.region,
        "zoneCode": server.zone,
        "status": status,
        "operation": op,
        "vpcNo": server.vpc_no,
        "subnetNo": server.subnet_no,
        "isProtectServerTermination": server.protect,
        "created_at": server.created_wall,
        "committed": server.committed_at <= now,
        "visible": server.visible_at <= now,
    }


class ServerBook:
    """Every server of the account, by number and by region, in instance-number order."""

    def __init__(self) -> None:
        self._servers: dict[int, Server] = {}  # numbers only grow: insertion is number order
        self._by_region: dict[str, dict[int, Server]] = {}
        self._gone: list[tuple[float, int]] = []  # heap of (gone at, number)
        self._next_no = FIRST_INSTANCE_NO

    def __len__(self) -> int:
        return len(self._servers)

    def clear(self) -> None:
        """Forget every server (instance numbers keep increasing, so none is ever reused)."""
        self._servers.clear()
        self._by_region.clear()
        self._gone.clear()

    def number(self) -> int:
        """Return a new instance number."""
        no = self._next_no
        self._next_no += 1
        return no

    def add(self, server: Server) -> None:
        """Store a new server."""
        self._servers[server.no] = server
        self._by_region.setdefault(server.region, {})[server.no] = server

    def get(self, no: int) -> Server | None:
        """Return the server of that number, or None."""
        return self._servers.get(no)

    def in_region(self, region: str) -> Iterable[Server]:
        """Return the servers of one region, in number order."""
        return self._by_region.get(region, {}).values()

    def __iter__(self) -> Iterator[Server]:
        return iter(self._servers.values())

    def ends_at(self, no: int, at: float) -> None:
        """Note that server ``no`` is gone from monotonic time ``at``."""
        heapq.heappush(self._gone, (at, no))

    def prune(self, now: float) -> None:
        """Forget the servers whose termination has finished."""
        while self._gone and self._gone[0][0] <= now:
            _, no = heapq.heappop(self._gone)
            server = self._servers.pop(no, None)
            if server is not None:
                del self._by_region[server.region][no]
