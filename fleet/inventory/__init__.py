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

The pipeline, one module per stage, each a function of what the one before returned:

- ``sheets``: read the files (bytes, encoding, CSV records with their physical lines) into
  ``columns``, a read-only view of every row; ``header`` says which column names are allowed.
- ``names``: serverCreateCount and serverCreateStartNo, and the expansion into server names.
- ``rules``: every row rule, each a small function, composed in order in ``RULES``.
- ``encoding``: each server's createServerInstances parameters, as a :class:`ServerSpec`.
- ``report``: the problems, sorted by file, line and column position.

pandas stays inside this package: callers only see :class:`ServerSpec` and ``Problem``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from fleet.errors import InventoryError, Problem
from fleet.inventory.encoding import encode
from fleet.inventory.names import expand
from fleet.inventory.report import Report
from fleet.inventory.rules import RULES, Rows
from fleet.inventory.sheets import read_sheets
from fleet.planned import PlannedServer

__all__ = ["PlannedServer", "forget_loaded", "load_inventories", "validate_inventories"]


def load_inventories(paths: Sequence[str | Path]) -> list[PlannedServer]:
    """Read, validate and expand inventories; raise InventoryError listing every problem.

    Args:
        paths: the inventory files, in the order their servers should come out.

    Returns:
        One ServerSpec per server: in file order, then row order, then serial order.

    Raises:
        InventoryError: with every problem found in every file, if there is any.

    """
    key = _identity(paths)
    if key is not None and key in _LAST:
        return list(_LAST[key])
    rows, problems = _read_and_check(paths)
    if problems:
        raise InventoryError(problems)
    specs = encode(rows.columns, rows.expansion)
    if key is not None:
        _LAST.clear()
        _LAST[key] = tuple(specs)
    return specs


_Key = tuple[tuple[str, str], ...]
# The last inventories loaded in this process, by the identity of their files: the command line
# checks them before it starts a flow, whose first task loads them again; once is enough.
_LAST: dict[_Key, tuple[PlannedServer, ...]] = {}


def forget_loaded() -> None:
    """Drop the inventories kept from the last load (benchmarks measure real loads)."""
    _LAST.clear()


def _identity(paths: Sequence[str | Path]) -> _Key | None:
    """Return what tells these files apart from any edit: their paths and contents' digests."""
    try:
        # A digest, not a modification time: two edits within one clock tick look the same.
        return tuple(
            (os.path.realpath(p), hashlib.blake2b(Path(p).read_bytes()).hexdigest()) for p in paths
        )
    except OSError:
        return None  # read (and reported) by the loader itself


def validate_inventories(paths: Sequence[str | Path]) -> list[Problem]:
    """Read and check inventories; return every problem found (empty when all is well)."""
    return _read_and_check(paths)[1]


def _read_and_check(paths: Sequence[str | Path]) -> tuple[Rows, list[Problem]]:
    """Read every file and check every rule on every row; return the rows and every problem."""
    report = Report([os.fspath(path) for path in paths])
    columns = read_sheets(paths, report)
    rows = Rows(columns, expand(columns))
    if len(columns):
        for rule in RULES:
            rule(rows, report)
    return rows, report.problems()
