"""Inventories in tests: a valid row to vary, CSV text from it, files written, their problems.

The fixture ``write_file``: write text into a file in a fresh working directory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from fleet.inventory import validate_inventories

# The repository's example inventories.
INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"

# A valid row: every test changes only what it is about.
VALID_ROW = {
    "serverName": "web",
    "serverImageNo": "1001",
    "serverSpecCode": "s2-g3",
    "vpcNo": "75001",
    "subnetNo": "75101",
}
LONG = "é" * 501  # 501 characters, 1002 bytes of UTF-8


def table(*rows: Mapping[str, str | None]) -> str:
    """Return CSV text with VALID_ROW's cells overridden per row (None drops the column)."""
    merged = [{**VALID_ROW, **row} for row in rows]
    every = dict.fromkeys(key for row in merged for key in row)
    columns = [c for c in every if any(row.get(c) is not None for row in merged)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in merged:
        writer.writerow([row.get(c) or "" for c in columns])
    return out.getvalue()


Write = Callable[..., str]


@pytest.fixture
def write_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Write:
    """Write text into a file in a fresh working directory; return the name as given."""
    monkeypatch.chdir(tmp_path)

    def _write(text: str | bytes, name: str = "inv.csv") -> str:
        data = text.encode("utf-8") if isinstance(text, str) else text
        Path(name).write_bytes(data)
        return name

    return _write


def problems_of(*paths: str) -> list[str]:
    """Return the problems of these inventories as the user sees them."""
    return [str(problem) for problem in validate_inventories(list(paths))]
