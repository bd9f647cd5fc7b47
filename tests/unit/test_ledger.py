"""The ledger: states, outcomes with NCP's codes, change detection, and surviving a reopen."""

from __future__ import annotations

import json
from pathlib import Path

from fleet.errors import AmbiguousError, PermanentError
from fleet.inventory import ServerSpec
from fleet.ledger import Ledger, State


def spec(name: str, line: int = 2, image: str = "100") -> ServerSpec:
    return ServerSpec(
        name,
        "inv.csv",
        line,
        (("serverImageNo", image), ("vpcNo", "7"), ("subnetNo", "8"), ("serverName", name)),
    )


def test_plan_enters_servers_once_and_reports_what_changed(tmp_path: Path) -> None:
    """A second plan adds only new names, and tells created-but-changed from not-yet-sent."""
    book = Ledger(tmp_path / "l.db")
    first = book.plan("r", [spec("a"), spec("b"), spec("c")])
    assert first.new == ("a", "b", "c")
    book.mark_in_flight("r", "a")
    book.mark_created("r", "a", "1001", request_id="rid")
    book.mark_failed("r", "b", PermanentError("bad", code="1413", status=400))
    second = book.plan("r", [spec("a", image="200"), spec("b", image="200"), spec("d")])
    assert second.new == ("d",)
    assert second.changed == ("a",)  # created with the old parameters: reported, not redone
    assert second.replanned == ("b",)  # never created: the new parameters will be sent
    assert second.removed == ("c",)
    b = book.record("r", "b")
    assert b is not None and b.state == State.PLANNED and b.error_code is None


def test_outcomes_keep_ncp_codes_messages_and_request_ids(tmp_path: Path) -> None:
    """A failure keeps status, code, message and request id; a success keeps NCP's record."""
    book = Ledger(tmp_path / "l.db")
    book.plan("r", [spec("a"), spec("b")])
    book.mark_in_flight("r", "a")
    book.mark_in_flight("r", "a")
    raw = {"serverInstanceNo": "1001", "serverName": "a", "zoneCode": "KR-1"}
    book.mark_created("r", "a", "1001", request_id="rid-1", response=raw, server_status="INIT")
    book.mark_failed("r", "b", PermanentError("limit", status=400, code="1015009", request_id="x"))
    a, b = book.records("r")
    assert (a.state, a.instance_no, a.request_id, a.attempts) == ("created", "1001", "rid-1", 2)
    assert json.loads(a.response or "") == raw and a.server_status == "INIT"
    assert (b.state, b.error_kind, b.http_status, b.error_code, b.error_message, b.request_id) == (
        "failed",
        "permanent",
        400,
        "1015009",
        "limit",
        "x",
    )
    assert not b.retryable


def test_only_permanent_failures_are_final(tmp_path: Path) -> None:
    """Planned, in-flight and non-permanent failures are retried by a rerun."""
    book = Ledger(tmp_path / "l.db")
    book.plan("r", [spec("a"), spec("b"), spec("c")])
    book.mark_in_flight("r", "b")
    book.mark_failed("r", "c", AmbiguousError("lost", status=504, code="510"))
    assert [r.retryable for r in book.records("r")] == [True, True, True]


def test_everything_survives_closing_and_reopening(tmp_path: Path) -> None:
    """Each write is committed at once: a new connection sees every state."""
    path = tmp_path / "sub" / "l.db"
    book = Ledger(path)
    book.plan("r", [spec("a"), spec("b")])
    book.mark_in_flight("r", "a")
    book.mark_created("r", "b", "2002", request_id="rid")
    # No close(): as if the process had died here.
    again = Ledger(path)
    states = {r.name: (r.state, r.instance_no) for r in again.records("r")}
    assert states == {"a": ("in_flight", None), "b": ("created", "2002")}
    assert again.rollouts() == [("r", {"created": 1, "in_flight": 1})]


def test_rollouts_are_kept_apart(tmp_path: Path) -> None:
    """Two rollouts may plan the same names without touching each other's records."""
    book = Ledger(tmp_path / "l.db")
    book.plan("one", [spec("a")])
    book.plan("two", [spec("a")])
    book.mark_created("one", "a", "1", request_id=None)
    assert book.record("two", "a") is not None
    assert book.record("two", "a").state == State.PLANNED  # type: ignore[union-attr]
