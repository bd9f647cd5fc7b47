"""Preflight: every image, spec, network, ACG, key ... an inventory names, checked against NCP.

A create that names something NCP does not hold fails only when it is sent, server by server,
after the first servers are made and billed. The preflight reads what the rows name first (see
``catalog``: one call per kind of object per region, not one per row) and checks each row with the
small checks of ``CHECKS``; a problem is reported like a validation problem,
``FILE:LINE: COLUMN: what is wrong (found ...)``, on every row that has it, and all of them are
raised at once in a :class:`PreflightError` before anything is sent.

What NCP does not document is read the strict way: a network interface's subnet must be in the
zone of the server's subnet, and a member image made from a ``serverImageNo`` needs a
``serverSpecCode``, as the simulator rules. That an interface or a fixed IP goes to one server
only is the inventory's own rule, checked by validation before this runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from fleet.errors import PreflightError, Problem
from fleet.ncp.client import NcpClient
from fleet.ncp.listed import Listed, Row, load, origin, region_known, rows_of, where, zone_of
from fleet.ncp.reads import AccessControlGroup, NetworkInterface, Resource, Subnet
from fleet.planned import PlannedServer

__all__ = ["CHECKS", "SKIPPED", "Finding", "PreflightReport", "check", "preflight"]

log = logging.getLogger(__name__)

SKIPPED = (
    "preflight skipped (--no-preflight): images, specs, networks, ACGs and keys are checked by "
    "NCP only when each create is sent, after the first servers are made and billed"
)

_NIC = "networkInterfaceList"


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check found wrong with one parameter of a row, as sent."""

    key: str
    message: str
    found: str | None = None


# A check reads one row and what NCP holds (already read), and yields what it finds wrong.
Check = Callable[[Row, Listed], Iterator[Finding]]


def _subnet(catalog: Listed, row: Row, number: str) -> Subnet | None:
    found = catalog.get(Resource.SUBNET, row.region, number)
    return found if isinstance(found, Subnet) else None


def _vpc_known(row: Row, catalog: Listed) -> bool:
    return catalog.get(Resource.VPC, row.region, row.get("vpcNo")) is not None


def exists(row: Row, catalog: Listed) -> Iterator[Finding]:
    """Check that every image, network, ACG, key ... the row names is listed in its region."""
    for key, kind, value in row.references():
        if catalog.get(kind, row.region, value) is None:
            yield Finding(key, f"no such {kind.value} {where(row.region)}", value)


def subnets_in_vpc(row: Row, catalog: Listed) -> Iterator[Finding]:
    """Check the row's and each NIC's subnet are of its VPC, and NIC subnets in its zone."""
    if not _vpc_known(row, catalog):
        return
    vpc, zone = row.get("vpcNo"), zone_of(row, catalog)
    keys = ["subnetNo"]
    keys += [f"{_NIC}.{n}.subnetNo" for n, item in row.items(_NIC).items() if "subnetNo" in item]
    for key in keys:
        subnet = _subnet(catalog, row, row.get(key))
        if subnet is None:
            continue
        if subnet.vpc_no != vpc:
            yield Finding(key, f"belongs to VPC {subnet.vpc_no}, not to vpcNo {vpc}", subnet.key)
        elif zone and subnet.zone != zone:
            message = f"in zone {subnet.zone}, while the server's subnetNo is in {zone}"
            yield Finding(key, message, subnet.key)


def acgs_in_vpc(row: Row, catalog: Listed) -> Iterator[Finding]:
    """Check every ACG of every NIC belongs to the server's VPC."""
    if not _vpc_known(row, catalog):
        return
    vpc = row.get("vpcNo")
    for key, kind, value in row.references():
        acg = catalog.get(kind, row.region, value) if kind is Resource.ACG else None
        if isinstance(acg, AccessControlGroup) and acg.vpc_no != vpc:
            yield Finding(key, f"ACG of VPC {acg.vpc_no}, not of vpcNo {vpc}", value)


def interfaces_usable(row: Row, catalog: Listed) -> Iterator[Finding]:
    """Check a networkInterfaceNo is in the server's VPC and zone, and free."""
    for index, item in row.items(_NIC).items():
        key, number = f"{_NIC}.{index}.networkInterfaceNo", item.get("networkInterfaceNo", "")
        nic = catalog.get(Resource.NIC, row.region, number) if number else None
        if not isinstance(nic, NetworkInterface):
            continue
        subnet, zone = _subnet(catalog, row, nic.subnet_no), zone_of(row, catalog)
        if subnet is not None and subnet.vpc_no != row.get("vpcNo"):
            yield Finding(key, f"in VPC {subnet.vpc_no}, not in vpcNo {row.get('vpcNo')}", number)
        elif subnet is not None and zone and subnet.zone != zone:
            message = f"in zone {subnet.zone}, while the server's subnetNo is in {zone}"
            yield Finding(key, message, number)
        if nic.in_use:
            yield Finding(key, f"in use by server {nic.holder or '(unknown)'}", number)


