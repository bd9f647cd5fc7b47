"""NCP's read APIs as typed calls: region-aware, paged, batched by number, through the client.

Every read goes through :meth:`NcpClient.call` with ``idempotent=True``, so it shares the
rollout's rate limiter and retries, and a failure that outlasts them is raised as the client's own
``NcpError``. A read acts on one region: ``''`` sends no ``regionCode``, which is NCP's default
region, exactly where a create that carried none goes.

``READS`` says, per kind of object, which action lists it, where its items are in the answer, the
field that names one, the 1-based list filter (``name.N``) that takes many numbers at once, and
the shape of what else is read of each (``fleet.ncp.shapes``: fields declared by where NCP answers
them, one reader for all); without such a filter the whole listing is read (one call for an
account's login keys). Paged reads are read to their last page (``totalRows``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from .client import BATCH_SIZE, NcpClient
from .shapes import Shape, answer

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


def _key(raw: Mapping[str, Any], name: str) -> str:
    """Return what names one object: a common code's code, or the field's text."""
    value = raw.get(name)
    if isinstance(value, Mapping):
        return str(value.get("code") or "")
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Item(Shape):
    """One object a read API listed: its number (or code, or name) and NCP's record as answered."""

    key: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MemberImage(Item):
    """A member server image, and the image (or image product) it was made from."""

    image_no: str = field(default="", metadata=answer("originalServerImageNo"))
    image_product_code: str = field(default="", metadata=answer("originalServerImageProductCode"))


@dataclass(frozen=True, slots=True)
class Subnet(Item):
    """A subnet (VPC API): its VPC, zone and address range."""

    vpc_no: str = field(default="", metadata=answer("vpcNo"))
    zone: str = field(default="", metadata=answer("zoneCode"))
    cidr: str = field(default="", metadata=answer("subnet"))

    def holds(self, ip: str) -> bool:
        """Return whether an address lies inside this subnet's range."""
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class AccessControlGroup(Item):
    """An ACG, and the VPC it belongs to."""

    vpc_no: str = field(default="", metadata=answer("vpcNo"))


@dataclass(frozen=True, slots=True)
class NetworkInterface(Item):
    """A network interface: its subnet and the server holding it ('' when free)."""

    subnet_no: str = field(default="", metadata=answer("subnetNo"))
    holder: str = field(default="", metadata=answer("instanceNo"))
    status: str = field(default="", metadata=answer("networkInterfaceStatus", code=True))

    @property
    def in_use(self) -> bool:
        """Return whether a server holds it (NCP's NOTUSED status, or no holder, means free)."""
        return bool(self.holder) or self.status not in ("", "NOTUSED")


@dataclass(frozen=True, slots=True)
class PublicIp(Item):
    """A public IP instance, the server it is associated with ('' when none), its operation."""

    ip: str = field(default="", metadata=answer("publicIp"))
    server_no: str = field(default="", metadata=answer("serverInstanceNo"))
    operation: str = field(
        default="NULL", metadata=answer("publicIpInstanceOperation", code=True, missing="NULL")
    )


@dataclass(frozen=True, slots=True)
class BlockStorage(Item):
    """A block storage instance: the server it is attached to ('' when none), type, state."""

    name: str = field(default="", metadata=answer("blockStorageName"))
    server_no: str = field(default="", metadata=answer("serverInstanceNo"))
    # BASIC for a server's root disk; SVRBS for an extra one.
    type: str = field(default="", metadata=answer("blockStorageType", code=True))
    status: str = field(default="", metadata=answer("blockStorageInstanceStatus", code=True))
    operation: str = field(
        default="NULL", metadata=answer("blockStorageInstanceOperation", code=True, missing="NULL")
    )


