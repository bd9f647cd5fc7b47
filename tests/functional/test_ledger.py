"""The ledger on both backends: plan rules, compare-and-set, leases, bindings, group commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from fleet.errors import (
    AmbiguousError,
    BindingError,
    ErrorKind,
    LeaseHeld,
    LeaseLost,
    LedgerConflict,
    LedgerError,
    PermanentError,
    RetryableError,
)
from fleet.ledger import AsyncLedger, Binding, Found, Ledger, Observed, State
from fleet.ledger.rows import iso
from fleet.planned import PlannedServer
from fleet.states import ServerStatus
from tests.support.clock import FakeClock

OWNER = "run-1"


def spec(name: str, line: int = 2, image: str = "100", region: str = "") -> PlannedServer:
    params = [("serverImageNo", image), ("vpcNo", "7"), ("subnetNo", "8"), ("serverName", name)]
    if region:
        params.insert(0, ("regionCode", region))
    return PlannedServer(name, "inv.csv", line, tuple(params))


def found(no: str, name: str = "a", vpc: str = "7", region: str = "") -> Found:
    return Found(no, region, vpc, "INIT", "2026-11-27T10:00:00+0900", {"serverName": name})


@pytest.fixture
def clock() -> FakeClock:
    """A wall clock the tests move by hand (lease expiry)."""
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
def book(ledger_url: str, clock: FakeClock) -> Iterator[Ledger]:
    """A fresh ledger holding rollout 'r''s lease for OWNER."""
    with Ledger(ledger_url, clock=clock) as ledger:
        ledger.acquire("r", OWNER, "test run", ttl=60)
        yield ledger


def planned(book: Ledger, *specs: PlannedServer) -> None:
    book.plan("r", list(specs), owner=OWNER)


def test_plan_enters_servers_once_and_reports_what_changed(book: Ledger) -> None:
    """A second plan adds only new names, and tells created-but-changed from not-yet-sent."""
    first = book.plan("r", [spec("a"), spec("b"), spec("c")], owner=OWNER)
    assert first.new == ("a", "b", "c")
    book.claim("r", spec("a"), OWNER)
    book.record_created("r", "a", [found("1001")], request_id="rid")
    book.claim("r", spec("b"), OWNER)
    book.record_failed("r", "b", PermanentError("bad", code="1413", status=400))
    second = book.plan(
        "r", [spec("a", image="200"), spec("b", image="200"), spec("d")], owner=OWNER
    )
    assert second.new == ("d",)
    assert second.changed == ("a",)  # created with the old parameters: reported, not redone
    assert second.retried == ("b",)  # refused with the old parameters: the new ones are sent
    assert second.removed == ("c",)
    b = book.record("r", "b")
    assert b is not None and b.state == State.PLANNED and b.error_code is None


def test_an_edited_row_whose_create_may_be_out_is_held_until_settled(book: Ledger) -> None:
    """A changed row that is in flight keeps the parameters it was sent with until looked up."""
    planned(book, spec("a"))
    book.claim("r", spec("a"), OWNER)
    delta = book.plan("r", [spec("a", region="JPN")], owner=OWNER)
    assert delta.held == ("a",)
    row = book.record("r", "a")
    assert row is not None and row.state == State.IN_FLIGHT
    assert (row.region, row.sent_region) == ("", "")
    assert row.params_hash == spec("a").params_hash


def test_failures_are_not_forever(book: Ledger) -> None:
    """A refused server is retried when asked (retry_failed), unprocessed ones always are."""
    planned(book, spec("a"), spec("b"))
    for name, error in (("a", PermanentError("no", status=400)), ("b", RetryableError("x"))):
        book.claim("r", spec(name), OWNER)
        book.record_failed("r", name, error)
    a, b = book.records("r")
    assert (a.sendable, b.sendable) == (False, True)
    assert book.plan("r", [spec("a"), spec("b")], owner=OWNER).retried == ()
    assert book.plan("r", [spec("a"), spec("b")], owner=OWNER, retry_failed=True).retried == ("a",)
    assert [r.state for r in book.records("r")] == [State.PLANNED, State.FAILED]


