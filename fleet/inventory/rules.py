"""The row rules: each a small function over every row at once, composed in one ``RULES`` table.

A rule reads :class:`Rows` and adds a problem to the report for each row that breaks it; it never
stops the others, so one run shows every problem of every row. Rules are independent: the report
sorts problems by file, line and column, and the order of ``RULES`` only breaks ties (two
problems on one cell, or on columns the header does not have).
The header's own rules (which columns exist) are in :mod:`fleet.inventory.header`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fleet.inventory.columns import Columns, Ints, Mask, type_of
from fleet.inventory.header import REQUIRED
from fleet.inventory.names import COUNT, NAME, START, Expansion, first_names
from fleet.inventory.report import Report
from fleet.ncp.parameters import (
    FEE_SYSTEM_TYPE_CODES,
    IMAGE_CHOICES,
    IMAGE_RULES,
    LISTS,
    MARKER_BYTES,
    MAX_CREATE_SERIAL,
    MAX_DESCRIPTION_BYTES,
    MAX_NICS,
    PROBE_NAME_PREFIX,
    SERVER_NAME_RE,
    SPEC_CHOICES,
    Type,
)

__all__ = ["RULES", "Rows", "Rule"]


@dataclass(frozen=True, slots=True, eq=False)  # frames and arrays have no truthful ==
class Rows:
    """What every rule reads: the cells of every row, and the server names the rows make."""

    columns: Columns
    expansion: Expansion


Rule = Callable[[Rows, Report], None]

_NIC = "networkInterfaceList"
# Where no image is set at all, the problem sits on the image of current (KVM) servers.
_IMAGE = "serverImageNo"
_NAME_RULE = (
    "not a valid server name: 3-30 characters, lower-case letters, digits and '-', "
    "starting with a letter and ending with a letter or digit"
)
_PROBE_RULE = f"a name starting {PROBE_NAME_PREFIX!r} is kept for fleet probe's own servers"
_SERIAL_LIMIT = f"{COUNT} + {START} must be at most {MAX_CREATE_SERIAL}, so serials fit 3 digits"


# --- every column: its type --------------------------------------------------------------------


def _matches(pattern: str) -> Callable[[pd.Series[str]], pd.Series[bool]]:
    return lambda text: text.str.fullmatch(pattern)


# What a cell of each checked type must look like, and what to say when it does not.
_FORMS: dict[Type, tuple[Callable[[pd.Series[str]], pd.Series[bool]], str]] = {
    Type.INT: (_matches(r"[+-]?[0-9]+"), "not an integer"),
    Type.BOOL: (lambda text: text.str.lower().isin(["true", "false"]), "not true or false"),
    Type.NUM: (_matches(r"[0-9]+"), "not an NCP number: digits only"),
    Type.NUMS: (
        _matches(r"[0-9]+(?:\s+[0-9]+)*"),
        "not NCP numbers: digits only, several separated by spaces",
    ),
}


def check_types(rows: Rows, report: Report) -> None:
    """Check that every cell reads as its parameter's type, and integers fit our bound."""
    columns = rows.columns
    for name in columns.parameters:
        kind = type_of(name)
        if kind not in _FORMS:
            continue
        accepts, message = _FORMS[kind]
        text = columns.cell(name)
        well_formed = accepts(text).to_numpy(dtype=bool)
        report.flag(columns, columns.present(name) & ~well_formed, name, message, text)
        if kind is Type.INT:
            _, usable = columns.ints(name)
            report.flag(columns, well_formed & ~usable, name, "too large", text)


def check_required(rows: Rows, report: Report) -> None:
    """Check that a required column is never empty on a row whose file has it."""
    columns = rows.columns
    for name in REQUIRED:
        if name in columns.has_column:
            empty = columns.has_column[name] & ~columns.present(name)
            report.flag(columns, empty, name, "required (empty)")


# --- image and spec ----------------------------------------------------------------------------


def check_image_choice(rows: Rows, report: Report) -> None:
    """Check that each row sets exactly one image source (IMAGE_CHOICES)."""
    columns = rows.columns
    chosen = np.stack([columns.present(name) for name in IMAGE_CHOICES])
    report.flag(
        columns,
        chosen.sum(axis=0) == 0,
        _IMAGE,
        "an image is required: set one of " + ", ".join(IMAGE_CHOICES) + " (all empty)",
    )
    for later, name in enumerate(IMAGE_CHOICES[1:], start=1):
        for earlier in IMAGE_CHOICES[:later]:
            report.flag(
                columns,
                columns.present(name) & columns.present(earlier),
                name,
                f"only one image choice per row (found {earlier} and {name})",
            )


def check_image_spec(rows: Rows, report: Report) -> None:
    """Check each image source's spec parameter against IMAGE_RULES: required, or refused."""
    columns = rows.columns
    for rule in IMAGE_RULES:
        image = columns.present(rule.image)
        if rule.requires:
            report.flag(
                columns,
                image & ~columns.present(rule.requires),
                rule.requires,
                f"required with {rule.image} (empty)",
            )
            # Refusing the other spec parameter too would repeat a problem already reported:
            # the required one is missing, or check_spec_choice finds both.
            continue
        if rule.forbids:
            takes = " or ".join(name for name in SPEC_CHOICES if name != rule.forbids)
            report.flag(
                columns,
                image & columns.present(rule.forbids),
                rule.forbids,
                f"not allowed with {rule.image}, which takes {takes}",
                columns.cell(rule.forbids),
            )


