"""NCP's read APIs as typed calls: region-aware, paged, batched by number, through the client.

Every read goes through :meth:`NcpClient.call` with ``idempotent=True``, so it shares the
rollout's rate limiter and retries, and a failure that outlasts them is raised as the client's own
``NcpError``. A read acts on one region: ``''`` sends no ``regionCode``, which is NCP's default
region, exactly where a create that carried none goes.

``READS`` says, per kind of object, which action lists it, where its items are in the answer, the
field that names one, and the 1-based list filter (``name.N``) that takes many numbers at once;
without such a filter the whole listing is read (one call for an account's login keys). Paged
reads are read to their last page (``totalRows``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from .client import BATCH_SIZE, NcpClient

__all__ = [
    "READS",
    "AccessControlGroup",
    "BlockStorage",
    "Item",
    "MemberImage",
    "NetworkInterface",
    "PublicIp",
    "Read",
    "Resource",
    "Subnet",
    "count_servers",
    "read",
]


class Resource(StrEnum):
    """A kind of object an NCP read API lists."""

    REGION = "region"
    IMAGE = "server image"
    IMAGE_PRODUCT = "server image product"
    MEMBER_IMAGE = "member server image"
    SPEC = "server spec"
    PRODUCT = "server product"
    VPC = "VPC"
    SUBNET = "subnet"
    ACG = "ACG"
    LOGIN_KEY = "login key"
    INIT_SCRIPT = "init script"
    PLACEMENT_GROUP = "placement group"
    SNAPSHOT = "block storage snapshot"
    VOLUME_TYPE = "block storage volume type"
    NIC = "network interface"
    PUBLIC_IP = "public IP"
    BLOCK_STORAGE = "block storage"


def _code(raw: Mapping[str, Any], name: str) -> str:
    """Return the code of one of NCP's common codes (``{"code", "codeName"}``), or ''."""
    value = raw.get(name)
    return str(value.get("code") or "") if isinstance(value, Mapping) else ""


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Item:
    """One object a read API listed: its number (or code, or name) and NCP's record as answered."""

    key: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def keyed(cls, key_field: str) -> Callable[[Mapping[str, Any]], Item]:
        """Return a maker of items named by a field (a common code's code when it is one)."""

        def make(raw: Mapping[str, Any]) -> Item:
            return cls(_code(raw, key_field) or _text(raw, key_field), raw)

        return make


@dataclass(frozen=True, slots=True)
class MemberImage(Item):
    """A member server image, and the image (or image product) it was made from."""

    image_no: str
    image_product_code: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> MemberImage:
        """Build from one entry of memberServerImageInstanceList."""
        return cls(
            _text(raw, "memberServerImageInstanceNo"),
            raw,
            _text(raw, "originalServerImageNo"),
            _text(raw, "originalServerImageProductCode"),
        )


@dataclass(frozen=True, slots=True)
class Subnet(Item):
    """A subnet: its VPC, zone and address range."""

    vpc_no: str
    zone: str
    cidr: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Subnet:
        """Build from one entry of subnetList (VPC API)."""
        return cls(
            _text(raw, "subnetNo"),
            raw,
            _text(raw, "vpcNo"),
            _text(raw, "zoneCode"),
            _text(raw, "subnet"),
        )

    def holds(self, ip: str) -> bool:
        """Return whether an address lies inside this subnet's range."""
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class AccessControlGroup(Item):
    """An ACG, and the VPC it belongs to."""

    vpc_no: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> AccessControlGroup:
        """Build from one entry of accessControlGroupList."""
        return cls(_text(raw, "accessControlGroupNo"), raw, _text(raw, "vpcNo"))


@dataclass(frozen=True, slots=True)
class NetworkInterface(Item):
    """A network interface: its subnet and the server holding it ('' when free)."""

    subnet_no: str
    holder: str
    status: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> NetworkInterface:
        """Build from one entry of networkInterfaceList."""
        return cls(
            _text(raw, "networkInterfaceNo"),
            raw,
            _text(raw, "subnetNo"),
            _text(raw, "instanceNo"),
            _code(raw, "networkInterfaceStatus"),
        )

    @property
    def in_use(self) -> bool:
        """Return whether a server holds it (NCP's NOTUSED status, or no holder, means free)."""
        return bool(self.holder) or self.status not in ("", "NOTUSED")


@dataclass(frozen=True, slots=True)
class PublicIp(Item):
    """A public IP instance, the server it is associated with ('' when none), its operation."""

    ip: str
    server_no: str
    operation: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> PublicIp:
        """Build from one entry of publicIpInstanceList."""
        return cls(
            _text(raw, "publicIpInstanceNo"),
            raw,
            _text(raw, "publicIp"),
            _text(raw, "serverInstanceNo"),
            _code(raw, "publicIpInstanceOperation") or "NULL",
        )


@dataclass(frozen=True, slots=True)
class BlockStorage(Item):
    """A block storage instance: the server it is attached to ('' when none), type, state."""

    name: str
    server_no: str
    type: str  # BASIC for a server's root disk; SVRBS for an extra one
    status: str
    operation: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> BlockStorage:
        """Build from one entry of blockStorageInstanceList."""
        return cls(
            _text(raw, "blockStorageInstanceNo"),
            raw,
            _text(raw, "blockStorageName"),
            _text(raw, "serverInstanceNo"),
            _code(raw, "blockStorageType"),
            _code(raw, "blockStorageInstanceStatus"),
            _code(raw, "blockStorageInstanceOperation") or "NULL",
        )


