"""Results files: every server and number, safe to open in a spreadsheet, private."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

from fleet.report.results import COLUMNS, neutralise, results_path, write_results
from tests.support.records import record


def test_formula_like_cells_are_shown_as_text() -> None:
    """A cell starting like a formula gets a quote first; numbers and plain text pass as is."""
    assert [neutralise(v) for v in ("=1+1", "+x", "-2", "@sum", "\tx", "web-001", 5)] == [
        "'=1+1",
        "'+x",
        "'-2",
        "'@sum",
        "'\tx",
        "web-001",
        5,
    ]


def test_results_are_utf8_without_a_bom_private_and_keep_korean_text(tmp_path: Path) -> None:
    """Plain UTF-8 (no BOM: the first column reads serverName), formulas never run, 0600."""
    path = tmp_path / "results" / "r.csv"
    message = '=HYPERLINK("x") 서버 이미지와 스펙이 맞지 않습니다'
    write_results(path, [record("web-001"), record("web-002", message)], {"web-001": ["1009"]})
    raw = path.read_bytes()
    assert raw.startswith(b"serverName,")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["duplicateInstanceNos"] == "1009" and rows[0]["regionCode"] == "JPN"
    assert rows[1]["errorMessage"] == "'" + message
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_results_go_beside_a_file_ledger_or_under_fleet_for_a_database() -> None:
    """A PostgreSQL ledger has no folder: its results go to .fleet/results."""
    assert results_path("/x/ledger.db", "r") == Path("/x/results/r.csv")
    assert results_path("postgresql://u:***@db/fleet", "r") == Path(".fleet/results/r.csv")
