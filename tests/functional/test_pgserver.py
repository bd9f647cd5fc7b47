"""The PostgreSQL harness: a real server, reached through SQLAlchemy and psycopg 3."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from fleet.config import LedgerLocation
from tests.support.pgserver import PASSWORD, PostgresServer

SETTINGS = "SELECT current_setting('listen_addresses'), host(inet_server_addr()), " + ", ".join(
    f"current_setting('{name}')" for name in ("fsync", "synchronous_commit", "full_page_writes")
)


def psycopg_url(url: str) -> URL:
    """The harness's ``postgresql://`` URL with SQLAlchemy's psycopg 3 driver."""
    return make_url(url).set(drivername="postgresql+psycopg")


def fetch_one(url: URL, query: str) -> tuple[object, ...]:
    """One row of a query, through an engine that is disposed of afterwards."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(query)).one())
    finally:
        engine.dispose()


def test_sqlalchemy_connects_over_tcp_with_the_password(postgres_url: str) -> None:
    """A psycopg engine reaches the test's own empty UTF8 database as the superuser, by password."""
    url = psycopg_url(postgres_url)
    assert url.password == PASSWORD and url.host == "127.0.0.1"
    row = fetch_one(
        url,
        "SELECT current_user, current_database(), current_setting('server_encoding'),"
        " (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')",
    )
    assert row == ("fleet", url.database, "UTF8", 0)


def test_a_wrong_password_is_refused(postgres_url: str) -> None:
    """TCP connections really authenticate: the wrong password is turned away."""
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        fetch_one(psycopg_url(postgres_url).set(password="wrong"), "SELECT 1")


def test_fresh_databases_are_isolated(postgres: PostgresServer, postgres_url: str) -> None:
    """A table made in one test's database does not exist in another fresh database."""
    first = sa.create_engine(psycopg_url(postgres_url))
    other = sa.create_engine(psycopg_url(postgres.create_database("isolation_other")))
    try:
        with first.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (n int)"))
        assert sa.inspect(first).get_table_names() == ["only_here"]
        assert sa.inspect(other).get_table_names() == []
    finally:
        first.dispose()
        other.dispose()
        postgres.drop_database("isolation_other")


def test_the_session_server_is_loopback_only_and_fast(postgres_url: str) -> None:
    """The server listens on 127.0.0.1 alone and trades durability for speed."""
    row = fetch_one(psycopg_url(postgres_url), SETTINGS)
    assert row == ("127.0.0.1", "127.0.0.1", "off", "off", "off")


@pytest.mark.slow
@pytest.mark.usefixtures("postgres")  # skipped, or failed under CI, the same way where none can run
def test_a_durable_server_keeps_the_defaults_and_leaves_nothing_behind() -> None:
    """A durable server (for benchmarks) keeps fsync and friends on; its directory goes on exit."""
    with PostgresServer(durable=True) as server:
        base = server.base
        row = fetch_one(psycopg_url(server.url), SETTINGS)
    assert row == ("127.0.0.1", "127.0.0.1", "on", "on", "on")
    assert base is not None and not base.exists() and server.base is None


def test_a_ledger_location_made_from_the_harness_url_connects(postgres_url: str) -> None:
    """A LedgerLocation keeps the (quoted) password for the driver and shows it nowhere."""
    location = LedgerLocation.parse(postgres_url)
    assert not location.is_sqlite and location.password == PASSWORD
    assert PASSWORD not in f"{location!r} {location} {location.sqlalchemy_url!r}"
    assert fetch_one(location.sqlalchemy_url, "SELECT current_user") == ("fleet",)
