"""One server to create, as the inventory expands it: plain data, no pandas."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["PlannedServer"]


@dataclass(frozen=True, slots=True)
class PlannedServer:
    """One server to create: its name, where it was written, and its createServerInstances call."""

    name: str
    file: str
    line: int
    # The form parameters of one createServerInstances call, in wire order, already encoded
    # (1-based flattened lists, lower-case booleans), serverCreateCount=1 and this serverName
    # included; responseFormatType excluded (the client owns it).
    params: tuple[tuple[str, str], ...]
    # Where the row skips a list index, its items are renumbered 1, 2, ... on the wire: the
    # (sent, written) item prefixes, e.g. ("networkInterfaceList.2", "networkInterfaceList.3").
    # Empty when nothing was renumbered; one tuple shared by every server of the row.
    renumbered: tuple[tuple[str, str], ...] = ()

    @property
    def params_hash(self) -> str:
        """Return a short stable digest of the parameters, to notice a changed inventory."""
        text = "\n".join(f"{k}={v}" for k, v in sorted(self.params))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def get(self, key: str) -> str:
        """Return one parameter's value as sent, or '' when it is not sent."""
        for name, value in self.params:
            if name == key:
                return value
        return ""

    def column(self, key: str) -> str:
        """Return the inventory column a sent parameter came from (its list index as written).

        ``networkInterfaceList.1.accessControlGroupNoList.2`` came from the cell
        ``networkInterfaceList.1.accessControlGroupNoList``, which holds every ACG of that NIC.
        """
        parts = key.split(".")
        if len(parts) < 3:
            return key
        item = f"{parts[0]}.{parts[1]}"
        item = next((written for sent, written in self.renumbered if sent == item), item)
        return f"{item}.{parts[2]}"

    @property
    def vpc_no(self) -> str:
        """Return the VPC this server goes into."""
        return self.get("vpcNo")

    @property
    def region(self) -> str:
        """Return the server's regionCode, or '' for NCP's default region (the first one)."""
        return self.get("regionCode")