def test_a_torn_down_server_is_created_anew_on_the_next_plan(book: Ledger) -> None:
    """After its teardown a server is planned again; the old instance stays on record."""
    planned(book, spec("a"))
    book.claim("r", spec("a"), OWNER)
    book.record_created("r", "a", [found("1001")], request_id="rid")
    book.move("r", ["1001"], State.TERMINATING, intent={"why": "teardown"})
    book.accepted_terminate("r", ["1001"])
    assert book.move("r", ["1001"], State.TERMINATED) == ["1001"]
    delta = book.plan("r", [spec("a")], owner=OWNER)
    assert delta.renewed == ("a",)
    row = book.record("r", "a")
    assert row is not None and (row.state, row.instance_no, row.attempts) == (
        State.PLANNED,
        None,
        0,
    )
    (old,) = book.instances("r")
    assert (old.instance_no, old.state) == ("1001", State.TERMINATED)
    assert old.terminate_at is not None and old.terminated_at is not None


def test_claim_is_a_compare_and_set(book: Ledger) -> None:
    """A server is claimed once; a second claim, or one for changed parameters, changes nothing."""
    planned(book, spec("a"))
    book.claim("r", spec("a"), OWNER)
    with pytest.raises(LedgerConflict, match="it is in_flight"):
        book.claim("r", spec("a"), OWNER)
    planned(book, spec("b"))
    with pytest.raises(LedgerConflict, match="planned"):
        book.claim("r", spec("b", image="999"), OWNER)
    with pytest.raises(LedgerConflict, match="no such server"):
        book.claim("r", spec("zz"), OWNER)
    with pytest.raises(LedgerConflict):
        book.record_failed("r", "b", PermanentError("no"))  # b was never sent


def test_no_claim_without_the_lease(book: Ledger, clock: FakeClock) -> None:
    """A claim needs the rollout's live lease: another owner's, or an expired one, refuse it."""
    planned(book, spec("a"), spec("b"))
    with pytest.raises(LeaseLost, match="no longer holds"):
        book.claim("r", spec("a"), "run-2")
    clock.now += 61
    with pytest.raises(LeaseLost, match="expired"):
        book.claim("r", spec("a"), OWNER)
    book.acquire("r", "run-2", "second run", ttl=60)  # the expired lease is taken over
    with pytest.raises(LeaseLost, match="second run"):
        book.renew("r", OWNER, ttl=60)
    book.claim("r", spec("a"), "run-2")
    assert book.record("r", "a").state == State.IN_FLIGHT  # type: ignore[union-attr]


def test_a_held_lease_names_its_holder_and_since_when(book: Ledger, clock: FakeClock) -> None:
    """A second run is refused with who runs the rollout and since when; a renewal keeps it."""
    clock.now += 50
    book.renew("r", OWNER, ttl=60)
    clock.now += 50  # past the first expiry, within the renewed one
    with pytest.raises(LeaseHeld) as held:
        book.acquire("r", "run-2", "host b pid 2", ttl=60)
    assert held.value.holder == "test run"
    assert "2027-01-15T08:00:00.000+00:00" in str(held.value)  # acquired at the clock's start
    book.release("r", OWNER)
    assert book.acquire("r", "run-2", "host b pid 2", ttl=60).holder == "host b pid 2"


