"""Inventories: CSV files of server groups, validated as a whole and expanded into servers.

An inventory is a UTF-8 CSV file (a BOM is tolerated). Its header names NCP's own
createServerInstances parameters (``serverName``, ``vpcNo``, ``networkInterfaceList.1.subnetNo``,
...); each row below it is a group of identical servers. An empty cell means "not sent". A line
whose first character is ``#`` is a comment wherever it is, even inside a quoted multi-line cell;
a ``#`` anywhere else is text. Blank rows (only commas or spaces) are skipped.

Every file is read and every rule checked before anything is raised, so one run shows every
problem (:class:`~fleet.errors.InventoryError` carries the list). A row then expands into
``serverCreateCount`` servers named ``{serverName}-{serial:03d}``, each its own
createServerInstances call with ``serverCreateCount=1``: we never let NCP invent or number names,
so a server can always be found again by name after a lost response.

Interpretations of the rules, for the record:

- ``serverCreateStartNo`` may be 0 (0-based serials); ``serverCreateCount + serverCreateStartNo``
  is at most 1000, with the missing one counted as 1, so every serial fits three digits.
- A row with fewer cells than the header reads the missing cells as empty; a row with more is an
  error. A column without a name in the header is an error only if some row has a value in it.
- ``networkInterfaceOrder`` and ``blockStorageMappingList.N.order`` are at least 0 and distinct
  within a row.

pandas stays inside this module: callers only see :class:`ServerSpec` and ``Problem``.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fleet.errors import InventoryError, Problem
from fleet.parameters import (
    FEE_SYSTEM_TYPE_CODES,
    IMAGE_CHOICES,
    LISTS,
    MAX_CREATE_SERIAL,
    MAX_DESCRIPTION_BYTES,
    MAX_NICS,
    SCALARS,
    SERVER_NAME_RE,
    Type,
)
from fleet.spec import ServerSpec

__all__ = ["ServerSpec", "load_inventories", "validate_inventories"]


def load_inventories(paths: Sequence[str | Path]) -> list[ServerSpec]:
    """Read, validate and expand inventories; raise InventoryError listing every problem.

    Args:
        paths: the inventory files, in the order their servers should come out.

    Returns:
        One ServerSpec per server: in file order, then row order, then serial order.

    Raises:
        InventoryError: with every problem found in every file, if there is any.

    """
    fleet = _Fleet.read(paths)
    if fleet.report.problems():
        raise InventoryError(fleet.report.problems())
    return fleet.expand()


def validate_inventories(paths: Sequence[str | Path]) -> list[Problem]:
    """Read and check inventories; return every problem found (empty when all is well)."""
    return _Fleet.read(paths).report.problems()


# --- constants ---------------------------------------------------------------------------------

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Pair = tuple[str, str]
Element = tuple[Pair, ...]  # what one cell contributes to a call: zero, one or several pairs

_REQUIRED = ("vpcNo", "subnetNo", "serverName")
_COUNT, _START, _NAME = "serverCreateCount", "serverCreateStartNo", "serverName"
_CLIENT_OWNED = "responseFormatType"
_NIC = "networkInterfaceList"
_ACG = "accessControlGroupNoList"
_INDEX_RE = re.compile(r"[1-9][0-9]*")
_INT_RE = r"[+-]?[0-9]+"
_MAX_INT_DIGITS = 6  # every integer parameter here is small; longer ones would overflow int64
_NUM_RE = r"[0-9]+"
_NUMS_RE = r"[0-9]+(?:\s+[0-9]+)*"
_NAME_RULE = (
    "not a valid server name: 3-30 characters, lower-case letters, digits and '-', "
    "starting with a letter and ending with a letter or digit"
)
# Serials are always three digits; one shared string per serial across every server.
_SERIALS = np.array([f"{i:03d}" for i in range(MAX_CREATE_SERIAL)], dtype=object)
_COUNT_ONE: Pair = ("serverCreateCount", "1")
# Where a row names no NIC, the default NIC on the row's subnet, as the Terraform provider does.
_DEFAULT_NIC: Element = ((f"{_NIC}.1.networkInterfaceOrder", "0"),)
# Taking from this array by 0 (no pairs) or 1 (the default NIC) fills an object array with
# shared tuples; np.full would read a tuple fill value as a shape.
_NOTHING_OR_DEFAULT_NIC = np.empty(2, dtype=object)
_NOTHING_OR_DEFAULT_NIC[0], _NOTHING_OR_DEFAULT_NIC[1] = (), _DEFAULT_NIC
# Scalars before serverCreateCount go before it on the wire; serverCreateStartNo is never sent.
_HEAD = tuple(SCALARS)[: tuple(SCALARS).index(_COUNT)]
_TAIL = tuple(SCALARS)[tuple(SCALARS).index(_NAME) + 1 :]


def _type_of(column: str) -> Type:
    if column in SCALARS:
        return SCALARS[column]
    name, _, item_field = column.split(".")
    return LISTS[name].fields[item_field]


# --- problems ----------------------------------------------------------------------------------


@dataclass
class _Report:
    """Problems as they are found, sorted at the end by file, line and column position."""

    files: list[str]
    positions: list[dict[str, int]] = field(default_factory=list)
    _items: list[tuple[tuple[int, int, int, int], Problem]] = field(default_factory=list)

    def add(self, file: int, line: int | None, column: str | None, message: str) -> None:
        # Within a line, problems follow the header's column order; whole-row ones come first.
        position = -1 if column is None else self.positions[file].get(column, len(SCALARS) * 99)
        key = (file, -1 if line is None else line, position, len(self._items))
        self._items.append((key, Problem(self.files[file], line, column, message)))

    def flag(
        self,
        frame: pd.DataFrame,
        mask: Mask,
        column: str | None,
        message: str,
        found: Sequence[Any] | pd.Series[Any] | npt.NDArray[Any] | None = None,
        *,
        quote: bool = True,
    ) -> None:
        """Add one problem for each row of ``frame`` where ``mask`` holds."""
        rows = np.flatnonzero(mask)
        if not rows.size:
            return
        files = frame["_file"].to_numpy()[rows]
        lines = frame["_line"].to_numpy()[rows]
        values = np.asarray(found, dtype=object)[rows] if found is not None else None
        for i, (file, line) in enumerate(zip(files.tolist(), lines.tolist(), strict=True)):
            text = message
            if values is not None:
                value = values[i]
                text = f"{message} (found {value!r})" if quote else f"{message} (found {value})"
            self.add(file, line, column, text)

    def problems(self) -> list[Problem]:
        return [problem for _, problem in sorted(self._items, key=lambda item: item[0])]


# --- reading one file --------------------------------------------------------------------------


@dataclass
class _Sheet:
    """One inventory file as read: its header's line and columns, and its rows as text."""

    index: int
    header_line: int
    columns: list[str]  # the good columns, also the frame's columns (besides _file, _line)
    frame: pd.DataFrame


