"""The read APIs on the catalog, answered with NCP's shapes, filters and paging (pure, no I/O).

Every answer is ``{"<action>Response": {"totalRows", "<thing>List": [...], "requestId",
"returnCode": "0", "returnMessage": "success"}}``. Each read acts on the call's region (the first
without ``regionCode``; an unknown one is 900005): entries that live in a region show in their
region only, while images, specs, products and volume types show in every region. Reads that NCP
pages take ``pageNo``/``pageSize`` (``page_size`` by default, at most ``max_page_size``), and
``totalRows`` counts every match. Filters, by action (``name.N`` is a 1-based list):

- getRegionList, getZoneList: no filter, not paged
- getServerImageList: serverImageNoList.N, serverImageName, hypervisorCodeList.N; paged
- getServerImageProductList: productCode, exclusionProductCode
- getMemberServerImageInstanceList: memberServerImageInstanceNoList.N, memberServerImageName;
  paged
- getServerSpecList: serverImageNo (the specs it runs on), serverSpecCodeList.N, zoneCode
- getServerProductList: serverImageProductCode (required: its products), productCode,
  exclusionProductCode, zoneCode
- getLoginKeyList: keyName, loginKeyNameList.N; paged
- getAccessControlGroupList: accessControlGroupNoList.N, vpcNo, accessControlGroupName; paged
- getInitScriptList: initScriptNoList.N, initScriptName; paged
- getPlacementGroupList: placementGroupNoList.N, placementGroupName
- getBlockStorageVolumeTypeList: blockStorageVolumeTypeCodeList.N, hypervisorTypeCodeList.N,
  zoneCode
- getBlockStorageSnapshotInstanceList: blockStorageSnapshotInstanceNoList.N,
  blockStorageSnapshotName; paged
- getNetworkInterfaceList: networkInterfaceNoList.N, ip, networkInterfaceName; paged (the
  catalog's interfaces, with the server holding each; not the ones creates make)
- getVpcList (under ``/vpc/v2/``): vpcNoList.N, vpcName
- getSubnetList (under ``/vpc/v2/``): subnetNoList.N, vpcNo, zoneCode, subnet, subnetTypeCode;
  paged

A ``zoneCode`` outside the call's region is refused (900002).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from fleet.simulator import records
from fleet.simulator.catalog import Catalog, RegionEntry
from fleet.simulator.errors import (
    INVALID_PARAMETER,
    MISSING_PARAMETER,
    ApiError,
    Problems,
    raise_first,
)
from fleet.simulator.state import SimulatorState
from fleet.simulator.wire import Action, index_list, paged_response, response

__all__ = ["VPC_ACTIONS", "ReadActions"]


@dataclass(frozen=True, slots=True)
class _Listing:
    """A read that lists one catalog section: filters are (parameter, entry attribute) pairs.

    A parameter ending in ``List`` is a 1-based list (``name.N``): the entry's value must be one
    of them; any other parameter must equal the entry's value.
    """

    key: str
    section: str
    record: Callable[[Any], dict[str, Any]]
    filters: tuple[tuple[str, str], ...]
    paged: bool = True
    regional: bool = True  # entries carry a region; else they are offered in every region


_LISTINGS: Final = {
    "getServerImageList": _Listing(
        "serverImageList",
        "images",
        records.image_record,
        (
            ("serverImageNoList", "no"),
            ("serverImageName", "name"),
            ("hypervisorCodeList", "hypervisor"),
        ),
        regional=False,
    ),
    "getServerImageProductList": _Listing(
        "productList",
        "image_products",
        records.image_product_record,
        (("productCode", "code"),),
        paged=False,
        regional=False,
    ),
    "getMemberServerImageInstanceList": _Listing(
        "memberServerImageInstanceList",
        "member_images",
        records.member_image_record,
        (("memberServerImageInstanceNoList", "no"), ("memberServerImageName", "name")),
    ),
    "getLoginKeyList": _Listing(
        "loginKeyList",
        "login_keys",
        records.login_key_record,
        (("keyName", "name"), ("loginKeyNameList", "name")),
    ),
    "getAccessControlGroupList": _Listing(
        "accessControlGroupList",
        "acgs",
        records.acg_record,
        (("accessControlGroupNoList", "no"), ("vpcNo", "vpc"), ("accessControlGroupName", "name")),
    ),
    "getInitScriptList": _Listing(
        "initScriptList",
        "init_scripts",
        records.init_script_record,
        (("initScriptNoList", "no"), ("initScriptName", "name")),
    ),
    "getPlacementGroupList": _Listing(
        "placementGroupList",
        "placement_groups",
        records.placement_group_record,
        (("placementGroupNoList", "no"), ("placementGroupName", "name")),
        paged=False,
    ),
    "getBlockStorageSnapshotInstanceList": _Listing(
        "blockStorageSnapshotInstanceList",
        "snapshots",
        records.snapshot_record,
        (("blockStorageSnapshotInstanceNoList", "no"), ("blockStorageSnapshotName", "name")),
    ),
    "getVpcList": _Listing(
        "vpcList",
        "vpcs",
        records.vpc_record,
        (("vpcNoList", "no"), ("vpcName", "name")),
        paged=False,
    ),
    "getSubnetList": _Listing(
        "subnetList",
        "subnets",
        records.subnet_record,
        (
            ("subnetNoList", "no"),
            ("vpcNo", "vpc"),
            ("zoneCode", "zone"),
            ("subnet", "cidr"),
            ("subnetTypeCode", "type"),
        ),
    ),
}
# The reads served under /vpc/v2/ (the VPC API); every other one is under /vserver/v2/.
VPC_ACTIONS: Final = frozenset({"getVpcList", "getSubnetList"})


def _matches(
    params: Mapping[str, str], filters: tuple[tuple[str, str], ...], problems: Problems
) -> Callable[[Any], bool]:
    """Return a predicate for the entries the call's filters let through."""
    checks: list[tuple[str, set[str]]] = []  # (attribute, the values it may have)
    for name, attribute in filters:
        if name.endswith("List"):
            wanted = set(index_list(params, name, problems, digits=False))
            if wanted:
                checks.append((attribute, wanted))
        elif params.get(name):
            checks.append((attribute, {params[name]}))

    def keep(entry: Any) -> bool:
        return all(str(getattr(entry, a)) in values for a, values in checks)

    return keep


