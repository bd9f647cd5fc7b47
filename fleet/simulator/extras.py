"""The public IP and block storage APIs: list them, untie them from servers, delete them.

| action | takes | refuses |
|---|---|---|
| getPublicIpInstanceList | publicIpInstanceNoList.N, publicIp, isAssociated, serverName; paged | |
| disassociatePublicIpFromServerInstance | publicIpInstanceNo, [serverInstanceNo] | 900010 not
  associated (or with another server) |
| deletePublicIpInstance | publicIpInstanceNo | 900030 still associated |
| getBlockStorageInstanceList | serverInstanceNo, blockStorageInstanceNoList.N; paged | |
| detachBlockStorageInstances | blockStorageInstanceNoList.N | 900010 not attached |
| deleteBlockStorageInstances | blockStorageInstanceNoList.N | 900030 still attached |

Every action acts on the call's region; a number not found there answers 900012. A call that
names several disks changes none of them when one is refused, as NCP's control calls do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fleet.simulator.catalog import Catalog
from fleet.simulator.errors import (
    IN_USE,
    INVALID_PARAMETER,
    MISSING_PARAMETER,
    NOT_FOUND,
    WRONG_STATE,
    ApiError,
    Problems,
    raise_first,
)
from fleet.simulator.resources import DiskEntry, PublicIpEntry, Resources
from fleet.simulator.servers import Server
from fleet.simulator.wire import Action, index_list, is_digits, paged_response, response

__all__ = ["ExtraActions"]


def _number(params: Mapping[str, str], name: str) -> int:
    value = params.get(name, "")
    if not value:
        raise ApiError.server(MISSING_PARAMETER, f"{name} is required")
    if not is_digits(value):
        raise ApiError.server(INVALID_PARAMETER, f"{name} must be a number: {value!r}")
    return int(value)


class ExtraActions:
    """The public IP and block storage actions on the account's ``Resources``."""

    def __init__(self, resources: Resources, catalog: Catalog) -> None:
        self.resources = resources
        self.catalog = catalog
        self.actions: dict[str, Action] = {
            "getPublicIpInstanceList": self.get_public_ip_instance_list,
            "disassociatePublicIpFromServerInstance": self.disassociate_public_ip,
            "deletePublicIpInstance": self.delete_public_ip_instance,
            "getBlockStorageInstanceList": self.get_block_storage_instance_list,
            "detachBlockStorageInstances": self.detach_block_storage_instances,
            "deleteBlockStorageInstances": self.delete_block_storage_instances,
        }

    # -- public IPs ----------------------------------------------------------------------------

    def _ip(self, params: Mapping[str, str]) -> tuple[PublicIpEntry, Server | None]:
        region = self.catalog.region_of(params).code
        no = _number(params, "publicIpInstanceNo")
        now = self.resources.clock()
        ip = self.resources.ips.get(no)
        if ip is None or ip.region != region or ip.created_at > now:
            raise ApiError.server(NOT_FOUND, f"public IP instance not found: {no}")
        return ip, self.resources.ip_view(ip, now)

    def get_public_ip_instance_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getPublicIpInstanceList: the region's IPs, filtered, one page."""
        problems: Problems = []
        nos = {int(n) for n in index_list(params, "publicIpInstanceNoList", problems)}
        raise_first(problems)
        region = self.catalog.region_of(params).code
        now = self.resources.clock()
        associated = params.get("isAssociated")
        rows = []
        for ip in list(self.resources.ips.values()):
            server = self.resources.ip_view(ip, now)
            if (
                ip.region == region
                and ip.created_at <= now
                and (not nos or ip.no in nos)
                and params.get("publicIp", ip.ip) == ip.ip
                and (associated is None or (associated == "true") == (server is not None))
                and (
                    not params.get("serverName") or (server and server.name == params["serverName"])
                )
            ):
                rows.append(ip.record(server))
        cfg = self.resources.config
        key = "publicIpInstanceList"
        action = "getPublicIpInstanceList"
        return paged_response(params, action, key, rows, cfg.page_size, cfg.max_page_size)

    def disassociate_public_ip(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Untie a public IP from its server (the IP stays, billed)."""
        ip, server = self._ip(params)
        wanted = params.get("serverInstanceNo")
        if server is None or (wanted and wanted != str(server.no)):
            raise ApiError.server(WRONG_STATE, f"public IP {ip.no} is not associated with it")
        ip.server = None
        server.public_ip_no = server.public_ip = ""
        key = "publicIpInstanceList"
        return response("disassociatePublicIpFromServerInstance", key, [ip.record(None)])

    def delete_public_ip_instance(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Return a public IP: only once it is associated with no server."""
        ip, server = self._ip(params)
        if server is not None:
            raise ApiError.server(IN_USE, f"public IP {ip.no} is associated: disassociate first")
        del self.resources.ips[ip.no]
        return response("deletePublicIpInstance", "publicIpInstanceList", [ip.record(None)])

    # -- block storage -------------------------------------------------------------------------

    def _disks(self, params: Mapping[str, str]) -> list[tuple[DiskEntry, Server | None]]:
        problems: Problems = []
        nos = index_list(params, "blockStorageInstanceNoList", problems)
        if not nos and not problems:
            problems.append((MISSING_PARAMETER, "blockStorageInstanceNoList.N is required"))
        raise_first(problems)
        region = self.catalog.region_of(params).code
        now = self.resources.clock()
        found = []
        for no in nos:
            disk = self.resources.disks.get(int(no))
            exists, server = self.resources.disk_view(disk, now) if disk else (False, None)
            if disk is None or not exists or disk.region != region or disk.created_at > now:
                raise ApiError.server(NOT_FOUND, f"block storage instance not found: {no}")
            found.append((disk, server))
        return found

    def get_block_storage_instance_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getBlockStorageInstanceList: the region's extra disks, filtered, one page."""
        problems: Problems = []
        nos = {int(n) for n in index_list(params, "blockStorageInstanceNoList", problems)}
        raise_first(problems)
        region = self.catalog.region_of(params).code
        now = self.resources.clock()
        server_no = params.get("serverInstanceNo", "")
        disks: Iterable[DiskEntry] = list(self.resources.disks.values())
        if is_digits(server_no):  # the disks made with it: no scan of the others
            disks = self.resources.disks_of(int(server_no))
        rows = []
        for disk in list(disks):
            exists, server = self.resources.disk_view(disk, now)
            if (
                exists
                and disk.region == region
                and disk.created_at <= now
                and (not nos or disk.no in nos)
                and (not server_no or (server is not None and str(server.no) == server_no))
            ):
                rows.append(disk.record(server))
        cfg = self.resources.config
        key = "blockStorageInstanceList"
        action = "getBlockStorageInstanceList"
        return paged_response(params, action, key, rows, cfg.page_size, cfg.max_page_size)

    def detach_block_storage_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Detach attached disks from their servers (they stay, billed)."""
        found = self._disks(params)
        for disk, server in found:
            if server is None:
                raise ApiError.server(WRONG_STATE, f"block storage {disk.no} is not attached")
        for disk, _ in found:
            disk.server = None
        records = [disk.record(None) for disk, _ in found]
        return response("detachBlockStorageInstances", "blockStorageInstanceList", records)

    def delete_block_storage_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Return detached disks."""
        found = self._disks(params)
        for disk, server in found:
            if server is not None:
                raise ApiError.server(IN_USE, f"block storage {disk.no} is attached: detach first")
        for disk, _ in found:
            self.resources.drop_disk(disk)
        records = [disk.record(None) for disk, _ in found]
        return response("deleteBlockStorageInstances", "blockStorageInstanceList", records)