def test_outcomes_keep_ncp_codes_messages_request_ids_and_every_number(book: Ledger) -> None:
    """A failure keeps status, code, message, request id; a name found twice keeps both numbers."""
    planned(book, spec("a"), spec("b"), spec("c"))
    for name in "abc":
        book.claim("r", spec(name), OWNER)
    book.record_created("r", "a", [found("1002"), found("1001")], request_id="rid-1")
    book.record_failed(
        "r", "b", PermanentError("limit", status=400, code="1015009", request_id="x")
    )
    book.note_ambiguous("r", "c", AmbiguousError("timeout", status=504, code="510"))
    a, b, c = book.records("r")
    assert (a.state, a.instance_no, a.request_id, a.duplicates) == (
        State.CREATED,
        "1001",
        "rid-1",
        1,
    )
    assert json.loads(a.response or "")["fleetSameName"] == ["1001", "1002"]
    assert [(i.instance_no, i.role) for i in book.instances("r")] == [
        ("1001", "primary"),
        ("1002", "duplicate"),
    ]
    assert (b.error_kind, b.http_status, b.error_code, b.error_message, b.request_id) == (
        ErrorKind.PERMANENT,
        400,
        "1015009",
        "limit",
        "x",
    )
    assert (c.state, c.error_kind, c.ambiguous_sends, c.unsettled) == (
        State.IN_FLIGHT,
        ErrorKind.AMBIGUOUS,
        1,
        True,
    )
    assert book.counts("r").duplicates == 1


def test_a_late_answer_for_a_settled_row_is_kept_as_a_duplicate(book: Ledger) -> None:
    """If the row was settled with another number meanwhile, the late number is not dropped."""
    planned(book, spec("a"))
    book.claim("r", spec("a"), OWNER)
    book.record_created("r", "a", [found("1001")], request_id=None, origin="lookup")
    book.record_created("r", "a", [found("1005")], request_id="late")
    row = book.record("r", "a")
    assert row is not None and (row.instance_no, row.duplicates) == ("1001", 1)
    assert [i.instance_no for i in book.instances("r")] == ["1001", "1005"]


def test_release_absent_checks_the_send_it_settles(book: Ledger) -> None:
    """An absence seen for one send says nothing of a newer one: the release is refused."""
    planned(book, spec("a"))
    first = book.claim("r", spec("a"), OWNER)
    book.release_absent("r", spec("a"), first)
    second = book.claim("r", spec("a"), OWNER)
    with pytest.raises(LedgerConflict):
        book.release_absent("r", spec("a"), first)
    book.give_up("r", "a", second, "never found")
    row = book.record("r", "a")
    assert row is not None and (row.state, row.error_kind, row.attempts) == (
        State.FAILED,
        ErrorKind.AMBIGUOUS,
        2,
    )
    assert row.unsettled and not row.sendable


def test_bindings_refuse_another_endpoint_or_account_unless_rebound(book: Ledger) -> None:
    """A rollout stays with the endpoint and account it was created in."""
    home = Binding("r", "https://ncloud.apigw.ntruss.com", "key-1", rehearsal=False)
    assert book.bind(home) == home
    assert book.bind(home) == home
    with pytest.raises(BindingError, match=r"http://127\.0\.0\.1:9"):
        book.bind(Binding("r", "http://127.0.0.1:9", "key-1", rehearsal=True))
    with pytest.raises(BindingError, match="account key key-1"):
        book.bind(Binding("r", home.endpoint, "key-2", rehearsal=False))
    moved = Binding("r", home.endpoint, "key-2", rehearsal=False)
    assert book.bind(moved, rebind=True) == moved
    assert book.binding("r") == moved


def test_only_rehearsals_are_forgotten(book: Ledger) -> None:
    """forget() deletes a rehearsal rollout and refuses a real one."""
    planned(book, spec("a"))
    book.bind(Binding("r", "https://ncloud.apigw.ntruss.com", "k", rehearsal=False))
    with pytest.raises(LedgerError, match="not a rehearsal"):
        book.forget("r")
    book.acquire("s", OWNER, "t", ttl=60)
    book.plan("s", [spec("b")], owner=OWNER)  # a name of its own: "a" is r's
    book.bind(Binding("s", "http://127.0.0.1:1", "k", rehearsal=True))
    book.forget("s")
    assert book.rollouts() == ["r"]


