"""Server names: serverCreateCount and serverCreateStartNo read per row, and the expansion.

A row with either column makes ``serverCreateCount`` servers (default 1) named
``{serverName}-{serial:03d}`` from ``serverCreateStartNo`` (default 1); a row with neither makes one
server named as written. :func:`expand` is pure: the pipeline calls it once and hands its result
to the duplicate rule and to the encoder; nothing is stored on the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fleet.inventory.columns import Columns, Ints, Mask
from fleet.ncp.parameters import MAX_CREATE_SERIAL

__all__ = ["COUNT", "NAME", "START", "Expansion", "Serials", "expand", "first_names", "serials"]

COUNT, START, NAME = "serverCreateCount", "serverCreateStartNo", "serverName"

# Serials are always three digits; one shared string per serial across every server.
_SERIALS = np.array([f"{i:03d}" for i in range(MAX_CREATE_SERIAL)], dtype=object)


@dataclass(frozen=True, slots=True, eq=False)  # arrays have no truthful ==
class Serials:
    """Per row, serverCreateCount and serverCreateStartNo as written, 1 where a cell is empty."""

    count: Ints  # 0 where the cell is not a usable integer
    start: Ints
    count_ok: Mask  # the cell is a usable integer
    start_ok: Mask
    has_count: Mask  # the cell is not empty
    has_start: Mask

    @property
    def numbered(self) -> Mask:
        """Return where names get a serial: rows with either column."""
        return self.has_count | self.has_start

    @property
    def in_range(self) -> Mask:
        """Return where the count is at least 1 and the start at least 0."""
        return (self.count >= 1) & (self.start >= 0)

    @property
    def over(self) -> Mask:
        """Return where the last serial would need more than three digits."""
        return self.numbered & self.in_range & (self.count + self.start > MAX_CREATE_SERIAL)

    @property
    def usable(self) -> Mask:
        """Return where count and start are both usable, so the row's servers are known."""
        return (
            (self.count_ok | ~self.has_count)
            & (self.start_ok | ~self.has_start)
            & self.in_range
            & ~self.over
        )

    @property
    def first_known(self) -> Mask:
        """Return where the first serial is known: the start is usable, whatever the count says."""
        start_usable = (self.start_ok | ~self.has_start) & (self.start >= 0)
        return start_usable & (self.start < MAX_CREATE_SERIAL)


@dataclass(frozen=True, slots=True, eq=False)  # arrays have no truthful ==
class Expansion:
    """Every server's name, row after row, and where each row's servers sit among them."""

    names: npt.NDArray[np.object_]
    offsets: Ints  # per row, the position of its first server in names
    counts: Ints  # per row, how many servers it makes: 0 where its count or name is unusable
    row_of: Ints  # per server, its row
    serials: Serials  # per row, serverCreateCount and serverCreateStartNo as read


def serials(columns: Columns) -> Serials:
    """Read each row's serverCreateCount and serverCreateStartNo."""
    count, count_ok = columns.ints(COUNT)
    start, start_ok = columns.ints(START)
    has_count, has_start = columns.present(COUNT), columns.present(START)
    return Serials(
        np.where(has_count, count, 1),
        np.where(has_start, start, 1),
        count_ok,
        start_ok,
        has_count,
        has_start,
    )


def first_names(columns: Columns, numbering: Serials) -> tuple[npt.NDArray[np.object_], Mask]:
    """Return each row's first server name, and where it is known (a name and a usable start).

    Every serial of a row makes a name of the same shape (base, '-', three digits), so the first
    name stands for all of the row's names in NCP's name rule, even where the count is wrong.
    """
    base = columns.cell(NAME).to_numpy(dtype=object)
    known = columns.present(NAME) & numbering.first_known
    first = base.copy()
    serialled = numbering.numbered & known
    first[serialled] = base[serialled] + "-" + _SERIALS[numbering.start[serialled]]
    return first, known


def expand(columns: Columns) -> Expansion:
    """Return every server's name; a row whose count, start or name is unusable makes none."""
    numbering = serials(columns)
    base = columns.cell(NAME).to_numpy(dtype=object)
    usable = columns.present(NAME) & numbering.usable
    counts = np.where(usable, numbering.count, 0).astype(np.int64)
    offsets = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    row_of = np.repeat(np.arange(len(counts)), counts)
    serial = numbering.start[row_of] + (np.arange(len(row_of)) - offsets[row_of])
    names = base[row_of]
    suffixed = numbering.numbered[row_of]
    names[suffixed] = names[suffixed] + "-" + _SERIALS[serial[suffixed]]
    return Expansion(names, offsets, counts, row_of, numbering)
