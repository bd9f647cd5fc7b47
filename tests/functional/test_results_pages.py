"""A rollout's results, read a page of the ledger at a time: every server, in inventory order."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.errors import PermanentError
from fleet.ledger import Found, Ledger
from fleet.planned import PlannedServer
from fleet.report import results

OWNER = "run-1"
# Inventory order (file, line) is not the names' order: zeta comes first.
NAMES = ["zeta", "alpha", "mid-1", "mid-2", "beta", "omega", "gamma"]


def spec(name: str, line: int) -> PlannedServer:
    params = (("serverImageNo", "100"), ("vpcNo", "7"), ("subnetNo", "8"), ("serverName", name))
    return PlannedServer(name, "inv.csv", line, params)


def found(no: str, name: str) -> Found:
    return Found(no, "", "7", "INIT", "2026-11-27T10:00:00+0900", {"serverName": name})


@pytest.fixture
def book(ledger_url: str) -> Iterator[Ledger]:
    """A ledger holding rollout 'r': two created (one twice), one refused, the rest planned."""
    with Ledger(ledger_url) as ledger:
        ledger.acquire("r", OWNER, "test run", ttl=60)
        specs = [spec(name, line) for line, name in enumerate(NAMES, start=2)]
        ledger.plan("r", specs, owner=OWNER)
        for s in specs[:3]:
            ledger.claim("r", s, OWNER)
        ledger.record_created("r", "zeta", [found("1001", "zeta")], request_id="a")
        ledger.record_created(
            "r", "alpha", [found("1002", "alpha"), found("1003", "alpha")], request_id="b"
        )
        ledger.record_failed("r", "mid-1", PermanentError("no quota", code="1015009"))
        yield ledger


def test_results_file_written_page_by_page_has_every_server_in_inventory_order(
    book: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 3 rows make the same file as one read: inventory order, duplicates named."""
    monkeypatch.setattr(results, "PAGE", 3)
    path = results.write_rollout_results(tmp_path / "r.csv", book, "r")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["serverName"] for r in rows] == NAMES
    assert [r["state"] for r in rows[:4]] == ["created", "created", "failed", "planned"]
    assert rows[1]["serverInstanceNo"] == "1002"
    assert rows[1]["duplicateInstanceNos"] == "1003"
    whole = tmp_path / "whole.csv"
    results.write_results(whole, book.records("r"), {"alpha": ["1003"]})
    assert whole.read_bytes() == path.read_bytes()


def test_tally_counts_page_by_page_what_one_read_counts(
    book: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout's and the run's counts, and the failures first in order, from pages of 2."""
    monkeypatch.setattr(results, "PAGE", 2)
    monkeypatch.setattr(results, "FIRST_FAILURES", 3)
    sent, settling = {"zeta", "mid-1", "beta"}, {"alpha"}
    tally = results.tally(book, "r", sent, settling, 2)
    records = book.records("r")
    assert tally.counts == results.counts(records)
    assert tally.run == results.run_counts(records, sent, settling, 2)
    assert [r.name for r in tally.failures] == ["mid-1", "mid-2", "beta"]
    assert tally.not_clean == 5
    assert [r.name for r in tally.failed] == ["mid-1"]
