"""The header rules: which column names an inventory may use, and a did-you-mean for the rest."""

from __future__ import annotations

import difflib
import re

from fleet.ncp.parameters import LISTS, SCALARS

__all__ = ["REQUIRED", "header_problem"]

# Every header names these; a server name is required so that NCP never invents one, which we
# could not find again after a lost response.
REQUIRED = ("vpcNo", "subnetNo", "serverName")

_CLIENT_OWNED = "responseFormatType"
_NIC = "networkInterfaceList"
_ACG = "accessControlGroupNoList"
_INDEX_RE = re.compile(r"[1-9][0-9]*")


def header_problem(name: str) -> str | None:
    """Return what is wrong with a header cell, or None for a supported column."""
    if name in SCALARS:
        return None
    if name == _CLIENT_OWNED:
        return "set by the client, which always asks for json: remove this column"
    parts = name.split(".")
    if parts[0] in LISTS:
        spec = LISTS[parts[0]]
        if len(parts) == 3 and parts[2] in spec.fields:
            if _INDEX_RE.fullmatch(parts[1]):
                return None
            return (
                f"list index must be a positive integer without leading zeros (found {parts[1]!r})"
            )
        if len(parts) == 2 and parts[1] in spec.fields:
            return f"list column without an index (did you mean '{parts[0]}.1.{parts[1]}'?)"
        if len(parts) == 4 and parts[0] == _NIC and parts[2] == _ACG:
            return (
                "unknown column: put every ACG number of a NIC in one cell, separated by spaces"
                f" (did you mean '{_NIC}.{parts[1]}.{_ACG}'?)"
            )
    hint = _suggest(name)
    return f"unknown column (did you mean {hint!r}?)" if hint else "unknown column"


def _suggest(name: str) -> str | None:
    """Return the known column closest to ``name``, for a did-you-mean hint."""
    numbered = re.search(r"\.([1-9][0-9]*)\.", name)
    index = numbered.group(1) if numbered else "1"
    candidates = list(SCALARS) + [
        f"{list_name}.{index}.{item_field}"
        for list_name, spec in LISTS.items()
        for item_field in spec.fields
    ]
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None