def addresses_fit(row: Row, catalog: Listed) -> Iterator[Finding]:
    """Check a NIC's ip lies inside its subnet (the NIC's, else the row's)."""
    for index, item in row.items(_NIC).items():
        ip = item.get("ip", "")
        subnet = _subnet(catalog, row, item.get("subnetNo") or row.get("subnetNo")) if ip else None
        if subnet is not None and not subnet.holds(ip):
            message = f"not inside subnet {subnet.key} ({subnet.cidr})"
            yield Finding(f"{_NIC}.{index}.ip", message, ip)


def spec_fits(row: Row, catalog: Listed) -> Iterator[Finding]:
    """Check the spec runs the image (the product, the image product) in the row's zone."""
    found = origin(row, catalog)
    if found is None:
        return
    image_no, product = found
    zone = zone_of(row, catalog)
    in_zone = f" in zone {zone}" if zone else ""
    member = row.get("memberServerImageInstanceNo")
    spec, product_code = row.get("serverSpecCode"), row.get("serverProductCode")
    if image_no and spec:
        if catalog.get(Resource.SPEC, row.region, spec, f"{image_no}@{zone}") is None:
            yield Finding("serverSpecCode", f"does not run server image {image_no}{in_zone}", spec)
    elif image_no and member:
        message = f"required: member image {member} is of server image {image_no} (KVM era)"
        yield Finding("serverSpecCode", message)
    elif product and spec and member:
        message = f"not for member image {member}, made from {product}: give serverProductCode"
        yield Finding("serverSpecCode", message, spec)
    elif product and product_code:
        scope = f"{product}@{zone}"
        if catalog.get(Resource.PRODUCT, row.region, product_code, scope) is None:
            message = f"not a server product of image product {product}{in_zone}"
            yield Finding("serverProductCode", message, product_code)


# The checks, in the order their problems are listed within a row. A row whose regionCode NCP
# does not know is reported on that alone (nothing else can be read for it).
CHECKS: tuple[Check, ...] = (
    exists,  # every object named is listed in the row's region
    subnets_in_vpc,  # subnetNo and each NIC's subnetNo: in vpcNo, NICs in the server's zone
    acgs_in_vpc,  # every ACG of every NIC: of vpcNo
    interfaces_usable,  # networkInterfaceNo: in vpcNo and zone, free
    addresses_fit,  # a NIC's ip: inside its subnet
    spec_fits,  # serverSpecCode / serverProductCode: fit the image, in the subnet's zone
)


def _problem(row: Row, finding: Finding) -> Problem:
    spec = row.spec
    message = finding.message
    if finding.found is not None:
        message += f" (found {finding.found!r})"
    return Problem(spec.file, spec.line, spec.column(finding.key), message)


def check(rows: Sequence[Row], catalog: Listed) -> list[Problem]:
    """Return every problem of every row, in row order (pure: the catalog is already read)."""
    problems: list[Problem] = []
    for row in rows:
        if not region_known(row, catalog):
            message = f"no such region (found {row.region!r})"
            problems.append(Problem(row.spec.file, row.spec.line, "regionCode", message))
            continue
        for check_ in CHECKS:
            problems.extend(_problem(row, finding) for finding in check_(row, catalog))
    return list(dict.fromkeys(problems))  # an ACG named twice in one cell: said once


@dataclass(frozen=True, slots=True)
class PreflightReport:
    """What a preflight that found nothing wrong read: rows, distinct references, calls."""

    rows: int
    references: int
    calls: int

    def __str__(self) -> str:
        return (
            f"preflight: {self.references} distinct references of {self.rows} rows checked "
            f"with {self.calls} read calls, all good"
        )


async def preflight(client: NcpClient, specs: Sequence[PlannedServer]) -> PreflightReport:
    """Check every reference of the servers against NCP's read APIs, before anything is sent.

    Args:
        client: the rollout's client (its limiter and retries apply to every read).
        specs: the servers, as the inventory expanded them.

    Returns:
        What was read, when every reference is good.

    Raises:
        PreflightError: listing every bad reference on every row that has it, or saying which
            read failed after the client's retries.

    """
    before = sum(client.stats.calls.values())
    catalog = Listed(client)
    rows = await load(catalog, rows_of(specs))
    problems = check(rows, catalog)
    calls = sum(client.stats.calls.values()) - before
    if problems:
        raise PreflightError(problems)
    distinct = {(kind, row.region, value) for row in rows for _, kind, value in row.references()}
    report = PreflightReport(len(rows), len(distinct), calls)
    log.info("%s", report)
    return report
