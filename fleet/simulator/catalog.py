"""What the simulated account holds besides its servers: regions, networks, images, specs, keys.

Regions are ordered as getRegionList lists them; the first is where every call without a
``regionCode`` acts (NCP's documented default). VPCs belong to a region; subnets, ACGs and
network interfaces belong to a VPC (so to its region); login keys, init scripts, placement groups,
snapshots and member images name their region. Server images, image products, specs, server
products and block storage volume types are offered in every region.

The catalog is data, read once (``catalog_file`` loads and checks it); what creates change
(network interfaces taken, public IPs, disks) lives in ``resources``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from fleet.simulator.errors import UNKNOWN_REGION, ApiError

__all__ = [
    "AcgEntry",
    "Catalog",
    "ImageProductEntry",
    "InitScriptEntry",
    "LoginKeyEntry",
    "MemberImageEntry",
    "NicEntry",
    "PlacementGroupEntry",
    "RegionEntry",
    "ServerImageEntry",
    "ServerProductEntry",
    "SnapshotEntry",
    "SpecEntry",
    "SubnetEntry",
    "VolumeTypeEntry",
    "VpcEntry",
    "ZoneEntry",
    "disk_type",
    "product_type",
]


@dataclass(frozen=True, slots=True)
class ZoneEntry:
    """A zone of a region, as getZoneList shows it."""

    code: str
    name: str
    description: str
    region: str


@dataclass(frozen=True, slots=True)
class RegionEntry:
    """A region and its zones, as getRegionList and getZoneList show them."""

    code: str
    name: str
    zones: tuple[ZoneEntry, ...]


@dataclass(frozen=True, slots=True)
class VpcEntry:
    """A VPC of one region."""

    no: str
    name: str
    cidr: str
    region: str


@dataclass(frozen=True, slots=True)
class SubnetEntry:
    """A subnet of a VPC, in one zone."""

    no: str
    name: str
    vpc: str
    zone: str
    cidr: str
    type: str  # PUBLIC or PRIVATE
    region: str

    def holds(self, ip: str) -> bool:
        """Return whether an address is inside this subnet."""
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(self.cidr)
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class AcgEntry:
    """An ACG of a VPC."""

    no: str
    name: str
    vpc: str
    is_default: bool
    region: str


@dataclass(frozen=True, slots=True)
class LoginKeyEntry:
    """A login key (by name) of one region."""

    name: str
    fingerprint: str
    region: str


@dataclass(frozen=True, slots=True)
class InitScriptEntry:
    """An init script of one region."""

    no: str
    name: str
    region: str


@dataclass(frozen=True, slots=True)
class PlacementGroupEntry:
    """A placement group of one region."""

    no: str
    name: str
    region: str


@dataclass(frozen=True, slots=True)
class NicEntry:
    """A network interface that exists before any create: free, or used by ``instance``."""

    no: str
    name: str
    subnet: str
    vpc: str
    ip: str
    instance: str  # '' when free; else a server outside the simulator's own
    region: str


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """A block storage snapshot of one region (sizes in GiB)."""

    no: str
    name: str
    size_gb: int
    region: str


@dataclass(frozen=True, slots=True)
class VolumeTypeEntry:
    """A block storage volume type code and the hypervisor it is for."""

    code: str
    hypervisor: str


def product_type(product_code: str) -> str:
    """Return a server product code's product type: its third part (STAND, HICPU, CPU ...)."""
    parts = product_code.split(".")
    return parts[2] if len(parts) > 2 else ""


def disk_type(product_code: str) -> str:
    """Return the disk type a server product code names (SSD or HDD), '' when it names none."""
    parts = product_code.split(".")
    return next((part for part in parts if part in ("SSD", "HDD")), "")


@dataclass(frozen=True, slots=True)
class SpecEntry:
    """A server spec (serverSpecCode): what a serverImageNo image runs on."""

    code: str
    cpu: int
    memory: int  # bytes
    generation: str
    hypervisor: str
    product_code: str
    description: str


@dataclass(frozen=True, slots=True)
class ServerImageEntry:
    """A server image (serverImageNo, KVM era) and the specs it runs on."""

    no: str
    name: str
    hypervisor: str
    specs: tuple[str, ...]
    description: str
    product_code: str = ""  # its serverImageProductCode (XEN/RHV images have one), or ''


@dataclass(frozen=True, slots=True)
class ServerProductEntry:
    """A server product (serverProductCode, XEN/RHV era)."""

    code: str
    name: str
    cpu: int
    memory: int  # bytes
    disk_gb: int
    generation: str


@dataclass(frozen=True, slots=True)
class ImageProductEntry:
    """A server image product (serverImageProductCode) and the server products it runs on."""

    code: str
    name: str
    products: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class MemberImageEntry:
    """A member server image, made from a server image or an image product, in one region."""

    no: str
    name: str
    image: str  # serverImageNo it was made from, or ''
    image_product: str  # serverImageProductCode it was made from, or ''
    region: str


@dataclass(frozen=True)
class Catalog:
    """The account's regions, networks, images and the rest, looked up by number or code."""

    regions: tuple[RegionEntry, ...]
    vpcs: Mapping[str, VpcEntry] = field(default_factory=dict)
    subnets: Mapping[str, SubnetEntry] = field(default_factory=dict)
    acgs: Mapping[str, AcgEntry] = field(default_factory=dict)
    login_keys: Mapping[str, LoginKeyEntry] = field(default_factory=dict)
    init_scripts: Mapping[str, InitScriptEntry] = field(default_factory=dict)
    placement_groups: Mapping[str, PlacementGroupEntry] = field(default_factory=dict)
    nics: Mapping[str, NicEntry] = field(default_factory=dict)
    snapshots: Mapping[str, SnapshotEntry] = field(default_factory=dict)
    volume_types: Mapping[str, VolumeTypeEntry] = field(default_factory=dict)
    specs: Mapping[str, SpecEntry] = field(default_factory=dict)
    images: Mapping[str, ServerImageEntry] = field(default_factory=dict)
    products: Mapping[str, ServerProductEntry] = field(default_factory=dict)
    image_products: Mapping[str, ImageProductEntry] = field(default_factory=dict)
    member_images: Mapping[str, MemberImageEntry] = field(default_factory=dict)

    @property
    def default_region(self) -> RegionEntry:
        """Return the first region: where a call without regionCode acts."""
        return self.regions[0]

    def region(self, code: str) -> RegionEntry | None:
        """Return the region of that code, or None."""
        return next((r for r in self.regions if r.code == code), None)

    def image_of_product(self, image_product_code: str) -> ServerImageEntry | None:
        """Return the server image that is also this image product, or None."""
        if not image_product_code:
            return None
        return next((i for i in self.images.values() if i.product_code == image_product_code), None)

    def spec_of_product(self, product_code: str) -> SpecEntry | None:
        """Return the spec sold as this server product, or None."""
        if not product_code:
            return None
        return next((s for s in self.specs.values() if s.product_code == product_code), None)

    def region_of(self, params: Mapping[str, str]) -> RegionEntry:
        """Return the region a call acts on: its regionCode, else the first; refuse unknown ones."""
        code = params.get("regionCode") or ""
        if not code:
            return self.default_region
        region = self.region(code)
        if region is None:
            known = ", ".join(r.code for r in self.regions)
            raise ApiError.server(UNKNOWN_REGION, f"unknown regionCode {code!r} (one of {known})")
        return region