@dataclass(frozen=True, slots=True)
class Read:
    """How one kind of object is read: action, answer key, the field naming one, its shape ..."""

    action: str
    items: str
    key: str  # the field that names one object
    by: str | None = None  # the list filter (name.N) taking many numbers, where NCP has one
    shape: type[Item] = Item  # what else of its record is read, by name
    paged: bool = True
    api: str = "vserver"

    def item(self, raw: Mapping[str, Any]) -> Item:
        """Return one object of this kind, from one record of the answer."""
        return self.shape.from_answer(raw, key=_key(raw, self.key), raw=raw)


# One row per kind: the action that lists it, where its records are, the field naming one, the
# filter by number, its shape (beyond its key), paging and API. Adding a kind is adding a row.
READS: Final[Mapping[Resource, Read]] = {
    Resource.REGION: Read("getRegionList", "regionList", "regionCode", paged=False),
    Resource.IMAGE: Read(
        "getServerImageList", "serverImageList", "serverImageNo", "serverImageNoList"
    ),
    Resource.IMAGE_PRODUCT: Read(
        "getServerImageProductList", "productList", "productCode", paged=False
    ),
    Resource.MEMBER_IMAGE: Read(
        "getMemberServerImageInstanceList",
        "memberServerImageInstanceList",
        "memberServerImageInstanceNo",
        "memberServerImageInstanceNoList",
        MemberImage,
    ),
    Resource.SPEC: Read("getServerSpecList", "serverSpecList", "serverSpecCode", paged=False),
    Resource.PRODUCT: Read("getServerProductList", "productList", "productCode", paged=False),
    Resource.VPC: Read("getVpcList", "vpcList", "vpcNo", "vpcNoList", paged=False, api="vpc"),
    Resource.SUBNET: Read(
        "getSubnetList", "subnetList", "subnetNo", "subnetNoList", Subnet, api="vpc"
    ),
    Resource.ACG: Read(
        "getAccessControlGroupList",
        "accessControlGroupList",
        "accessControlGroupNo",
        "accessControlGroupNoList",
        AccessControlGroup,
    ),
    Resource.LOGIN_KEY: Read("getLoginKeyList", "loginKeyList", "keyName"),
    Resource.INIT_SCRIPT: Read(
        "getInitScriptList", "initScriptList", "initScriptNo", "initScriptNoList"
    ),
    Resource.PLACEMENT_GROUP: Read(
        "getPlacementGroupList",
        "placementGroupList",
        "placementGroupNo",
        "placementGroupNoList",
        paged=False,
    ),
    Resource.SNAPSHOT: Read(
        "getBlockStorageSnapshotInstanceList",
        "blockStorageSnapshotInstanceList",
        "blockStorageSnapshotInstanceNo",
        "blockStorageSnapshotInstanceNoList",
    ),
    Resource.VOLUME_TYPE: Read(
        "getBlockStorageVolumeTypeList",
        "blockStorageVolumeTypeList",
        "blockStorageVolumeType",
        paged=False,
    ),
    Resource.NIC: Read(
        "getNetworkInterfaceList",
        "networkInterfaceList",
        "networkInterfaceNo",
        "networkInterfaceNoList",
        NetworkInterface,
    ),
    Resource.PUBLIC_IP: Read(
        "getPublicIpInstanceList",
        "publicIpInstanceList",
        "publicIpInstanceNo",
        "publicIpInstanceNoList",
        PublicIp,
    ),
    Resource.BLOCK_STORAGE: Read(
        "getBlockStorageInstanceList",
        "blockStorageInstanceList",
        "blockStorageInstanceNo",
        "blockStorageInstanceNoList",
        BlockStorage,
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
        found.extend(spec.item(raw) for raw in raws)
    return found


async def count_servers(client: NcpClient, *, region: str = "") -> int:
    """Return how many servers a region holds, as NCP's totalRows counts them (one call)."""
    params = [("regionCode", region)] if region else []
    params += [("pageNo", "1"), ("pageSize", "1")]
    payload = await client.call("getServerInstanceList", params, idempotent=True)
    return int(payload.get("totalRows") or 0)
