"""A read-only view of every row of every inventory: cells by column, as text, flags or integers.

The rules and the encoder read cells only through :class:`Columns`, never the DataFrame itself, so
a column no file has reads as empty everywhere and no stage needs to know which file had what.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from fleet.ncp.parameters import LISTS, SCALARS, Type

__all__ = ["Columns", "Ints", "Mask", "type_of"]

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

_MAX_INT_DIGITS = 6  # every integer parameter here is small; longer ones would overflow int64
_USABLE_INT_RE = rf"[+-]?[0-9]{{1,{_MAX_INT_DIGITS}}}"


def type_of(column: str) -> Type:
    """Return the parameter type of a supported column (``name`` or ``list.N.field``)."""
    if column in SCALARS:
        return SCALARS[column]
    name, _, item_field = column.split(".")
    return LISTS[name].fields[item_field]


@dataclass(frozen=True, eq=False)  # a DataFrame has no truthful ==
class Columns:
    """Every row of every inventory, one per frame row, read by column name."""

    files: tuple[str, ...]  # the inventory paths as given, by file index
    # One row per inventory row: _file (file index), _line (physical line), then one column of
    # stripped text per supported parameter column, "" where the row's file lacks it.
    frame: pd.DataFrame
    parameters: tuple[str, ...]  # the parameter columns of the frame, in first-seen order
    has_column: dict[str, Mask]  # per column, which rows come from a file whose header has it

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def file_of(self) -> Ints:
        """Return each row's file index."""
        return self.frame["_file"].to_numpy()

    @property
    def line_of(self) -> Ints:
        """Return each row's physical line number."""
        return self.frame["_line"].to_numpy()

    def cell(self, column: str) -> pd.Series[str]:
        """Return a column's stripped text, all empty if no file has it."""
        if column in self.frame.columns:
            return self.frame[column]
        return pd.Series([""] * len(self.frame), index=self.frame.index, dtype=str)

    def present(self, column: str) -> Mask:
        """Return where a column has a value."""
        return (self.cell(column) != "").to_numpy(dtype=bool)

    def ints(self, column: str) -> tuple[Ints, Mask]:
        """Return a column's integer values (0 where not usable) and where they are usable."""
        text = self.cell(column)
        usable = text.str.fullmatch(_USABLE_INT_RE).to_numpy(dtype=bool)
        values = np.zeros(len(text), dtype=np.int64)
        values[usable] = text.to_numpy(dtype=object)[usable].astype(np.int64)
        return values, usable

    def list_items(self, list_name: str) -> dict[int, list[str]]:
        """Return the list's item columns present in the frame, by inventory index, sorted."""
        items: dict[int, list[str]] = {}
        for column in self.parameters:
            parts = column.split(".")
            if len(parts) == 3 and parts[0] == list_name:
                items.setdefault(int(parts[1]), []).append(column)
        return dict(sorted(items.items()))

    def item_present(self, columns: list[str]) -> Mask:
        """Return where any of one list item's columns has a value."""
        return np.asarray(
            np.logical_or.reduce([self.present(column) for column in columns]), dtype=bool
        )