@dataclass(frozen=True, slots=True)
class Read:
    """How one kind of object is read: action, answer key, maker, number filter, paging, API."""

    action: str
    items: str
    make: Callable[[Mapping[str, Any]], Item]
    by: str | None = None  # the list filter (name.N) taking many numbers, where NCP has one
    paged: bool = True
    api: str = "vserver"


READS: Final[Mapping[Resource, Read]] = {
    Resource.REGION: Read("getRegionList", "regionList", Item.keyed("regionCode"), paged=False),
    Resource.IMAGE: Read(
        "getServerImageList", "serverImageList", Item.keyed("serverImageNo"), "serverImageNoList"
    ),
    Resource.IMAGE_PRODUCT: Read(
        "getServerImageProductList", "productList", Item.keyed("productCode"), paged=False
    ),
    Resource.MEMBER_IMAGE: Read(
        "getMemberServerImageInstanceList",
        "memberServerImageInstanceList",
        MemberImage.from_api,
        "memberServerImageInstanceNoList",
    ),
    Resource.SPEC: Read(
        "getServerSpecList", "serverSpecList", Item.keyed("serverSpecCode"), paged=False
    ),
    Resource.PRODUCT: Read(
        "getServerProductList", "productList", Item.keyed("productCode"), paged=False
    ),
    Resource.VPC: Read(
        "getVpcList", "vpcList", Item.keyed("vpcNo"), "vpcNoList", paged=False, api="vpc"
    ),
    Resource.SUBNET: Read(
        "getSubnetList", "subnetList", Subnet.from_api, "subnetNoList", api="vpc"
    ),
    Resource.ACG: Read(
        "getAccessControlGroupList",
        "accessControlGroupList",
        AccessControlGroup.from_api,
        "accessControlGroupNoList",
    ),
    Resource.LOGIN_KEY: Read("getLoginKeyList", "loginKeyList", Item.keyed("keyName")),
    Resource.INIT_SCRIPT: Read(
        "getInitScriptList", "initScriptList", Item.keyed("initScriptNo"), "initScriptNoList"
    ),
    Resource.PLACEMENT_GROUP: Read(
        "getPlacementGroupList",
        "placementGroupList",
        Item.keyed("placementGroupNo"),
        "placementGroupNoList",
        paged=False,
    ),
    Resource.SNAPSHOT: Read(
        "getBlockStorageSnapshotInstanceList",
        "blockStorageSnapshotInstanceList",
        Item.keyed("blockStorageSnapshotInstanceNo"),
        "blockStorageSnapshotInstanceNoList",
    ),
    Resource.VOLUME_TYPE: Read(
        "getBlockStorageVolumeTypeList",
        "blockStorageVolumeTypeList",
        Item.keyed("blockStorageVolumeType"),
        paged=False,
    ),
    Resource.NIC: Read(
        "getNetworkInterfaceList",
        "networkInterfaceList",
        NetworkInterface.from_api,
        "networkInterfaceNoList",
    ),
    Resource.PUBLIC_IP: Read(
        "getPublicIpInstanceList",
        "publicIpInstanceList",
        PublicIp.from_api,
        "publicIpInstanceNoList",
    ),
    Resource.BLOCK_STORAGE: Read(
        "getBlockStorageInstanceList",
        "blockStorageInstanceList",
        BlockStorage.from_api,
        "blockStorageInstanceNoList",
    ),
}


async def read(
    client: NcpClient,
    kind: Resource,
    *,
    region: str = "",
    numbers: Sequence[str] = (),
    params: Sequence[tuple[str, str]] = (),
) -> list[Item]:
    """Return every object of a kind that a read answers: a batch of numbers per call, all pages.

    ``numbers`` (for kinds with a number filter) limits the read to those objects; ``params`` adds
    the read's own filters (``serverImageNo`` of getServerSpecList, ``zoneCode`` ...).
    """
    spec = READS[kind]
    if numbers and spec.by is None:
        raise ValueError(f"{spec.action} takes no list of numbers")
    base = [("regionCode", region)] if region else []
    base += params
    batches = [numbers[i : i + BATCH_SIZE] for i in range(0, len(numbers), BATCH_SIZE)]
    found: list[Item] = []
    for batch in batches or [()]:
        wanted = [(f"{spec.by}.{i}", no) for i, no in enumerate(batch, 1)]
        raws = await client.read_all(
            spec.action, spec.items, [*base, *wanted], paged=spec.paged, api=spec.api
        )
        found.extend(spec.make(raw) for raw in raws)
    return found


async def count_servers(client: NcpClient, *, region: str = "") -> int:
    """Return how many servers a region holds, as NCP's totalRows counts them (one call)."""
    params = [("regionCode", region)] if region else []
    params += [("pageNo", "1"), ("pageSize", "1")]
    payload = await client.call("getServerInstanceList", params, idempotent=True)
    return int(payload.get("totalRows") or 0)