def _read_text(path: str | Path, index: int, report: _Report) -> str | None:
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


def _header_problem(name: str) -> str | None:
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


def _records(text: str, index: int, report: _Report) -> Iterator[tuple[int, list[str]]]:
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


def _read_sheet(path: str | Path, index: int, report: _Report) -> _Sheet | None:
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
    width = len(names)

    lines: list[int] = []
    rows: list[list[str]] = []
    seen = 0
    for line, cells in records:
        seen += 1
        if len(cells) > width:
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

    raw = pd.DataFrame(rows, columns=range(width), dtype=str)
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
        problem = _header_problem(name)
        if problem:
            report.add(index, header_line, name, problem)
    report.positions[index] = positions
    for name in _REQUIRED:
        if name not in positions:
            report.add(index, header_line, name, "required column missing")

    good = {name: position for name, position in positions.items() if not _header_problem(name)}
    frame = pd.DataFrame(
        {
            "_file": np.full(len(lines), index, dtype=np.int64),
            "_line": np.asarray(lines, dtype=np.int64),
        }
        | {name: raw[position].str.strip() for name, position in good.items()}
    )
    return _Sheet(index, header_line, list(good), frame)


# --- the whole fleet ---------------------------------------------------------------------------


@dataclass
class _Fleet:
    """Every row of every inventory in one frame, with the checks and the expansion over it."""

    files: list[str]
    frame: pd.DataFrame
    columns: list[str]  # the parameter columns of the frame, in first-seen order
    report: _Report
    has_column: dict[str, Mask]  # per column, which rows come from a file that has it
    # The expansion, computed while checking names: per row its first server's position in
    # ``names`` and how many servers it makes (0 where its count or name is wrong).
    names: npt.NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))
    offsets: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    counts: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def read(cls, paths: Sequence[str | Path]) -> _Fleet:
        """Read every file and check every rule, collecting the problems."""
        files = [os.fspath(path) for path in paths]
        report = _Report(files, positions=[{} for _ in files])
        seen: dict[Path, int] = {}
        sheets: list[_Sheet | None] = []
        for index, path in enumerate(paths):
            # The same file twice would report each of its names as its own duplicate.
            same = seen.setdefault(Path(path).resolve(), index)
            if same != index:
                report.add(index, None, None, f"the same file as {files[same]}, given twice")
                sheets.append(None)
            else:
                sheets.append(_read_sheet(path, index, report))
        read = [sheet for sheet in sheets if sheet is not None]
        columns = list(dict.fromkeys(chain.from_iterable(sheet.columns for sheet in read)))
        frames = [sheet.frame for sheet in read if len(sheet.frame)]
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            for column in columns:
                frame[column] = frame[column].fillna("")
        else:
            frame = pd.DataFrame({"_file": [], "_line": []}, dtype=np.int64)
        file_of_row = frame["_file"].to_numpy()
        has_column = {
            column: np.isin(file_of_row, [sheet.index for sheet in read if column in sheet.columns])
            for column in columns
        }
        fleet = cls(files, frame, columns, report, has_column)
        if len(frame):
            fleet.check()
        return fleet

    # -- cells --

    def cell(self, column: str) -> pd.Series[str]:
        """Return a column's stripped text, all empty if no file has it."""
        if column in self.frame.columns:
            return self.frame[column]
        return pd.Series([""] * len(self.frame), index=self.frame.index, dtype=str)

    def present(self, column: str) -> Mask:
        return (self.cell(column) != "").to_numpy(dtype=bool)

    def ints(self, column: str) -> tuple[Ints, Mask]:
        """Return a column's integer values (0 where not usable) and where they are usable."""
        text = self.cell(column)
        usable = text.str.fullmatch(rf"[+-]?[0-9]{{1,{_MAX_INT_DIGITS}}}").to_numpy(dtype=bool)
        values = np.zeros(len(text), dtype=np.int64)
        values[usable] = text.to_numpy(dtype=object)[usable].astype(np.int64)
        return values, usable

    def list_columns(self, list_name: str) -> dict[int, list[str]]:
        """Return the list's item columns present in the frame, by inventory index, sorted."""
        items: dict[int, list[str]] = {}
        for column in self.columns:
            parts = column.split(".")
            if len(parts) == 3 and parts[0] == list_name:
                items.setdefault(int(parts[1]), []).append(column)
        return dict(sorted(items.items()))

    def item_present(self, columns: list[str]) -> Mask:
        return np.asarray(
            np.logical_or.reduce([self.present(column) for column in columns]), dtype=bool
        )

    # -- checks --

    def check(self) -> None:
        """Check every rule on every row, adding a problem for each failure."""
        self.check_types()
        self.check_required()
        self.check_image()
        self.check_text()
        for list_name in LISTS:
            self.check_list(list_name)
        self.check_names()

    def check_types(self) -> None:
        frame, flag = self.frame, self.report.flag
        for name in self.columns:
            text = frame[name]
            present = self.present(name)
            kind = _type_of(name)
            if kind is Type.INT:
                numeric = text.str.fullmatch(_INT_RE).to_numpy(dtype=bool)
                flag(frame, present & ~numeric, name, "not an integer", text)
                _, usable = self.ints(name)
                flag(frame, numeric & ~usable, name, "too large", text)
            elif kind is Type.BOOL:
                boolean = text.str.lower().isin(["true", "false"]).to_numpy(dtype=bool)
                flag(frame, present & ~boolean, name, "not true or false", text)
            elif kind is Type.NUM:
                number = text.str.fullmatch(_NUM_RE).to_numpy(dtype=bool)
                flag(frame, present & ~number, name, "not an NCP number: digits only", text)
            elif kind is Type.NUMS:
                numbers = text.str.fullmatch(_NUMS_RE).to_numpy(dtype=bool)
                flag(
                    frame,
                    present & ~numbers,
                    name,
                    "not NCP numbers: digits only, several separated by spaces",
                    text,
                )

    def check_required(self) -> None:
        for name in _REQUIRED:
            if name in self.has_column:
                empty = self.has_column[name] & ~self.present(name)
                self.report.flag(self.frame, empty, name, "required (empty)")

    def check_image(self) -> None:
        frame, flag = self.frame, self.report.flag
        chosen = np.stack([self.present(name) for name in IMAGE_CHOICES])
        flag(
            frame,
            chosen.sum(axis=0) == 0,
            "serverImageNo",
            "an image is required: set one of " + ", ".join(IMAGE_CHOICES) + " (all empty)",
        )
        for later, name in enumerate(IMAGE_CHOICES[1:], start=1):
            for earlier in IMAGE_CHOICES[:later]:
                flag(
                    frame,
                    self.present(name) & self.present(earlier),
                    name,
                    f"only one image choice per row (found {earlier} and {name})",
                )
        spec, product = self.present("serverSpecCode"), self.present("serverProductCode")
        flag(
            frame,
            self.present("serverImageNo") & ~spec,
            "serverSpecCode",
            "required with serverImageNo (empty)",
        )
        flag(
            frame,
            self.present("serverImageProductCode") & spec,
            "serverSpecCode",
            "not allowed with serverImageProductCode, which takes serverProductCode",
            self.cell("serverSpecCode"),
        )
        flag(
            frame,
            product & spec,
            "serverProductCode",
            "not allowed together with serverSpecCode",
            self.cell("serverProductCode"),
        )

    def check_text(self) -> None:
        frame, flag = self.frame, self.report.flag
        fee = self.cell("feeSystemTypeCode")
        flag(
            frame,
            self.present("feeSystemTypeCode") & ~fee.isin(FEE_SYSTEM_TYPE_CODES).to_numpy(),
            "feeSystemTypeCode",
            "must be " + " or ".join(sorted(FEE_SYSTEM_TYPE_CODES, reverse=True)),
            fee,
        )
        encoded: Any = self.cell("serverDescription").str.encode("utf-8")  # stubs lack bytes.len
        size = encoded.str.len().to_numpy()
        flag(
            frame,
            size > MAX_DESCRIPTION_BYTES,
            "serverDescription",
            f"longer than {MAX_DESCRIPTION_BYTES} bytes of UTF-8",
            [f"{n} bytes" for n in size],
            quote=False,
        )
        key = self.cell("loginKeyName")
        length = key.str.len().to_numpy()
        flag(
            frame,
            self.present("loginKeyName") & ((length < 3) | (length > 30)),
            "loginKeyName",
            "must be 3-30 characters",
            key,
        )

    def check_list(self, list_name: str) -> None:
        frame, flag = self.frame, self.report.flag
        spec = LISTS[list_name]
        items = self.list_columns(list_name)
        present = {index: self.item_present(columns) for index, columns in items.items()}
        if spec.required:
            orders: dict[int, tuple[Ints, Mask]] = {}
            for index, item_present in present.items():
                column = f"{list_name}.{index}.{spec.required}"
                flag(
                    frame,
                    item_present & ~self.present(column),
                    column,
                    f"required when any other {list_name}.{index} field is set (empty)",
                )
                values, usable = self.ints(column)
                flag(frame, usable & (values < 0), column, "must be at least 0", values)
                for other, (other_values, other_usable) in orders.items():
                    flag(
                        frame,
                        usable & other_usable & (values == other_values),
                        column,
                        f"duplicate {spec.required}, also in {list_name}.{other}",
                        values,
                    )
                orders[index] = values, usable
        if list_name == _NIC and present:
            used = np.stack(list(present.values()))
            too_many = used.sum(axis=0) > MAX_NICS
            indexes = np.array(list(present), dtype=object)
            found = (
                [
                    ", ".join(f"{_NIC}.{i}" for i in indexes[used[:, row]]) if too_many[row] else ""
                    for row in range(len(frame))
                ]
                if too_many.any()
                else None
            )
            flag(
                frame, too_many, _NIC, f"at most {MAX_NICS} network interfaces", found, quote=False
            )

    def check_names(self) -> None:
        """Check counts and serials, expand every name, check each rule and duplicates."""
        frame, flag = self.frame, self.report.flag
        count, count_ok = self.ints(_COUNT)
        start, start_ok = self.ints(_START)
        has_count, has_start = self.present(_COUNT), self.present(_START)
        flag(frame, count_ok & (count < 1), _COUNT, "must be at least 1", self.cell(_COUNT))
        flag(frame, start_ok & (start < 0), _START, "must be at least 0", self.cell(_START))
        count = np.where(has_count, count, 1)
        start = np.where(has_start, start, 1)
        in_range = (count >= 1) & (start >= 0)
        over = (has_count | has_start) & in_range & (count + start > MAX_CREATE_SERIAL)
        flag(
            frame,
            over & has_count,
            _COUNT,
            f"{_COUNT} + {_START} must be at most {MAX_CREATE_SERIAL}, so serials fit 3 digits",
            [f"{c} + {s}" for c, s in zip(count.tolist(), start.tolist(), strict=True)],
            quote=False,
        )
        flag(
            frame,
            over & ~has_count,
            _START,
            f"{_COUNT} + {_START} must be at most {MAX_CREATE_SERIAL}, so serials fit 3 digits",
            [f"1 + {s}" for s in start.tolist()],
            quote=False,
        )
        numbered = has_count | has_start
        usable = (
            self.present(_NAME)
            & (count_ok | ~has_count)
            & (start_ok | ~has_start)
            & in_range
            & ~over
        )
        base = self.cell(_NAME).to_numpy(dtype=object)

        # Every serial of a row makes a name of the same shape (base, '-', three digits), so the
        # first name of each row stands for all of them in the name rule.
        first = base.copy()
        serialled = numbered & usable
        first[serialled] = base[serialled] + "-" + _SERIALS[start[serialled]]
        valid = (
            pd.Series(first, dtype=str).str.fullmatch(SERVER_NAME_RE.pattern).to_numpy(dtype=bool)
        )
        flag(frame, usable & ~valid, _NAME, _NAME_RULE, first)

        counts = np.where(usable, count, 0).astype(np.int64)
        offsets = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        row_of = np.repeat(np.arange(len(counts)), counts)
        serial = start[row_of] + (np.arange(len(row_of)) - offsets[row_of])
        names = base[row_of]
        suffixed = numbered[row_of]
        names[suffixed] = names[suffixed] + "-" + _SERIALS[serial[suffixed]]
        self.names, self.offsets, self.counts = names, offsets, counts
        self.check_duplicates(row_of)

    def check_duplicates(self, row_of: Ints) -> None:
        """Report each name made twice, once per (row, earlier row) pair, naming both places."""
        codes, _ = pd.factorize(pd.Series(self.names, dtype=str))
        _, first_at = np.unique(codes, return_index=True)
        earliest = first_at[codes]
        repeats = np.flatnonzero(earliest != np.arange(len(codes)))
        if not repeats.size:
            return
        lines = self.frame["_line"].to_numpy()
        files = self.frame["_file"].to_numpy()
        groups: dict[tuple[int, int], list[int]] = {}
        for position in repeats.tolist():
            key = (int(row_of[position]), int(row_of[earliest[position]]))
            groups.setdefault(key, []).append(position)
        for (row, other), positions in groups.items():
            more = f" and {len(positions) - 1} more" if len(positions) > 1 else ""
            self.report.add(
                int(files[row]),
                int(lines[row]),
                _NAME,
                f"duplicate server name {self.names[positions[0]]!r}{more}"
                f" (also at {self.files[int(files[other])]}:{lines[other]})",
            )

    # -- expansion --

    def expand(self) -> list[ServerSpec]:
        """Turn every row into its servers' createServerInstances parameters."""
        rows = len(self.frame)
        head = self.row_params([self.scalar_elements(name) for name in _HEAD], rows)
        tail = self.row_params(
            [self.scalar_elements(name) for name in _TAIL]
            + list(chain.from_iterable(self.list_elements(name) for name in LISTS)),
            rows,
        )
        files = self.frame["_file"].to_numpy().tolist()
        lines = self.frame["_line"].to_numpy().tolist()
        names = self.names.tolist()
        renumbered = self.renumbering()
        specs: list[ServerSpec] = []
        for row, (offset, count) in enumerate(
            zip(self.offsets.tolist(), self.counts.tolist(), strict=True)
        ):
            row_head, row_tail = head[row], tail[row]
            file, line = self.files[files[row]], lines[row]
            specs.extend(
                ServerSpec(
                    name,
                    file,
                    line,
                    (*row_head, _COUNT_ONE, (_NAME, name), *row_tail),
                    renumbered[row],
                )
                for name in names[offset : offset + count]
            )
        return specs

    def renumbering(self) -> list[tuple[Pair, ...]]:
        """Per row, the (sent, written) prefixes of list items renumbered on the wire, or ()."""
        found: list[list[Pair]] = [[] for _ in range(len(self.frame))]
        for list_name in LISTS:
            slot = np.zeros(len(self.frame), dtype=np.int64)
            for index, columns in self.list_columns(list_name).items():
                present = self.item_present(columns)
                slot = slot + present
                for row in np.flatnonzero(present & (slot != index)).tolist():
                    found[row].append((f"{list_name}.{slot[row]}", f"{list_name}.{index}"))
        return [tuple(pairs) for pairs in found]

    @staticmethod
    def row_params(columns: list[npt.NDArray[np.object_]], rows: int) -> list[tuple[Pair, ...]]:
        """Join per-column elements into one tuple of pairs per row."""
        if not columns:
            return [()] * rows
        return [tuple(chain.from_iterable(elements)) for elements in zip(*columns, strict=True)]

    def elements(
        self, column: str, slots: Ints, key: Callable[[int], str]
    ) -> npt.NDArray[np.object_]:
        """Encode one column into an element per row, sharing one tuple per distinct value.

        ``slots`` is each row's renumbered list index (0 for scalars) and ``key(slot)`` the
        parameter name; a cell only becomes pairs once per distinct (slot, value).
        """
        kind = _type_of(column)
        text = self.cell(column)
        codes, uniques = pd.factorize(text)
        combined = slots * (len(uniques) + 1) + codes
        keys, first = np.unique(combined, return_index=True)
        made = np.empty(len(keys), dtype=object)
        for i, row in enumerate(first.tolist()):
            value = uniques[codes[row]]
            made[i] = _encode(key(int(slots[row])), kind, value) if value else ()
        return made[np.searchsorted(keys, combined)]

    def scalar_elements(self, name: str) -> npt.NDArray[np.object_]:
        if name not in self.frame.columns:
            return _NOTHING_OR_DEFAULT_NIC[np.zeros(len(self.frame), dtype=np.intp)]
        return self.elements(name, np.zeros(len(self.frame), dtype=np.int64), lambda _: name)

    def list_elements(self, list_name: str) -> list[npt.NDArray[np.object_]]:
        """Encode a list's columns, items renumbered 1, 2, ... per row in inventory order."""
        items = self.list_columns(list_name)
        spec = LISTS[list_name]
        result: list[npt.NDArray[np.object_]] = []
        slot = np.zeros(len(self.frame), dtype=np.int64)
        for columns in items.values():
            present = self.item_present(columns)
            slot = slot + present
            slots = np.where(present, slot, 0)
            index = columns[0].split(".")[1]
            for item_field in spec.fields:
                column = f"{list_name}.{index}.{item_field}"
                if column in columns:
                    key = partial(_item_key, list_name, item_field)
                    result.append(self.elements(column, slots, key))
        if list_name == _NIC:
            result.append(_NOTHING_OR_DEFAULT_NIC[(slot == 0).astype(np.intp)])
        return result


def _item_key(list_name: str, item_field: str, slot: int) -> str:
    return f"{list_name}.{slot}.{item_field}"


def _encode(key: str, kind: Type, value: str) -> Element:
    """Return the form pairs of one non-empty cell."""
    if kind is Type.INT:
        return ((key, str(int(value))),)
    if kind is Type.BOOL:
        return ((key, value.lower()),)
    if kind is Type.NUMS:
        return tuple((f"{key}.{n}", number) for n, number in enumerate(value.split(), start=1))
    return ((key, value),)
