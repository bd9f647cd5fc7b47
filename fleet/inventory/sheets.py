"""Reading inventory files: bytes and encoding, CSV records with their physical lines, the header.

Each file becomes one frame of stripped text, its rows located by file index and physical line;
:func:`read_sheets` joins them into one :class:`~fleet.inventory.columns.Columns`. What cannot be
read (a missing file, UTF-16, malformed CSV, a row wider than its header, a bad header cell) is
reported here and left out; the row rules never see it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from fleet.inventory.columns import Columns
from fleet.inventory.header import REQUIRED, header_problem
from fleet.inventory.report import Report

__all__ = ["read_sheets"]


@dataclass(frozen=True, eq=False)  # a DataFrame has no truthful ==
class _Sheet:
    """One inventory file as read: its supported columns, and its rows as stripped text."""

    index: int
    columns: list[str]  # the good columns, also the frame's columns (besides _file, _line)
    frame: pd.DataFrame


def read_sheets(paths: Sequence[str | Path], report: Report) -> Columns:
    """Read every file, reporting what keeps it or its rows from being read; return every row."""
    seen: dict[Path, int] = {}
    sheets: list[_Sheet] = []
    for index, path in enumerate(paths):
        # The same file twice would report each of its names as its own duplicate.
        same = seen.setdefault(Path(path).resolve(), index)
        if same != index:
            report.add(index, None, None, f"the same file as {report.files[same]}, given twice")
            continue
        sheet = _read_sheet(path, index, report)
        if sheet is not None:
            sheets.append(sheet)
    return _combine(tuple(report.files), sheets)


def _combine(files: tuple[str, ...], sheets: list[_Sheet]) -> Columns:
    """Stack the sheets' rows into one frame, a column missing from a file empty on its rows."""
    parameters = list(dict.fromkeys(chain.from_iterable(sheet.columns for sheet in sheets)))
    frames = [sheet.frame for sheet in sheets if len(sheet.frame)]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        for column in parameters:
            # A column only a header-only file has is in no frame: empty on every row.
            frame[column] = frame[column].fillna("") if column in frame else ""
    else:
        frame = pd.DataFrame({"_file": [], "_line": []}, dtype=np.int64)
    file_of_row = frame["_file"].to_numpy()
    has_column = {
        column: np.isin(file_of_row, [sheet.index for sheet in sheets if column in sheet.columns])
        for column in parameters
    }
    return Columns(files, frame, tuple(parameters), has_column)


def _read_sheet(path: str | Path, index: int, report: Report) -> _Sheet | None:
    text = _read_text(path, index, report)
    if text is None:
        return None
    records = _records(text, index, report)
    first = next(records, None)
    if first is None:
        report.add(index, None, None, "empty inventory: no header line")
        return None
    header_line, header = first
    names = [name.strip() for name in header]
    lines, rows = _rows(records, len(names), header_line, index, report)
    raw = pd.DataFrame(rows, columns=range(len(names)), dtype=str)
    positions = _header(names, raw, lines, header_line, index, report)
    good = {name: position for name, position in positions.items() if not header_problem(name)}
    frame = pd.DataFrame(
        {
            "_file": np.full(len(lines), index, dtype=np.int64),
            "_line": np.asarray(lines, dtype=np.int64),
        }
        | {name: raw[position].str.strip() for name, position in good.items()}
    )
    return _Sheet(index, list(good), frame)


def _read_text(path: str | Path, index: int, report: Report) -> str | None:
    """Return the file's text, or None after reporting why it cannot be read as UTF-8."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        report.add(index, None, None, "no such file")
        return None
    except IsADirectoryError:
        report.add(index, None, None, "a directory, not an inventory file")
        return None
    except OSError as err:
        report.add(index, None, None, f"cannot read it ({err.strerror or err})")
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        report.add(index, 1, None, "UTF-16 text: save the file as UTF-8")
        return None
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        report.add(
            index,
            line,
            None,
            f"not UTF-8 text: save the file as UTF-8 (found byte 0x{data[err.start]:02x})",
        )
        return None


def _records(text: str, index: int, report: Report) -> Iterator[tuple[int, list[str]]]:
    """Yield (physical line, cells) per CSV record, skipping comments and blank rows.

    The csv module's C tokenizer splits the records rather than pandas' reader: only it can say
    on which physical line each record starts (quoted cells may span lines) and hand over rows
    longer than the header instead of failing; the checks then run on a DataFrame.
    """
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    kept = [number for number, line in enumerate(lines) if not line.startswith("#")]
    reader = csv.reader([lines[number] + "\n" for number in kept], strict=True)
    consumed = 0  # lines the reader has taken so far: the next record starts after them
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            report.add(
                index, kept[min(consumed, len(kept) - 1)] + 1, None, f"malformed CSV ({err})"
            )
            consumed = reader.line_num
            continue
        start, consumed = kept[consumed] + 1, reader.line_num
        if "".join(cells).strip():
            yield start, cells


def _rows(
    records: Iterator[tuple[int, list[str]]],
    width: int,
    header_line: int,
    index: int,
    report: Report,
) -> tuple[list[int], list[list[str]]]:
    """Return the records under the header and their lines, each padded to the header's width."""
    lines: list[int] = []
    rows: list[list[str]] = []
    seen = 0
    for line, cells in records:
        seen += 1
        if len(cells) > width:
            # Which cell belongs to which column is anyone's guess: the row is left out whole.
            report.add(
                index,
                line,
                None,
                f"more cells than the header has columns, an unquoted ',' in a cell?"
                f" (found {len(cells)} cells for {width} columns)",
            )
            continue
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        lines.append(line)
        rows.append(cells)
    if not seen:
        report.add(index, header_line, None, "no servers: the header has no rows under it")
    return lines, rows


def _header(
    names: list[str],
    raw: pd.DataFrame,
    lines: list[int],
    header_line: int,
    index: int,
    report: Report,
) -> dict[str, int]:
    """Check the header's cells; return each named column's position (first one if repeated)."""
    positions: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            filled = (raw[position].str.strip() != "").to_numpy(dtype=bool)
            if filled.any():
                report.add(
                    index,
                    header_line,
                    None,
                    f"column {position + 1} has no name in the header"
                    f" (found a value on line {lines[int(filled.argmax())]})",
                )
            continue
        if name in positions:
            report.add(
                index, header_line, name, f"duplicate column (also column {positions[name] + 1})"
            )
            continue
        positions[name] = position
        problem = header_problem(name)
        if problem:
            report.add(index, header_line, name, problem)
    # Placed only now, so the header's own problems keep the order they were found in.
    report.place(index, positions)
    for name in REQUIRED:
        if name not in positions:
            report.add(index, header_line, name, "required column missing")
    return positions