def test_statuses_and_counts(book: Ledger) -> None:
    """Statuses seen and the counts per state read back typed."""
    planned(book, spec("a"), spec("b"))
    book.claim("r", spec("a"), OWNER)
    book.record_created("r", "a", [found("1001")], request_id=None)
    book.observe("r", [Observed("1001", ServerStatus.RUN, run_seconds=12.5)])
    book.note_error("r", "b", ErrorKind.TIMEOUT, "not RUN", code="INIT")
    counts = book.counts("r")
    assert (counts.created, counts.planned, counts.running, counts.total) == (0, 1, 1, 2)
    a = book.record("r", "a")
    assert a is not None and a.server_status is ServerStatus.RUN and a.run_seconds == 12.5


def test_everything_survives_reopening(ledger_url: str, clock: FakeClock) -> None:
    """Each write is committed at once: a new connection sees every state."""
    book = Ledger(ledger_url, clock=clock)
    book.acquire("r", OWNER, "t", ttl=60)
    planned(book, spec("a"), spec("b"))
    book.claim("r", spec("a"), OWNER)
    book.claim("r", spec("b"), OWNER)
    book.record_created("r", "b", [found("2002", "b")], request_id="rid")
    # No close(): as if the process had died here.
    with Ledger(ledger_url) as again:
        states = {r.name: (r.state, r.instance_no) for r in again.records("r")}
        assert states == {"a": (State.IN_FLIGHT, None), "b": (State.CREATED, "2002")}
    book.close()


@pytest.mark.anyio
async def test_concurrent_writes_share_commits_and_keep_their_own_outcomes(
    book: Ledger,
) -> None:
    """Writes queued together share a transaction; one conflict does not spoil its neighbours."""
    specs = [spec(f"s{i:03d}") for i in range(200)]
    planned(book, *specs)
    book.claim("r", specs[7], OWNER)  # already claimed: its second claim must fail alone
    aio = AsyncLedger(book)
    try:
        results = await asyncio.gather(
            *(aio.claim("r", s, OWNER) for s in specs), return_exceptions=True
        )
    finally:
        aio.close()
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [7] and isinstance(results[7], LedgerConflict)
    assert all(r.state == State.IN_FLIGHT for r in book.records("r"))
    assert aio.commits < aio.calls == 200


def test_the_rate_a_gateway_allowed_is_remembered_per_endpoint_and_account(book: Ledger) -> None:
    """The next run starts near the rate the last one found, for that endpoint and key only."""
    assert book.known_rate("https://gw", "key-1") is None
    book.remember_rate("https://gw", "key-1", 42.5)
    book.remember_rate("https://gw", "key-1", 47.0)
    book.remember_rate("https://gw", "key-2", 9.0)
    assert book.known_rate("https://gw", "key-1") == 47.0
    assert book.known_rate("https://other", "key-1") is None


@pytest.mark.anyio
async def test_an_outcome_shares_the_next_claims_commit_and_is_durable_when_awaited(
    ledger_url: str, book: Ledger
) -> None:
    """A create's record waits briefly for a claim to commit with; once awaited, it is on disk."""
    a, b = spec("a"), spec("b")
    planned(book, a, b)
    aio = AsyncLedger(book)
    try:
        await aio.claim("r", a, OWNER)
        before = aio.commits
        recorded = aio.later(book.record_created, "r", "a", [found("1001")], request_id="q1")
        await asyncio.sleep(0.001)  # the record is queued, waiting for company
        await aio.claim("r", b, OWNER)  # a claim never waits: it takes the record along
        await recorded
        assert aio.commits == before + 1
        with Ledger(ledger_url) as other:  # another connection sees it: committed, not pending
            seen = other.record("r", "a")
            assert seen is not None and seen.instance_no == "1001"
        # Alone, a record still commits, after at most the linger.
        await aio.later(book.record_created, "r", "b", [found("1002", "b")], request_id="q2")
        assert aio.commits == before + 2
    finally:
        aio.close()


