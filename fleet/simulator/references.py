"""A create's references checked against the catalog: every number it names must exist, there.

Runs after the structural checks of ``validation`` passed, so every value is well-formed here.
What it finds missing is refused with the codes of ``errors`` (900020-900029, NCP's 1413); what
it finds is returned as a ``Placement``: the zone (the subnet's), the network interface to take,
the public IP and the disks to make, and the size of the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from fleet.simulator.catalog import Catalog, RegionEntry, SubnetEntry, VpcEntry
from fleet.simulator.errors import (
    IP_OUTSIDE_SUBNET,
    NIC_UNAVAILABLE,
    SPEC_MISMATCH,
    UNKNOWN_ACG,
    UNKNOWN_IMAGE,
    UNKNOWN_INIT_SCRIPT,
    UNKNOWN_LOGIN_KEY,
    UNKNOWN_PLACEMENT_GROUP,
    UNKNOWN_STORAGE,
    UNKNOWN_SUBNET,
    UNKNOWN_VPC,
    Problems,
    raise_first,
)
from fleet.simulator.servers import Machine
from fleet.simulator.wire import is_digits

__all__ = ["DiskPlan", "Placement", "place"]

_DEFAULT_DISK_GB: Final = 10  # NCP's smallest extra disk
Items = dict[int, dict[str, str]]


@dataclass(frozen=True, slots=True)
class DiskPlan:
    """An extra disk a create makes (a blockStorageMappingList item of order 1 or more)."""

    name: str
    size_gb: int
    volume_type: str
    snapshot: str


@dataclass(frozen=True, slots=True)
class Placement:
    """What a valid create's references resolve to."""

    zone: str
    nic: str  # a catalog network interface the (single) server takes, or ''
    public_ip: bool
    disks: tuple[DiskPlan, ...]
    machine: Machine
    cidr: str = ""  # the subnet's, where a server's default interface takes its private IP
    ip: str = ""  # the private IP the create asked for on order 0, if any


def _default_ip(nics: Items) -> str:
    """Return the IP a create asks for on its default interface (order 0), or ''."""
    for item in nics.values():
        if item.get("networkInterfaceOrder") == "0" and "networkInterfaceNo" not in item:
            return item.get("ip", "")
    return ""


def _network(
    p: Mapping[str, str],
    region: RegionEntry,
    catalog: Catalog,
    nics: Items,
    problems: Problems,
) -> tuple[VpcEntry | None, SubnetEntry | None]:
    """Check the VPC, the subnet and each NIC item's subnet and ACGs; return the VPC and subnet."""
    vpc = catalog.vpcs.get(p["vpcNo"])
    if vpc is None or vpc.region != region.code:
        problems.append((UNKNOWN_VPC, f"vpcNo {p['vpcNo']} not found in region {region.code}"))
        return None, None
    subnet = catalog.subnets.get(p["subnetNo"])
    if subnet is None or subnet.vpc != vpc.no:
        problems.append((UNKNOWN_SUBNET, f"subnetNo {p['subnetNo']} not found in VPC {vpc.no}"))
        return vpc, None
    for index, item in sorted(nics.items()):
        where = f"networkInterfaceList.{index}"
        own = catalog.subnets.get(item.get("subnetNo", subnet.no))
        if own is None or own.vpc != vpc.no or own.zone != subnet.zone:
            problems.append(
                (UNKNOWN_SUBNET, f"{where}.subnetNo not in VPC {vpc.no}, zone {subnet.zone}")
            )
        elif "ip" in item and not own.holds(item["ip"]):
            problems.append((IP_OUTSIDE_SUBNET, f"{where}.ip {item['ip']} not in {own.cidr}"))
        for acg in item.get("accessControlGroupNoList", "").split():
            found = catalog.acgs.get(acg)
            if found is None or found.vpc != vpc.no:
                problems.append((UNKNOWN_ACG, f"{where}: ACG {acg} not found in VPC {vpc.no}"))
    return vpc, subnet


def _nic(
    nics: Items,
    vpc: VpcEntry,
    subnet: SubnetEntry,
    catalog: Catalog,
    count: int,
    taken: Callable[[str], bool],
    problems: Problems,
) -> str:
    """Return the catalog NIC a create takes (or ''), checking it is there and free."""
    wanted = [item["networkInterfaceNo"] for item in nics.values() if "networkInterfaceNo" in item]
    if not wanted:
        return ""
    problem = ""
    nic = catalog.nics.get(wanted[0])
    if len(wanted) > 1 or count > 1:
        problem = "a network interface goes to one server: one networkInterfaceNo, count 1"
    elif nic is None or nic.vpc != vpc.no:
        problem = f"networkInterfaceNo {wanted[0]} not found in VPC {vpc.no}"
    elif catalog.subnets[nic.subnet].zone != subnet.zone:
        problem = f"networkInterfaceNo {nic.no} is not in zone {subnet.zone}"
    elif nic.instance or taken(nic.no):  # a server outside the simulator's, or one of its own
        problem = f"networkInterfaceNo {nic.no} is in use"
    if problem:
        problems.append((NIC_UNAVAILABLE, problem))
    return wanted[0]


