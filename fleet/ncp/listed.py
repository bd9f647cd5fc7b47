"""What NCP holds that a rollout names, read once per run: each distinct object one time.

An inventory row expands into servers that differ only in name, so the row (its first server)
stands for all of them: 800 servers from 4 rows name 4 images at most. ``Row`` is that view.

``load`` reads in two rounds, every round a few calls per region, whatever the number of rows:

1. the regions named (getRegionList, only if a row names one), then per region every image, image
   product, member image, VPC, subnet, ACG, network interface, login key, init script, placement
   group, snapshot and volume type the rows name: one call per kind, the numbers of a kind
   batched into the read's list filter (``serverImageNoList.N`` ...), a listing read whole where
   NCP has no such filter (login keys, image products, volume types);
2. what depends on the first round: the specs of each (image, zone) and the server products of
   each (image product, zone), the zone being the row's subnet's; the subnets of the network
   interfaces named, to know their VPC.

A read that fails after the client's retries raises :class:`PreflightError`: never a silent pass.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from fleet.errors import NcpError, PreflightError
from fleet.planned import PlannedServer

from .client import NcpClient
from .reads import READS, Item, MemberImage, NetworkInterface, Resource, Subnet, read

__all__ = [
    "PARAMETERS",
    "Listed",
    "Row",
    "load",
    "origin",
    "region_known",
    "rows_of",
    "where",
    "zone_of",
]

# What each parameter that names an object names, by the parameter as sent (list indexes as
# ``N``); the loader reads these, and the preflight checks each exists.
PARAMETERS: Final[Mapping[str, Resource]] = {
    "serverImageNo": Resource.IMAGE,
    "serverImageProductCode": Resource.IMAGE_PRODUCT,
    "memberServerImageInstanceNo": Resource.MEMBER_IMAGE,
    "vpcNo": Resource.VPC,
    "subnetNo": Resource.SUBNET,
    "loginKeyName": Resource.LOGIN_KEY,
    "initScriptNo": Resource.INIT_SCRIPT,
    "placementGroupNo": Resource.PLACEMENT_GROUP,
    "networkInterfaceList.N.subnetNo": Resource.SUBNET,
    "networkInterfaceList.N.networkInterfaceNo": Resource.NIC,
    "networkInterfaceList.N.accessControlGroupNoList.N": Resource.ACG,
    "blockStorageMappingList.N.snapshotInstanceNo": Resource.SNAPSHOT,
    "blockStorageMappingList.N.blockStorageVolumeTypeCode": Resource.VOLUME_TYPE,
}
_INDEX = re.compile(r"\.[0-9]+(?=\.|$)")


def named(key: str) -> Resource | None:
    """Return the kind of object a sent parameter names, or None."""
    return PARAMETERS.get(_INDEX.sub(".N", key))


def where(region: str) -> str:
    """Return how a message names a region ('' is NCP's default one)."""
    return f"in region {region}" if region else "in the default region"


@dataclass(frozen=True, slots=True)
class Row:
    """One inventory row, through its first server: the others differ only in name."""

    spec: PlannedServer
    servers: int
    # Where the row's creates go: its regionCode, '' for NCP's default region (named by its code
    # once getRegionList was read, so that KR and '' are read once).
    region: str

    def get(self, key: str) -> str:
        """Return a parameter as sent, or ''."""
        return self.spec.get(key)

    def items(self, list_name: str) -> dict[str, dict[str, str]]:
        """Return a list parameter's items as sent: index -> field (nested lists flat) -> value."""
        found: dict[str, dict[str, str]] = defaultdict(dict)
        for key, value in self.spec.params:
            parts = key.split(".", 2)
            if len(parts) == 3 and parts[0] == list_name:
                found[parts[1]][parts[2]] = value
        return dict(found)

    def references(self) -> Iterator[tuple[str, Resource, str]]:
        """Yield (parameter as sent, kind, value) for every object the row names."""
        for key, value in self.spec.params:
            kind = named(key)
            if kind is not None and value:
                yield key, kind, value


def rows_of(specs: Sequence[PlannedServer]) -> list[Row]:
    """Group servers into their rows (same file, line and parameters but the name), in order."""
    counts: dict[tuple[object, ...], int] = {}
    firsts: dict[tuple[object, ...], PlannedServer] = {}
    for spec in specs:
        params = tuple(p for p in spec.params if p[0] != "serverName")
        key = (spec.file, spec.line, spec.renumbered, params)
        counts[key] = counts.get(key, 0) + 1
        firsts.setdefault(key, spec)
    return [Row(firsts[key], count, firsts[key].region) for key, count in counts.items()]


Scope = tuple[Resource, str, str]  # (kind, region, what the listing is of: an image@zone, or '')


@dataclass
class Listed:
    """The objects a run looked up, by kind, region and scope; each is read at most once."""

    client: NcpClient
    _found: dict[Scope, dict[str, Item]] = field(default_factory=dict)
    _asked: dict[Scope, set[str]] = field(default_factory=dict)
    _whole: set[Scope] = field(default_factory=set)  # listings read whole: nothing more to ask

    def default_region(self) -> str:
        """Return the code of the first region getRegionList listed (NCP's default), or ''."""
        regions = self._found.get((Resource.REGION, "", ""), {})
        return next(iter(regions), "")

    def get(self, kind: Resource, region: str, key: str, scope: str = "") -> Item | None:
        """Return an object looked up before, or None when NCP did not list it."""
        return self._found.get((kind, region, scope), {}).get(key)

    async def load(
        self,
        kind: Resource,
        region: str,
        keys: Iterable[str],
        *,
        scope: str = "",
        params: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Read the objects of a kind not looked up yet; a listing NCP cannot filter, whole, once.

        ``scope`` names a listing of its own (the specs of one image in one zone), read with
        ``params`` as its filters.
        """
        at: Scope = (kind, region, scope)
        spec = READS[kind]
        missing = sorted(set(keys) - self._asked.get(at, set()))
        if at in self._whole or (spec.by is not None and not missing):
            return
        try:
            items = await read(
                self.client,
                kind,
                region=region,
                numbers=missing if spec.by else (),
                params=params,
            )
        except NcpError as exc:
            raise PreflightError(
                [],
                f"preflight could not read {spec.action} ({where(region)}) to check the "
                f"{kind.value}s the inventory names: {exc}. Nothing was sent; run again, or "
                "skip the check with --no-preflight.",
            ) from exc
        self._found.setdefault(at, {}).update((item.key, item) for item in items)
        self._asked.setdefault(at, set()).update(missing)
        if spec.by is None:
            self._whole.add(at)


def origin(row: Row, catalog: Listed) -> tuple[str, str] | None:
    """Return the row's (serverImageNo, serverImageProductCode), through its member image.

    None when the image named is not listed (the preflight reports that on its own).
    """
    member_no = row.get("memberServerImageInstanceNo")
    if member_no:
        member = catalog.get(Resource.MEMBER_IMAGE, row.region, member_no)
        if not isinstance(member, MemberImage):
            return None
        return member.image_no, member.image_product_code
    image_no, product = row.get("serverImageNo"), row.get("serverImageProductCode")
    if image_no and catalog.get(Resource.IMAGE, row.region, image_no) is None:
        return None
    if product and catalog.get(Resource.IMAGE_PRODUCT, row.region, product) is None:
        return None
    return image_no, product


def zone_of(row: Row, catalog: Listed) -> str:
    """Return the zone of the row's subnet, or '' when the subnet is not one of its VPC's."""
    subnet = catalog.get(Resource.SUBNET, row.region, row.get("subnetNo"))
    if isinstance(subnet, Subnet) and subnet.vpc_no == row.get("vpcNo"):
        return subnet.zone
    return ""


def fit_scopes(row: Row, catalog: Listed) -> Iterator[tuple[Resource, str, list[tuple[str, str]]]]:
    """Yield (kind, scope, filters) of the spec or product listing the row's choice must be in."""
    found = origin(row, catalog)
    if found is None:
        return
    image_no, product = found
    zone = zone_of(row, catalog)
    zoned = [("zoneCode", zone)] if zone else []
    if image_no and row.get("serverSpecCode"):
        yield Resource.SPEC, f"{image_no}@{zone}", [("serverImageNo", image_no), *zoned]
    elif product and not image_no and row.get("serverProductCode"):
        yield Resource.PRODUCT, f"{product}@{zone}", [("serverImageProductCode", product), *zoned]


def region_known(row: Row, catalog: Listed) -> bool:
    """Return whether NCP lists the row's region (the default region always is)."""
    return not row.region or catalog.get(Resource.REGION, "", row.region) is not None


async def load(catalog: Listed, rows: Sequence[Row]) -> list[Row]:
    """Read everything the rows name; return the rows, the default region named by its code.

    Nothing is read for a row whose region NCP does not list.
    """
    regions = {row.region for row in rows if row.region}
    if regions:
        await catalog.load(Resource.REGION, "", regions)
        default = catalog.default_region()
        rows = [r if r.region else replace(r, region=default) for r in rows]
    usable = [r for r in rows if region_known(r, catalog)]
    await _named_objects(catalog, usable)
    await _dependent_objects(catalog, usable)
    return list(rows)


async def _named_objects(catalog: Listed, rows: Sequence[Row]) -> None:
    """Round 1: every object the rows name, one read per kind and region."""
    wanted: dict[tuple[Resource, str], set[str]] = defaultdict(set)
    for row in rows:
        for _, kind, value in row.references():
            wanted[(kind, row.region)].add(value)
    for (kind, region), keys in sorted(wanted.items()):
        await catalog.load(kind, region, keys)


async def _dependent_objects(catalog: Listed, rows: Sequence[Row]) -> None:
    """Round 2: the subnets of the interfaces named; specs and products per image and zone."""
    nic_subnets: dict[str, set[str]] = defaultdict(set)
    fits: dict[tuple[Resource, str, str], list[tuple[str, str]]] = {}
    for row in rows:
        for _, kind, value in row.references():
            nic = catalog.get(kind, row.region, value) if kind is Resource.NIC else None
            if isinstance(nic, NetworkInterface) and nic.subnet_no:
                nic_subnets[row.region].add(nic.subnet_no)
        for kind, scope, params in fit_scopes(row, catalog):
            fits[(kind, row.region, scope)] = params
    for region, subnets in sorted(nic_subnets.items()):
        await catalog.load(Resource.SUBNET, region, subnets)
    for (kind, region, scope), params in sorted(fits.items()):
        await catalog.load(kind, region, (), scope=scope, params=params)
