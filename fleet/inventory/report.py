"""Problems as the stages find them, handed back sorted by file, line and column position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fleet.errors import Problem
from fleet.ncp.parameters import SCALARS

if TYPE_CHECKING:
    from fleet.inventory.columns import Columns, Mask

__all__ = ["Report"]

# Where a column the header does not have (or has not placed yet) sorts: after every real one.
_UNPLACED = len(SCALARS) * 99


class Report:
    """Problems as they are found, sorted at the end by file, line and column position."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = list(files)
        self._positions: list[dict[str, int]] = [{} for _ in self.files]
        self._items: list[tuple[tuple[int, int, int, int], Problem]] = []

    def place(self, file: int, positions: dict[str, int]) -> None:
        """Record where each column sits in a file's header, to order the file's problems."""
        self._positions[file] = positions

    def add(self, file: int, line: int | None, column: str | None, message: str) -> None:
        """Add one problem; ``line`` None for the whole file, ``column`` None for the whole row."""
        # Within a line, problems follow the header's column order; whole-row ones come first.
        position = -1 if column is None else self._positions[file].get(column, _UNPLACED)
        key = (file, -1 if line is None else line, position, len(self._items))
        self._items.append((key, Problem(self.files[file], line, column, message)))

    def flag(
        self,
        columns: Columns,
        mask: Mask,
        column: str | None,
        message: str,
        found: Sequence[Any] | pd.Series[Any] | npt.NDArray[Any] | None = None,
        *,
        quote: bool = True,
    ) -> None:
        """Add one problem for each row where ``mask`` holds, with that row's ``found`` value."""
        rows = np.flatnonzero(mask)
        if not rows.size:
            return
        files = columns.file_of[rows]
        lines = columns.line_of[rows]
        values = np.asarray(found, dtype=object)[rows] if found is not None else None
        for i, (file, line) in enumerate(zip(files.tolist(), lines.tolist(), strict=True)):
            text = message
            if values is not None:
                value = values[i]
                text = f"{message} (found {value!r})" if quote else f"{message} (found {value})"
            self.add(file, line, column, text)

    def problems(self) -> list[Problem]:
        """Return every problem so far, by file, line, column position, then order found."""
        return [problem for _, problem in sorted(self._items, key=lambda item: item[0])]