def _image(
    p: Mapping[str, str], region: RegionEntry, catalog: Catalog, problems: Problems
) -> Machine | None:
    """Check the image and that the spec or product fits it; return what the server runs."""
    image_no = p.get("serverImageNo", "")
    product_code = p.get("serverImageProductCode", "")
    if "memberServerImageInstanceNo" in p:
        member = catalog.member_images.get(p["memberServerImageInstanceNo"])
        if member is None or member.region != region.code:
            problems.append((UNKNOWN_IMAGE, "memberServerImageInstanceNo not found in the region"))
            return None
        image_no, product_code = member.image, member.image_product
    if image_no:
        image = catalog.images.get(image_no)
        if image is None:
            problems.append((UNKNOWN_IMAGE, f"serverImageNo {image_no} not found"))
            return None
        code = p.get("serverSpecCode", "")
        spec = catalog.specs.get(code)
        if spec is None or code not in image.specs:
            problems.append(
                (SPEC_MISMATCH, f"serverSpecCode {code!r} does not fit image {image.no}")
            )
            return None
        return Machine(
            spec.cpu,
            spec.memory,
            image.hypervisor,
            image.no,
            image.product_code,
            spec.code,
            spec.product_code,
        )
    image_product = catalog.image_products.get(product_code)
    if image_product is None:
        problems.append((UNKNOWN_IMAGE, f"serverImageProductCode {product_code} not found"))
        return None
    code = p.get("serverProductCode", image_product.products[0] if image_product.products else "")
    product = catalog.products.get(code)
    if product is None or code not in image_product.products or "serverSpecCode" in p:
        problems.append((SPEC_MISMATCH, f"server product {code!r} does not fit {product_code}"))
        return None
    # NCP lists the image number and spec code of a server made from their product codes too.
    image = catalog.image_of_product(product_code)
    spec = catalog.spec_of_product(code)
    return Machine(
        product.cpu,
        product.memory,
        "XEN",
        image.no if image is not None else "",
        product_code,
        spec.code if spec is not None else "",
        code,
    )


def _named(p: Mapping[str, str], region: RegionEntry, catalog: Catalog, problems: Problems) -> None:
    """Check the login key, init script and placement group, each in the call's region."""
    checks = [
        ("loginKeyName", catalog.login_keys, UNKNOWN_LOGIN_KEY),
        ("initScriptNo", catalog.init_scripts, UNKNOWN_INIT_SCRIPT),
        ("placementGroupNo", catalog.placement_groups, UNKNOWN_PLACEMENT_GROUP),
    ]
    for name, entries, code in checks:
        if name in p:
            found = entries.get(p[name])
            if found is None or getattr(found, "region", "") != region.code:
                problems.append((code, f"{name} {p[name]} not found in region {region.code}"))


def _disks(
    disks: Items, region: RegionEntry, catalog: Catalog, problems: Problems
) -> tuple[DiskPlan, ...]:
    """Check each mapping item's snapshot, volume type and size; return the disks to make."""
    plans: list[DiskPlan] = []
    for index, item in sorted(disks.items()):
        where = f"blockStorageMappingList.{index}"
        snapshot = catalog.snapshots.get(item.get("snapshotInstanceNo", ""))
        if "snapshotInstanceNo" in item and (snapshot is None or snapshot.region != region.code):
            problems.append(
                (UNKNOWN_STORAGE, f"{where}.snapshotInstanceNo not found in the region")
            )
        volume = item.get("blockStorageVolumeTypeCode", "")
        if volume and volume not in catalog.volume_types:
            problems.append(
                (UNKNOWN_STORAGE, f"{where}.blockStorageVolumeTypeCode {volume!r} unknown")
            )
        size = item.get("blockStorageSize", "")
        if size and not is_digits(size):
            problems.append((UNKNOWN_STORAGE, f"{where}.blockStorageSize is not a size in GiB"))
            continue
        if item["order"] == "0" or item.get("noBlockStorage") == "true":
            continue  # order 0 sets the base storage; noBlockStorage makes none
        default = snapshot.size_gb if snapshot is not None else _DEFAULT_DISK_GB
        plans.append(
            DiskPlan(
                item.get("blockStorageName", ""),
                int(size) if size else default,
                volume,
                snapshot.no if snapshot is not None else "",
            )
        )
    return tuple(plans)


def place(
    p: Mapping[str, str],
    region: RegionEntry,
    catalog: Catalog,
    lists: Mapping[str, Items],
    count: int,
    nic_taken: Callable[[str], bool],
) -> Placement:
    """Check a structurally valid create's references; raise ApiError naming every problem."""
    problems: Problems = []
    nics = lists["networkInterfaceList"]
    vpc, subnet = _network(p, region, catalog, nics, problems)
    nic = ""
    if vpc is not None and subnet is not None:
        nic = _nic(nics, vpc, subnet, catalog, count, nic_taken, problems)
    machine = _image(p, region, catalog, problems)
    _named(p, region, catalog, problems)
    disks = _disks(lists["blockStorageMappingList"], region, catalog, problems)
    raise_first(problems)
    # No problem was found, so the subnet and the image were.
    assert subnet is not None
    assert machine is not None
    public_ip = p.get("associateWithPublicIp") == "true"
    return Placement(subnet.zone, nic, public_ip, disks, machine, subnet.cidr, _default_ip(nics))
