"""PostgreSQL fixtures: one throwaway server a session, a fresh database a test, a ledger URL."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pgserver import PostgresServer, PostgresUnavailable

# Why the PostgreSQL tests were skipped, for the banner at the end of the run.
_postgres_skipped: list[str] = []
_database_numbers = itertools.count(1)


def _start_postgres() -> PostgresServer | str:
    """Return a running server, or why PostgreSQL cannot run on this machine."""
    try:
        return PostgresServer().start()
    except PostgresUnavailable as exc:
        return f"PostgreSQL cannot run here: {exc}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (tests/support/pgserver.py).

    Where PostgreSQL cannot run at all (no binaries), its tests skip, loudly; under CI (env CI
    set) they fail instead, since .ci/run installs it. A server that is here but fails to start
    is always an error.
    """
    server = _start_postgres()
    if isinstance(server, str):
        if os.environ.get("CI"):
            pytest.fail(f"{server} (CI must run these tests: see .ci/run)", pytrace=False)
        _postgres_skipped.append(server)
        pytest.skip(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test alone: its ``postgresql://`` URL, password included."""
    # The test's name in the database's, to find it in the server's log.
    test = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower())[:40]
    name = f"t{next(_database_numbers)}_{test}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh ledger lives: a SQLite file, then a database on a throwaway PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger" / "fleet.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say at the end of the run, not only in -rs, that the PostgreSQL tests did not run."""
    if _postgres_skipped:
        terminalreporter.write_sep("!", "PostgreSQL tests SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_postgres_skipped[0], red=True)
