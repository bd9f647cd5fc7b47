"""The read-only APIs on the catalog, answered with NCP's response shapes (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.simulator.catalog import Catalog
from fleet.simulator.wire import Action, response

__all__ = ["Reads"]


class Reads:
    """getRegionList, getZoneList: the catalog as NCP lists it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.actions: dict[str, Action] = {
            "getRegionList": self.get_region_list,
            "getZoneList": self.get_zone_list,
        }

    def get_region_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getRegionList: every region, the default (first) one first."""
        rows = [{"regionCode": r.code, "regionName": r.name} for r in self.catalog.regions]
        return response("getRegionList", "regionList", rows)

    def get_zone_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getZoneList: the zones of the call's region (the first without regionCode)."""
        region = self.catalog.region_of(params)
        rows = [
            {
                "zoneName": zone.name,
                "zoneCode": zone.code,
                "zoneDescription": zone.description,
                "regionCode": zone.region,
            }
            for zone in region.zones
        ]
        return response("getZoneList", "zoneList", rows)
