"""The catalog as JSON (``fleet simulator --catalog FILE``), checked whole before use.

A catalog file is one JSON object whose sections are lists of objects. A section left out is
empty, except ``regions``: left out, NCP's public regions. Keys are NCP's field names wherever
NCP has one; the simulator's own keys (which image runs on which spec, where a resource lives) are
marked *. Optional keys are in brackets with their default; ``regionCode`` defaults to the first
region.

- ``regions``: regionCode, [regionName], zones: [{zoneCode, [zoneName], [zoneDescription]}]
- ``vpcs``: vpcNo, ipv4CidrBlock, [vpcName], [regionCode]
- ``subnets``: subnetNo, vpcNo, zoneCode, subnet (a CIDR), [subnetName],
  [subnetTypeCode PRIVATE]
- ``accessControlGroups``: accessControlGroupNo, vpcNo, [accessControlGroupName],
  [isDefault false]
- ``loginKeys``: keyName, [fingerprint], [regionCode]
- ``initScripts``: initScriptNo, [initScriptName], [regionCode]
- ``placementGroups``: placementGroupNo, [placementGroupName], [regionCode]
- ``networkInterfaces``: networkInterfaceNo, subnetNo, ip, [networkInterfaceName],
  [instanceNo '']
- ``blockStorageSnapshots``: blockStorageSnapshotInstanceNo, blockStorageSnapshotVolumeSize
  (GiB), [blockStorageSnapshotName], [regionCode]
- ``blockStorageVolumeTypes``: blockStorageVolumeTypeCode, [hypervisorTypeCode KVM]
- ``serverSpecs``: serverSpecCode, cpuCount, memorySize (bytes), [generationCode G3],
  [hypervisorTypeCode KVM], [serverProductCode], [serverSpecDescription]
- ``serverImages``: serverImageNo, serverSpecCodes* (the specs it runs on), [serverImageName],
  [hypervisorTypeCode KVM], [serverImageDescription], [serverImageProductCode ''] (the image
  product it also is, if any: a server made from either reports both)
- ``serverProducts``: productCode, cpuCount, memorySize (bytes), [productName],
  [baseBlockStorageSize 50 (GiB)], [generationCode G2]
- ``serverImageProducts``: productCode, serverProductCodes* (the products it runs on),
  [productName], [productDescription]
- ``memberServerImages``: memberServerImageInstanceNo, serverImageNo* or
  serverImageProductCode* (what it was made from), [memberServerImageName], [regionCode]

A network interface with an ``instanceNo`` is in use by a server the simulator does not hold.
Every reference must resolve (a subnet's VPC, its zone in the VPC's region, its CIDR inside the
VPC's, a NIC's address inside its subnet, an image's specs ...): a file with problems is refused
with all of them named.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from fleet.simulator.catalog import (
    AcgEntry,
    Catalog,
    ImageProductEntry,
    InitScriptEntry,
    LoginKeyEntry,
    MemberImageEntry,
    NicEntry,
    PlacementGroupEntry,
    RegionEntry,
    ServerImageEntry,
    ServerProductEntry,
    SnapshotEntry,
    SpecEntry,
    SubnetEntry,
    VolumeTypeEntry,
    VpcEntry,
    ZoneEntry,
)

__all__ = ["catalog_from_json", "default_catalog", "load_catalog"]

_T = TypeVar("_T")


class _Reader:
    """Reads the entries of a catalog, noting every problem instead of stopping at the first."""

    def __init__(self, data: Any) -> None:
        self.problems: list[str] = []
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            self.problems.append("a catalog is a JSON object")

    def entries(self, section: str, build: Callable[[str, dict[str, Any]], _T]) -> list[_T]:
        """Build every entry of a section (an entry with a problem is left out)."""
        items = self.data.get(section, [])
        if not isinstance(items, list):
            self.problems.append(f"{section}: expected a list")
            return []
        built: list[_T] = []
        for i, item in enumerate(items):
            where = f"{section}[{i}]"
            if not isinstance(item, dict):
                self.problems.append(f"{where}: expected an object")
                continue
            before = len(self.problems)
            entry = build(where, item)
            if len(self.problems) == before:
                built.append(entry)
        return built

    def text(self, where: str, item: dict[str, Any], key: str, default: str | None = None) -> str:
        """Return a text value (a number is taken as its digits); note it when missing."""
        value = item.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or (default is None and not value):
            self.problems.append(f"{where}: {key} must be a non-empty string")
            return ""
        return value

    def number(self, where: str, item: dict[str, Any], key: str, default: int | None = None) -> int:
        """Return a non-negative integer value; note it when missing or wrong."""
        value = item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problems.append(f"{where}: {key} must be an integer >= 0")
            return 0
        return value

    def codes(self, where: str, item: dict[str, Any], key: str) -> tuple[str, ...]:
        """Return a list of codes."""
        value = item.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            self.problems.append(f"{where}: {key} must be a list of codes")
            return ()
        return tuple(str(v) for v in value)

    def check(self, ok: bool, message: str) -> None:
        """Note a problem unless ``ok``."""
        if not ok:
            self.problems.append(message)


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        return None


def _regions(r: _Reader) -> tuple[RegionEntry, ...]:
    def build(where: str, item: dict[str, Any]) -> RegionEntry:
        code = r.text(where, item, "regionCode")
        zones = [
            ZoneEntry(
                r.text(where, z, "zoneCode"),
                str(z.get("zoneName", z.get("zoneCode", ""))),
                str(z.get("zoneDescription", "")),
                code,
            )
            for z in item.get("zones", [])
            if isinstance(z, dict)
        ]
        r.check(bool(zones), f"{where}: a region needs at least one zone")
        return RegionEntry(code, r.text(where, item, "regionName", code), tuple(zones))

    if "regions" not in r.data:
        from fleet.simulator.catalog_default import DEFAULT_REGIONS

        r.data = {**r.data, "regions": DEFAULT_REGIONS}
    regions = tuple(r.entries("regions", build))
    r.check(bool(regions), "regions: at least one region is needed")
    return regions


def _vpcs(r: _Reader, regions: tuple[RegionEntry, ...], first: str) -> dict[str, VpcEntry]:
    def vpc(where: str, item: dict[str, Any]) -> VpcEntry:
        built = VpcEntry(
            r.text(where, item, "vpcNo"),
            r.text(where, item, "vpcName", ""),
            r.text(where, item, "ipv4CidrBlock"),
            r.text(where, item, "regionCode", first),
        )
        r.check(_cidr(built.cidr) is not None, f"{where}: ipv4CidrBlock is not a CIDR block")
        r.check(built.region in {x.code for x in regions}, f"{where}: unknown regionCode")
        return built

    return {v.no: v for v in r.entries("vpcs", vpc)}


def _subnets(
    r: _Reader, regions: tuple[RegionEntry, ...], vpcs: dict[str, VpcEntry]
) -> dict[str, SubnetEntry]:
    zones = {z.code: region.code for region in regions for z in region.zones}

    def subnet(where: str, item: dict[str, Any]) -> SubnetEntry:
        parent = _parent_vpc(r, vpcs, where, item)
        built = SubnetEntry(
            r.text(where, item, "subnetNo"),
            r.text(where, item, "subnetName", ""),
            parent.no,
            r.text(where, item, "zoneCode"),
            r.text(where, item, "subnet"),
            r.text(where, item, "subnetTypeCode", "PRIVATE"),
            parent.region,
        )
        in_region = zones.get(built.zone) == parent.region
        r.check(in_region, f"{where}: zoneCode not in the VPC's region")
        inner, outer = _cidr(built.cidr), _cidr(parent.cidr)
        inside = inner is not None and outer is not None and inner.version == outer.version
        r.check(
            inside and inner.subnet_of(outer),  # type: ignore[arg-type, union-attr]
            f"{where}: subnet must be a CIDR block inside its VPC's",
        )
        return built

    return {s.no: s for s in r.entries("subnets", subnet)}


def _parent_vpc(
    r: _Reader, vpcs: dict[str, VpcEntry], where: str, item: dict[str, Any]
) -> VpcEntry:
    found = vpcs.get(r.text(where, item, "vpcNo"))
    r.check(found is not None, f"{where}: vpcNo names no VPC of the catalog")
    return found or VpcEntry("", "", "0.0.0.0/0", "")


def _networks(r: _Reader, regions: tuple[RegionEntry, ...], first: str) -> dict[str, Any]:
    """Read VPCs, subnets, ACGs and network interfaces, checking how they hang together."""
    vpcs = _vpcs(r, regions, first)
    subnets = _subnets(r, regions, vpcs)

    def acg(where: str, item: dict[str, Any]) -> AcgEntry:
        parent = _parent_vpc(r, vpcs, where, item)
        return AcgEntry(
            r.text(where, item, "accessControlGroupNo"),
            r.text(where, item, "accessControlGroupName", ""),
            parent.no,
            item.get("isDefault", False) is True,
            parent.region,
        )

    def nic(where: str, item: dict[str, Any]) -> NicEntry:
        home = subnets.get(r.text(where, item, "subnetNo"))
        ip = r.text(where, item, "ip")
        r.check(home is not None and home.holds(ip), f"{where}: ip must be inside its subnet")
        return NicEntry(
            r.text(where, item, "networkInterfaceNo"),
            r.text(where, item, "networkInterfaceName", ""),
            home.no if home else "",
            home.vpc if home else "",
            ip,
            r.text(where, item, "instanceNo", ""),
            home.region if home else "",
        )

    return {
        "vpcs": vpcs,
        "subnets": subnets,
        "acgs": {a.no: a for a in r.entries("accessControlGroups", acg)},
        "nics": {n.no: n for n in r.entries("networkInterfaces", nic)},
    }


def _regional(r: _Reader, regions: tuple[RegionEntry, ...], first: str) -> dict[str, Any]:
    """Read login keys, init scripts, placement groups and snapshots: each of one region."""
    known = {region.code for region in regions}

    def home(where: str, item: dict[str, Any]) -> str:
        code = r.text(where, item, "regionCode", first)
        r.check(code in known, f"{where}: unknown regionCode")
        return code

    def key(where: str, item: dict[str, Any]) -> LoginKeyEntry:
        fingerprint = r.text(where, item, "fingerprint", "")
        return LoginKeyEntry(r.text(where, item, "keyName"), fingerprint, home(where, item))

    def script(where: str, item: dict[str, Any]) -> InitScriptEntry:
        name = r.text(where, item, "initScriptName", "")
        return InitScriptEntry(r.text(where, item, "initScriptNo"), name, home(where, item))

    def group(where: str, item: dict[str, Any]) -> PlacementGroupEntry:
        name = r.text(where, item, "placementGroupName", "")
        return PlacementGroupEntry(r.text(where, item, "placementGroupNo"), name, home(where, item))

    def snapshot(where: str, item: dict[str, Any]) -> SnapshotEntry:
        return SnapshotEntry(
            r.text(where, item, "blockStorageSnapshotInstanceNo"),
            r.text(where, item, "blockStorageSnapshotName", ""),
            r.number(where, item, "blockStorageSnapshotVolumeSize"),
            home(where, item),
        )

    def member(where: str, item: dict[str, Any]) -> MemberImageEntry:
        image = r.text(where, item, "serverImageNo", "")
        product = r.text(where, item, "serverImageProductCode", "")
        r.check(
            bool(image) != bool(product),
            f"{where}: name one of serverImageNo, serverImageProductCode",
        )
        return MemberImageEntry(
            r.text(where, item, "memberServerImageInstanceNo"),
            r.text(where, item, "memberServerImageName", ""),
            image,
            product,
            home(where, item),
        )

    return {
        "login_keys": {k.name: k for k in r.entries("loginKeys", key)},
        "init_scripts": {s.no: s for s in r.entries("initScripts", script)},
        "placement_groups": {g.no: g for g in r.entries("placementGroups", group)},
        "snapshots": {s.no: s for s in r.entries("blockStorageSnapshots", snapshot)},
        "member_images": {m.no: m for m in r.entries("memberServerImages", member)},
    }


def _products(r: _Reader) -> dict[str, Any]:
    """Read specs, images, server products, image products and volume types (every region)."""

    def spec(where: str, item: dict[str, Any]) -> SpecEntry:
        return SpecEntry(
            r.text(where, item, "serverSpecCode"),
            r.number(where, item, "cpuCount"),
            r.number(where, item, "memorySize"),
            r.text(where, item, "generationCode", "G3"),
            r.text(where, item, "hypervisorTypeCode", "KVM"),
            r.text(where, item, "serverProductCode", ""),
            r.text(where, item, "serverSpecDescription", ""),
        )

    def product(where: str, item: dict[str, Any]) -> ServerProductEntry:
        return ServerProductEntry(
            r.text(where, item, "productCode"),
            r.text(where, item, "productName", ""),
            r.number(where, item, "cpuCount"),
            r.number(where, item, "memorySize"),
            r.number(where, item, "baseBlockStorageSize", 50),
            r.text(where, item, "generationCode", "G2"),
        )

    specs = {s.code: s for s in r.entries("serverSpecs", spec)}
    products = {p.code: p for p in r.entries("serverProducts", product)}

    def image(where: str, item: dict[str, Any]) -> ServerImageEntry:
        codes = r.codes(where, item, "serverSpecCodes")
        r.check(all(c in specs for c in codes), f"{where}: serverSpecCodes names unknown specs")
        return ServerImageEntry(
            r.text(where, item, "serverImageNo"),
            r.text(where, item, "serverImageName", ""),
            r.text(where, item, "hypervisorTypeCode", "KVM"),
            codes,
            r.text(where, item, "serverImageDescription", ""),
            r.text(where, item, "serverImageProductCode", ""),
        )

    def image_product(where: str, item: dict[str, Any]) -> ImageProductEntry:
        codes = r.codes(where, item, "serverProductCodes")
        r.check(all(c in products for c in codes), f"{where}: unknown serverProductCodes")
        return ImageProductEntry(
            r.text(where, item, "productCode"),
            r.text(where, item, "productName", ""),
            codes,
            r.text(where, item, "productDescription", ""),
        )

    def volume(where: str, item: dict[str, Any]) -> VolumeTypeEntry:
        hypervisor = r.text(where, item, "hypervisorTypeCode", "KVM")
        return VolumeTypeEntry(r.text(where, item, "blockStorageVolumeTypeCode"), hypervisor)

    return {
        "specs": specs,
        "products": products,
        "images": {i.no: i for i in r.entries("serverImages", image)},
        "image_products": {p.code: p for p in r.entries("serverImageProducts", image_product)},
        "volume_types": {v.code: v for v in r.entries("blockStorageVolumeTypes", volume)},
    }


def catalog_from_json(data: Any) -> Catalog:
    """Return the catalog a parsed JSON document describes; raise ValueError naming problems."""
    r = _Reader(data)
    regions = _regions(r)
    first = regions[0].code if regions else ""
    sections = {**_networks(r, regions, first), **_regional(r, regions, first), **_products(r)}
    for no, member in sections["member_images"].items():
        r.check(
            member.image in sections["images"]
            or member.image_product in sections["image_products"],
            f"memberServerImages {no}: made from an image the catalog does not hold",
        )
    for no, image in sections["images"].items():
        r.check(
            not image.product_code or image.product_code in sections["image_products"],
            f"serverImages {no}: serverImageProductCode names no serverImageProducts entry",
        )
    if r.problems:
        raise ValueError("; ".join(r.problems))
    return Catalog(regions, **sections)


def load_catalog(path: str | Path) -> Catalog:
    """Read a catalog file; raise ValueError naming the file and every problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return catalog_from_json(data)
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"catalog {path}: {error}") from None


@cache
def default_catalog() -> Catalog:
    """Return the built-in catalog (see ``catalog_default``): every example inventory fits it."""
    from fleet.simulator.catalog_default import DEFAULT_CATALOG

    return catalog_from_json(DEFAULT_CATALOG)