def check_spec_choice(rows: Rows, report: Report) -> None:
    """Check that each row sets at most one spec parameter (SPEC_CHOICES)."""
    columns = rows.columns
    for later, name in enumerate(SPEC_CHOICES[1:], start=1):
        for earlier in SPEC_CHOICES[:later]:
            report.flag(
                columns,
                columns.present(name) & columns.present(earlier),
                name,
                f"not allowed together with {earlier}",
                columns.cell(name),
            )


# --- text --------------------------------------------------------------------------------------


def check_fee(rows: Rows, report: Report) -> None:
    """Check that feeSystemTypeCode is one of NCP's codes."""
    columns = rows.columns
    fee = columns.cell("feeSystemTypeCode")
    report.flag(
        columns,
        columns.present("feeSystemTypeCode") & ~fee.isin(FEE_SYSTEM_TYPE_CODES).to_numpy(),
        "feeSystemTypeCode",
        "must be " + " or ".join(sorted(FEE_SYSTEM_TYPE_CODES, reverse=True)),
        fee,
    )


def check_description(rows: Rows, report: Report) -> None:
    """Check that serverDescription, with fleet's create marker, fits NCP's limit in bytes.

    NCP counts bytes of UTF-8, not characters; every create adds a marker of at most
    MARKER_BYTES after the user's description (fleet/ownership.py), so the user has the rest.
    """
    columns = rows.columns
    encoded: Any = columns.cell("serverDescription").str.encode("utf-8")  # stubs lack bytes.len
    size = encoded.str.len().to_numpy()
    room = MAX_DESCRIPTION_BYTES - MARKER_BYTES
    report.flag(
        columns,
        size > room,
        "serverDescription",
        f"longer than {room} bytes of UTF-8 (NCP's {MAX_DESCRIPTION_BYTES}, less "
        f"{MARKER_BYTES} for fleet's create marker)",
        [f"{n} bytes" for n in size],
        quote=False,
    )


def check_login_key(rows: Rows, report: Report) -> None:
    """Check that loginKeyName is 3-30 characters."""
    columns = rows.columns
    key = columns.cell("loginKeyName")
    length = key.str.len().to_numpy()
    report.flag(
        columns,
        columns.present("loginKeyName") & ((length < 3) | (length > 30)),
        "loginKeyName",
        "must be 3-30 characters",
        key,
    )


# --- lists -------------------------------------------------------------------------------------


def check_nic_orders(rows: Rows, report: Report) -> None:
    """Check that each NIC in use has its networkInterfaceOrder, at least 0 and distinct."""
    _check_orders(rows, report, _NIC)


def check_storage_orders(rows: Rows, report: Report) -> None:
    """Check that each blockStorageMappingList item in use has its order, at least 0, distinct."""
    _check_orders(rows, report, "blockStorageMappingList")


def _check_orders(rows: Rows, report: Report, list_name: str) -> None:
    """Check a list's order field: set on every item in use, at least 0, distinct in a row."""
    order = LISTS[list_name].required
    columns = rows.columns
    items = columns.list_items(list_name)
    present = {index: columns.item_present(item) for index, item in items.items()}
    seen: dict[int, tuple[Ints, Mask]] = {}
    for index, item_present in present.items():
        column = f"{list_name}.{index}.{order}"
        report.flag(
            columns,
            item_present & ~columns.present(column),
            column,
            f"required when any other {list_name}.{index} field is set (empty)",
        )
        values, usable = columns.ints(column)
        report.flag(columns, usable & (values < 0), column, "must be at least 0", values)
        for other, (other_values, other_usable) in seen.items():
            report.flag(
                columns,
                usable & other_usable & (values == other_values),
                column,
                f"duplicate {order}, also in {list_name}.{other}",
                values,
            )
        seen[index] = values, usable


def check_nic_count(rows: Rows, report: Report) -> None:
    """Check that each row has at most MAX_NICS network interfaces."""
    columns = rows.columns
    items = columns.list_items(_NIC)
    present = {index: columns.item_present(item) for index, item in items.items()}
    if not present:
        return
    used = np.stack(list(present.values()))
    too_many = used.sum(axis=0) > MAX_NICS
    indexes = np.array(list(present), dtype=object)
    found = (
        [
            ", ".join(f"{_NIC}.{i}" for i in indexes[used[:, row]]) if too_many[row] else ""
            for row in range(len(columns))
        ]
        if too_many.any()
        else None
    )
    report.flag(
        columns, too_many, _NIC, f"at most {MAX_NICS} network interfaces", found, quote=False
    )


# What one server alone can take: an existing interface, and a fixed address.
_ONE_SERVER = {"networkInterfaceNo": "an existing interface", "ip": "a fixed IP"}


