"""Functional fixtures: a ledger on each backend (a SQLite file, a real PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh ledger lives: a SQLite file, then a database on a throwaway PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger" / "fleet.db")
    url: str = request.getfixturevalue("postgres_url")
    return url
