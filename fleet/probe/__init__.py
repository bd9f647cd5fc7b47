"""``fleet probe``: what an account's NCP does where NCP's documents are silent, measured.

Rooms: ``account`` (keys, regions, server counts), ``clock`` (offset from the Date header),
``rate`` (read rate, burst and the throttle's shape, on a budget), ``create`` (listing lag, time
to RUN, duplicate names, the name filter, the description's unit, from at most two servers),
``cleanup`` (stop, terminate, wait until gone), ``intent`` (each create recorded before it is
sent), ``profile`` (the JSON document) and ``run`` (the table of contents). Every call goes
through the client of ``fleet.ncp``; the clocks, sleep and transport are injected as everywhere.
"""

from __future__ import annotations

from .create import ProbeRow, probe_row
from .profile import (
    FIGURES,
    DescriptionUnit,
    DuplicateNames,
    NameFilter,
    Profile,
    Throttle,
    load_profile,
    write_profile,
)
from .run import ProbeResult, Seams, probe

__all__ = [
    "FIGURES",
    "DescriptionUnit",
    "DuplicateNames",
    "NameFilter",
    "ProbeResult",
    "ProbeRow",
    "Profile",
    "Seams",
    "Throttle",
    "load_profile",
    "probe",
    "probe_row",
    "write_profile",
]
