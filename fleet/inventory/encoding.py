"""Encoding: a row's cells become the form parameters of its servers' createServerInstances calls.

Wire order: the scalars before ``serverCreateCount`` in the parameter table's order, then
``serverCreateCount=1`` and the server's own ``serverName``, then the other scalars, then the lists
(items renumbered 1, 2, ... per row in inventory order, fields in the table's order).
``serverCreateStartNo`` is never sent: the serial is already in the name.

Vectorised: a cell becomes its pairs once per distinct (slot, value), each row's pairs are one
tuple shared by all its servers, so 100,000 servers cost little more than their rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from itertools import chain

import numpy as np
import numpy.typing as npt
import pandas as pd

from fleet.inventory.columns import Columns, Ints, type_of
from fleet.inventory.names import COUNT, NAME, Expansion
from fleet.ncp.parameters import LISTS, SCALARS, Type
from fleet.planned import PlannedServer

__all__ = ["encode"]

Pair = tuple[str, str]
Element = tuple[Pair, ...]  # what one cell contributes to a call: zero, one or several pairs

_NIC = "networkInterfaceList"
_COUNT_ONE: Pair = (COUNT, "1")
# Where a row names no NIC, the default NIC on the row's subnet, as the Terraform provider does.
_DEFAULT_NIC: Element = ((f"{_NIC}.1.networkInterfaceOrder", "0"),)
# Taking from this array by 0 (no pairs) or 1 (the default NIC) fills an object array with
# shared tuples; np.full would read a tuple fill value as a shape.
_NOTHING_OR_DEFAULT_NIC = np.empty(2, dtype=object)
_NOTHING_OR_DEFAULT_NIC[0], _NOTHING_OR_DEFAULT_NIC[1] = (), _DEFAULT_NIC
# Scalars before serverCreateCount go before it on the wire; serverCreateStartNo is never sent.
_HEAD = tuple(SCALARS)[: tuple(SCALARS).index(COUNT)]
_TAIL = tuple(SCALARS)[tuple(SCALARS).index(NAME) + 1 :]


def encode(columns: Columns, expansion: Expansion) -> list[PlannedServer]:
    """Return one ServerSpec per expanded name: file, row, then serial order."""
    rows = len(columns)
    head = _row_params([_scalar_elements(columns, name) for name in _HEAD], rows)
    tail = _row_params(
        [_scalar_elements(columns, name) for name in _TAIL]
        + list(chain.from_iterable(_list_elements(columns, name) for name in LISTS)),
        rows,
    )
    files = columns.file_of.tolist()
    lines = columns.line_of.tolist()
    names = expansion.names.tolist()
    renumbered = _renumbering(columns)
    specs: list[PlannedServer] = []
    for row, (offset, count) in enumerate(
        zip(expansion.offsets.tolist(), expansion.counts.tolist(), strict=True)
    ):
        row_head, row_tail = head[row], tail[row]
        file, line = columns.files[files[row]], lines[row]
        specs.extend(
            PlannedServer(
                name,
                file,
                line,
                (*row_head, _COUNT_ONE, (NAME, name), *row_tail),
                renumbered[row],
            )
            for name in names[offset : offset + count]
        )
    return specs


def _renumbering(columns: Columns) -> list[tuple[Pair, ...]]:
    """Per row, the (sent, written) prefixes of list items renumbered on the wire, or ()."""
    found: list[list[Pair]] = [[] for _ in range(len(columns))]
    for list_name in LISTS:
        slot = np.zeros(len(columns), dtype=np.int64)
        for index, item in columns.list_items(list_name).items():
            present = columns.item_present(item)
            slot = slot + present
            for row in np.flatnonzero(present & (slot != index)).tolist():
                found[row].append((f"{list_name}.{slot[row]}", f"{list_name}.{index}"))
    return [tuple(pairs) for pairs in found]


def _row_params(columns: list[npt.NDArray[np.object_]], rows: int) -> list[tuple[Pair, ...]]:
    """Join per-column elements into one tuple of pairs per row."""
    if not columns:
        return [()] * rows
    return [tuple(chain.from_iterable(elements)) for elements in zip(*columns, strict=True)]


def _elements(
    columns: Columns, column: str, slots: Ints, key: Callable[[int], str]
) -> npt.NDArray[np.object_]:
    """Encode one column into an element per row, sharing one tuple per distinct value.

    ``slots`` is each row's renumbered list index (0 for scalars) and ``key(slot)`` the
    parameter name; a cell only becomes pairs once per distinct (slot, value).
    """
    kind = type_of(column)
    text = columns.cell(column)
    codes, uniques = pd.factorize(text)
    combined = slots * (len(uniques) + 1) + codes
    keys, first = np.unique(combined, return_index=True)
    made = np.empty(len(keys), dtype=object)
    for i, row in enumerate(first.tolist()):
        value = uniques[codes[row]]
        made[i] = _encode(key(int(slots[row])), kind, value) if value else ()
    return made[np.searchsorted(keys, combined)]


def _scalar_elements(columns: Columns, name: str) -> npt.NDArray[np.object_]:
    if name not in columns.frame.columns:
        return _NOTHING_OR_DEFAULT_NIC[np.zeros(len(columns), dtype=np.intp)]
    return _elements(columns, name, np.zeros(len(columns), dtype=np.int64), lambda _: name)


def _list_elements(columns: Columns, list_name: str) -> list[npt.NDArray[np.object_]]:
    """Encode a list's columns, items renumbered 1, 2, ... per row in inventory order."""
    spec = LISTS[list_name]
    result: list[npt.NDArray[np.object_]] = []
    slot = np.zeros(len(columns), dtype=np.int64)
    for item in columns.list_items(list_name).values():
        present = columns.item_present(item)
        slot = slot + present
        slots = np.where(present, slot, 0)
        index = item[0].split(".")[1]
        for item_field in spec.fields:
            column = f"{list_name}.{index}.{item_field}"
            if column in item:
                key = partial(_item_key, list_name, item_field)
                result.append(_elements(columns, column, slots, key))
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