def check_one_server_each(rows: Rows, report: Report) -> None:
    """Check that an interface or a fixed IP goes to one server: one row of one server, once."""
    columns, counts = rows.columns, rows.expansion.counts
    lines, files = columns.line_of, columns.file_of
    for field, what in _ONE_SERVER.items():
        first_seen: dict[str, int] = {}  # value -> the row that gave it first
        for items in columns.list_items(_NIC).values():
            column = next((c for c in items if c.endswith(f".{field}")), None)
            if column is None:
                continue
            report.flag(
                columns,
                columns.present(column) & (counts > 1),
                column,
                f"{what} goes to one server only, and this row makes several",
                [f"{c} servers" for c in counts.tolist()],
                quote=False,
            )
            for row, value in enumerate(columns.cell(column).tolist()):
                if not value:
                    continue
                earlier = first_seen.setdefault(value, row)
                if earlier != row:
                    where = f"{columns.files[int(files[earlier])]}:{lines[earlier]}"
                    report.add(
                        int(files[row]),
                        int(lines[row]),
                        column,
                        f"{what} goes to one server only (found {value!r}, also at {where})",
                    )


# --- counts and names --------------------------------------------------------------------------


def check_serials(rows: Rows, report: Report) -> None:
    """Check serverCreateCount >= 1, serverCreateStartNo >= 0, and that serials fit 3 digits."""
    columns, numbering = rows.columns, rows.expansion.serials
    count, start, over = numbering.count, numbering.start, numbering.over
    report.flag(
        columns, numbering.count_ok & (count < 1), COUNT, "must be at least 1", columns.cell(COUNT)
    )
    report.flag(
        columns, numbering.start_ok & (start < 0), START, "must be at least 0", columns.cell(START)
    )
    report.flag(
        columns,
        over & numbering.has_count,
        COUNT,
        _SERIAL_LIMIT,
        [f"{c} + {s}" for c, s in zip(count.tolist(), start.tolist(), strict=True)],
        quote=False,
    )
    report.flag(
        columns,
        over & ~numbering.has_count,
        START,
        _SERIAL_LIMIT,
        [f"1 + {s}" for s in start.tolist()],
        quote=False,
    )


def check_names(rows: Rows, report: Report) -> None:
    """Check that every server name a row makes follows NCP's name rule."""
    columns = rows.columns
    first, known = first_names(columns, rows.expansion.serials)
    names = pd.Series(first, dtype=str)
    valid = names.str.fullmatch(SERVER_NAME_RE.pattern).to_numpy(dtype=bool)
    report.flag(columns, known & ~valid, NAME, _NAME_RULE, first)
    # fleet probe's servers are named so: a rollout planning such a name could meet one.
    probe = names.str.startswith(PROBE_NAME_PREFIX).to_numpy(dtype=bool)
    report.flag(columns, known & valid & probe, NAME, _PROBE_RULE, first)


def check_duplicates(rows: Rows, report: Report) -> None:
    """Check that no name is made twice; report each (row, earlier row) pair once, with both."""
    columns, names, row_of = rows.columns, rows.expansion.names, rows.expansion.row_of
    codes, _ = pd.factorize(pd.Series(names, dtype=str))
    _, first_at = np.unique(codes, return_index=True)
    earliest = first_at[codes]
    repeats = np.flatnonzero(earliest != np.arange(len(codes)))
    if not repeats.size:
        return
    lines, files = columns.line_of, columns.file_of
    groups: dict[tuple[int, int], list[int]] = {}
    for position in repeats.tolist():
        key = (int(row_of[position]), int(row_of[earliest[position]]))
        groups.setdefault(key, []).append(position)
    for (row, other), positions in groups.items():
        more = f" and {len(positions) - 1} more" if len(positions) > 1 else ""
        report.add(
            int(files[row]),
            int(lines[row]),
            NAME,
            f"duplicate server name {names[positions[0]]!r}{more}"
            f" (also at {columns.files[int(files[other])]}:{lines[other]})",
        )


# Every row rule, in the order their problems on one cell are listed. A comment per row says
# which parameters it covers.
RULES: tuple[Rule, ...] = (
    check_types,  # every column: INT, BOOL, NUM and NUMS cells as their type says
    check_required,  # vpcNo, subnetNo, serverName
    check_image_choice,  # memberServerImageInstanceNo, serverImageNo, serverImageProductCode
    check_image_spec,  # serverSpecCode / serverProductCode with each image, per IMAGE_RULES
    check_spec_choice,  # serverSpecCode and serverProductCode never together
    check_fee,  # feeSystemTypeCode
    check_description,  # serverDescription
    check_login_key,  # loginKeyName
    check_nic_orders,  # networkInterfaceList.N.networkInterfaceOrder
    check_nic_count,  # networkInterfaceList
    check_one_server_each,  # networkInterfaceList.N.networkInterfaceNo, networkInterfaceList.N.ip
    check_storage_orders,  # blockStorageMappingList.N.order
    check_serials,  # serverCreateCount, serverCreateStartNo
    check_names,  # serverName, as expanded with its serials
    check_duplicates,  # serverName, across every row of every file
)