def test_a_database_error_on_the_hot_path_names_the_ledger(ledger_url: str, book: Ledger) -> None:
    """A failing claim (its table gone) is a LedgerError naming the ledger, not a driver error."""
    planned(book, spec("a"))
    with book.db.transaction() as conn:
        conn.exec_driver_sql("ALTER TABLE servers RENAME TO servers_gone")
    with pytest.raises(LedgerError, match=r"^ledger .*servers"):
        book.claim("r", spec("a"), OWNER)


def test_servers_claimed_together_keep_each_their_own_conflict(book: Ledger) -> None:
    """Claims made ahead in one commit: a server that may not be sent is left as it was."""
    planned(book, spec("a"), spec("b"), spec("c"))
    book.claim("r", spec("b"), OWNER)
    claimed = book.claim_many("r", [spec("a"), spec("b"), spec("c")], OWNER)
    assert claimed[0] == 1 and claimed[2] == 1
    assert isinstance(claimed[1], LedgerConflict) and "in_flight" in str(claimed[1])
    assert {r.name: (r.state, r.attempts) for r in book.records("r")} == {
        "a": (State.IN_FLIGHT, 1),
        "b": (State.IN_FLIGHT, 1),
        "c": (State.IN_FLIGHT, 1),
    }
    with pytest.raises(LeaseLost):
        book.claim_many("r", [spec("a")], "run-2")


def test_a_claim_whose_create_never_left_is_undone_as_it_was(book: Ledger) -> None:
    """Unclaimed, a planned server is planned again; one that failed unprocessed keeps its error."""
    planned(book, spec("a"), spec("b"))
    book.unclaim("r", "a", book.claim("r", spec("a"), OWNER))
    row = book.record("r", "a")
    assert row is not None and (row.state, row.attempts, row.first_sent_at) == (
        State.PLANNED,
        0,
        None,
    )
    book.claim("r", spec("b"), OWNER)
    book.record_failed("r", "b", RetryableError("busy", code="500"))
    first_sent = book.record("r", "b").first_sent_at  # type: ignore[union-attr]
    attempt = book.claim("r", spec("b"), OWNER)
    book.unclaim("r", "b", attempt)
    row = book.record("r", "b")
    assert row is not None and (row.state, row.error_kind, row.attempts, row.first_sent_at) == (
        State.FAILED,
        ErrorKind.RETRYABLE,
        1,
        first_sent,
    )
    assert row.sendable
    with pytest.raises(LedgerConflict):
        book.unclaim("r", "b", attempt)  # undone already: nothing to undo


def test_a_late_claim_is_stamped_again_under_the_lease(book: Ledger, clock: FakeClock) -> None:
    """A claim's send time moves to when its create really goes out; only under the lease."""
    planned(book, spec("a"))
    attempt = book.claim("r", spec("a"), OWNER)
    stamped = book.record("r", "a").sent_at  # type: ignore[union-attr]
    clock.now += 5
    book.restamp("r", "a", attempt, OWNER)
    row = book.record("r", "a")
    assert row is not None and (row.sent_at, row.attempts) == (iso(clock.now), attempt)
    assert stamped == iso(clock.now - 5)
    with pytest.raises(LedgerConflict):
        book.restamp("r", "a", attempt + 1, OWNER)
    with pytest.raises(LeaseLost):
        book.restamp("r", "a", attempt, "run-2")


