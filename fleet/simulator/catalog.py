"""What the simulated account can see besides its servers: regions and their zones.

Regions are ordered as getRegionList lists them; the first is where every call without a
``regionCode`` acts (NCP's documented default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from fleet.simulator.errors import UNKNOWN_REGION, ApiError

__all__ = ["DEFAULT_REGIONS", "Catalog", "Region", "Zone"]


@dataclass(frozen=True, slots=True)
class Zone:
    """A zone of a region, as getZoneList shows it."""

    code: str
    name: str
    description: str
    region: str


@dataclass(frozen=True, slots=True)
class Region:
    """A region and its zones, as getRegionList and getZoneList show them."""

    code: str
    name: str
    zones: tuple[Zone, ...]


def _region(code: str, name: str, *zones: tuple[str, str]) -> Region:
    return Region(code, name, tuple(Zone(z, z, text, code) for z, text in zones))


# NCP's public-site VPC regions and zones.
DEFAULT_REGIONS: Final = (
    _region("KR", "Korea", ("KR-1", "가산 zone"), ("KR-2", "평촌 zone")),
    _region("JPN", "Japan", ("JPN-4", "일본 zone 4"), ("JPN-5", "일본 zone 5")),
    _region("SGN", "Singapore", ("SGN-4", "싱가포르 zone 4"), ("SGN-5", "싱가포르 zone 5")),
    _region("USWN", "US West", ("USWN-5", "미국 서부 zone 5")),
    _region("DEN", "Germany", ("DEN-5", "독일 zone 5")),
)


class Catalog:
    """The account's regions, looked up by code."""

    def __init__(self, regions: tuple[Region, ...] = DEFAULT_REGIONS) -> None:
        if not regions:
            raise ValueError("a catalog needs at least one region")
        self.regions = regions
        self._regions = {region.code: region for region in regions}

    @property
    def default_region(self) -> Region:
        """Return the first region: where a call without regionCode acts."""
        return self.regions[0]

    def region(self, code: str) -> Region | None:
        """Return the region of that code, or None."""
        return self._regions.get(code)

    def region_of(self, params: Mapping[str, str]) -> Region:
        """Return the region a call acts on: its regionCode, else the first; refuse unknown ones."""
        code = params.get("regionCode") or ""
        if not code:
            return self.default_region
        region = self._regions.get(code)
        if region is None:
            known = ", ".join(self._regions)
            raise ApiError.server(UNKNOWN_REGION, f"unknown regionCode {code!r} (one of {known})")
        return region