class ReadActions:
    """The read APIs on the catalog of one simulated account."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.catalog: Catalog = state.catalog
        self.actions: dict[str, Action] = {
            "getRegionList": self.get_region_list,
            "getZoneList": self.get_zone_list,
            "getServerSpecList": self.get_server_spec_list,
            "getServerProductList": self.get_server_product_list,
            "getBlockStorageVolumeTypeList": self.get_block_storage_volume_type_list,
            "getNetworkInterfaceList": self.get_network_interface_list,
        }
        for action, listing in _LISTINGS.items():
            self.actions[action] = partial(self._list, action, listing)

    def _answer(
        self,
        action: str,
        key: str,
        params: Mapping[str, str],
        rows: list[dict[str, Any]],
        *,
        paged: bool,
    ) -> dict[str, Any]:
        if not paged:
            return response(action, key, rows)
        cfg = self.state.config
        return paged_response(params, action, key, rows, cfg.page_size, cfg.max_page_size)

    def _filtered(
        self,
        params: Mapping[str, str],
        entries: Iterable[Any],
        filters: tuple[tuple[str, str], ...],
        region: RegionEntry | None,
    ) -> list[Any]:
        problems: Problems = []
        keep = _matches(params, filters, problems)
        raise_first(problems)
        return [e for e in entries if (region is None or e.region == region.code) and keep(e)]

    def _zone(self, params: Mapping[str, str], region: RegionEntry) -> None:
        zone = params.get("zoneCode")
        if zone and zone not in {z.code for z in region.zones}:
            raise ApiError.server(
                INVALID_PARAMETER, f"zoneCode {zone} is not in region {region.code}"
            )

    def _list(self, action: str, listing: _Listing, params: Mapping[str, str]) -> dict[str, Any]:
        region = self.catalog.region_of(params)
        entries: Mapping[str, Any] = getattr(self.catalog, listing.section)
        found = self._filtered(
            params, entries.values(), listing.filters, region if listing.regional else None
        )
        if action == "getServerImageProductList" and params.get("exclusionProductCode"):
            found = [e for e in found if e.code != params["exclusionProductCode"]]
        rows = [listing.record(entry) for entry in found]
        return self._answer(action, listing.key, params, rows, paged=listing.paged)

    def get_region_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getRegionList: every region, the default (first) one first."""
        rows = [{"regionCode": r.code, "regionName": r.name} for r in self.catalog.regions]
        return response("getRegionList", "regionList", rows)

    def get_zone_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getZoneList: the zones of the call's region (the first without regionCode)."""
        rows = [
            {
                "zoneName": zone.name,
                "zoneCode": zone.code,
                "zoneDescription": zone.description,
                "regionCode": zone.region,
            }
            for zone in self.catalog.region_of(params).zones
        ]
        return response("getZoneList", "zoneList", rows)

    def get_server_spec_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getServerSpecList: the specs (of one image, with serverImageNo)."""
        region = self.catalog.region_of(params)
        self._zone(params, region)
        specs: Iterable[Any] = self.catalog.specs.values()
        if params.get("serverImageNo"):
            image = self.catalog.images.get(params["serverImageNo"])
            specs = [self.catalog.specs[c] for c in image.specs] if image else []
        found = self._filtered(params, specs, (("serverSpecCodeList", "code"),), None)
        rows = [records.spec_record(spec) for spec in found]
        return self._answer("getServerSpecList", "serverSpecList", params, rows, paged=False)

    def get_server_product_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getServerProductList: the server products of one image product."""
        region = self.catalog.region_of(params)
        self._zone(params, region)
        code = params.get("serverImageProductCode", "")
        if not code:
            raise ApiError.server(MISSING_PARAMETER, "serverImageProductCode is required")
        image_product = self.catalog.image_products.get(code)
        codes = image_product.products if image_product else ()
        products = [self.catalog.products[c] for c in codes]
        found = self._filtered(params, products, (("productCode", "code"),), None)
        found = [p for p in found if p.code != params.get("exclusionProductCode")]
        rows = [records.product_record(product) for product in found]
        return self._answer("getServerProductList", "productList", params, rows, paged=False)

    def get_block_storage_volume_type_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getBlockStorageVolumeTypeList: the volume type codes a create may name."""
        region = self.catalog.region_of(params)
        self._zone(params, region)
        filters = (
            ("blockStorageVolumeTypeCodeList", "code"),
            ("hypervisorTypeCodeList", "hypervisor"),
        )
        found = self._filtered(params, self.catalog.volume_types.values(), filters, None)
        zones = [z.code for z in region.zones]
        rows = [records.volume_type_record(volume, zones) for volume in found]
        key = "blockStorageVolumeTypeList"
        return self._answer("getBlockStorageVolumeTypeList", key, params, rows, paged=False)

    def get_network_interface_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getNetworkInterfaceList: the catalog's NICs, free or in use."""
        region = self.catalog.region_of(params)
        filters = (("networkInterfaceNoList", "no"), ("ip", "ip"), ("networkInterfaceName", "name"))
        found = self._filtered(params, self.catalog.nics.values(), filters, region)
        user = self.state.resources.nic_user
        rows = [records.nic_record(nic, user(nic.no)) for nic in found]
        made = self._filtered(params, self.state.resources.live_nics(), filters, region)
        rows += [records.nic_record(nic, "", default=True) for nic in made]
        return self._answer(
            "getNetworkInterfaceList", "networkInterfaceList", params, rows, paged=True
        )