def test_a_version_2_ledger_opens_at_the_current_version_with_every_row_kept(
    ledger_url: str,
) -> None:
    """A ledger from before ownership: its rows kept, its in-flight ones settled as before."""
    from fleet.ledger.schema import _V3_COLUMNS, SCHEMA_VERSION

    with Ledger(ledger_url) as ledger:
        ledger.acquire("r", OWNER, "test run", ttl=60)
        ledger.plan("r", [spec("a")], owner=OWNER)
        ledger.claim("r", spec("a"), OWNER)
        with ledger.db.transaction() as conn:  # back to version 2, as an older fleet left it
            for table, name in _V3_COLUMNS:
                conn.exec_driver_sql(f'ALTER TABLE {table.name} DROP COLUMN "{name}"')
            conn.exec_driver_sql("UPDATE fleet_meta SET value = '2' WHERE key = 'schema_version'")
    with Ledger(ledger_url) as ledger:
        (record,) = ledger.records("r")
        with ledger.db.transaction() as conn:
            version = conn.exec_driver_sql(
                "SELECT value FROM fleet_meta WHERE key = 'schema_version'"
            ).scalar()
        own = ledger.ownership("r", window=60.0)
    assert version == str(SCHEMA_VERSION) == "5"
    assert record.state == State.IN_FLIGHT and record.unsettled and not record.marked
    assert (own.marker, own.window) == (None, 60.0)


def test_a_version_4_ledger_gives_each_server_one_state(ledger_url: str) -> None:
    """Version 5 folds the teardown column into one state: terminated is never running again."""
    with Ledger(ledger_url) as ledger:
        ledger.acquire("r", OWNER, "test run", ttl=60)
        planned(ledger, spec("a"), spec("b"), spec("c"))
        for name, number in (("a", "1001"), ("b", "1002"), ("c", "1003")):
            ledger.claim("r", spec(name), OWNER)
            ledger.record_created("r", name, [found(number)], request_id=None)
        with ledger.db.transaction() as conn:  # back to version 4, as an older fleet left it
            for table in ("servers", "instances"):
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN teardown VARCHAR(16)")
            for column in ("state", "seen_at", "terminate_at", "intent"):
                conn.exec_driver_sql(f'ALTER TABLE instances DROP COLUMN "{column}"')
            conn.exec_driver_sql('ALTER TABLE servers DROP COLUMN "sent_ncp"')
            conn.exec_driver_sql("DROP TABLE name_claims")
            conn.exec_driver_sql("UPDATE servers SET state = 'created', server_status = 'RUN'")
            conn.exec_driver_sql("UPDATE servers SET teardown = 'terminated' WHERE name = 'a'")
            conn.exec_driver_sql("UPDATE instances SET teardown = 'terminated' WHERE name = 'a'")
            conn.exec_driver_sql("UPDATE servers SET teardown = 'stopping' WHERE name = 'b'")
            conn.exec_driver_sql("UPDATE instances SET teardown = 'stopping' WHERE name = 'b'")
            conn.exec_driver_sql("UPDATE fleet_meta SET value = '4' WHERE key = 'schema_version'")
    with Ledger(ledger_url) as ledger:
        states = {r.name: r.state for r in ledger.records("r")}
        lives = {i.name: i.state for i in ledger.instances("r")}
        counts = ledger.counts("r")
    assert (
        states
        == lives
        == {
            "a": State.TERMINATED,
            "b": State.TERMINATING,  # a teardown left part-way: the next run finishes it
            "c": State.RUNNING,
        }
    )
    assert (counts.running, counts.terminating, counts.terminated) == (1, 1, 1)


def test_a_version_3_ledger_keeps_what_its_teardown_wrote_down_to_return(ledger_url: str) -> None:
    """Version 4 renamed the table of public IPs and disks to return; none of them is lost."""
    from fleet.ledger import Extra

    ip = Extra("public IP", "20000001", "KR", "web-001", "101", "198.18.0.2")
    with Ledger(ledger_url) as ledger:
        ledger.acquire("r", OWNER, "test run", ttl=60)
        ledger.keep_extras("r", [ip])
        with ledger.db.transaction() as conn:  # back to version 3, as an older fleet left it
            conn.exec_driver_sql("ALTER TABLE extras RENAME TO aside")
            conn.exec_driver_sql("UPDATE fleet_meta SET value = '3' WHERE key = 'schema_version'")
    with Ledger(ledger_url) as ledger:
        assert ledger.extras("r") == [ip]
