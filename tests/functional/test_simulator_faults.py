"""The simulator's faults (seeded fractions and rules on demand) and its log of calls received."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fleet.simulator import FAULT_KINDS
from tests.support.keys import BASE_ACCESS, BASE_SECRET
from tests.support.simulator import (
    BASE,
    IN_JPN,
    NOON_KST_2024,
    VALID,
    Api,
    gateway_error,
    server_error,
)

CREATE = "createServerInstances"


def names(api: Api) -> list[str]:
    """Return the names of the servers the simulator holds, listed or not."""
    return [s["serverName"] for s in api.sim.state()["servers"]]


# -- what each fault does to a create ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "error", "created"),
    [
        ("fail_before", 503, {"errorCode": "500", "message": "Endpoint Error"}, False),
        ("fail_after", 504, {"errorCode": "510", "message": "Endpoint Timeout"}, True),
        ("error_500", 500, {"errorCode": "900", "message": "Unexpected Error"}, True),
    ],
)
@pytest.mark.parametrize("how", ["fraction", "rule"])
def test_faults_answering_an_error(
    api: Api, how: str, fault: str, status: int, error: dict[str, str], created: bool
) -> None:
    """A fault answers its gateway error; the server exists unless the fault came before."""
    if how == "fraction":
        api.sim.configure(**{fault: 1.0})
    else:
        api.sim.faults({"action": CREATE, "fault": fault})
    response = api.call(CREATE, VALID)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert names(api) == (["web"] if created else [])
    assert api.sim.state()["counters"]["faults"][fault] == 1


def test_drop_after_creates_then_drops_the_connection(api: Api) -> None:
    """A drop_after fault creates the server; the client sees a transport error, not a status."""
    api.sim.faults({"action": CREATE, "fault": "drop_after"})
    with pytest.raises(httpx.RemoteProtocolError):
        api.call(CREATE, VALID)
    assert names(api) == ["web"]


def test_slow_creates_then_times_the_client_out(api: Api) -> None:
    """A slow create makes the server but answers too late: the client reads a timeout."""
    api.sim.configure(slow=1.0)
    with pytest.raises(httpx.ReadTimeout):
        api.call(CREATE, VALID, timeout=0.3)
    assert names(api) == ["web"]
    assert api.sim.state()["counters"]["faults"]["slow"] == 1


def test_bad_body_creates_then_answers_unreadable_json(api: Api) -> None:
    """A bad_body fault creates the server and answers 200 with a body that is not JSON."""
    api.sim.faults({"action": CREATE, "fault": "bad_body"})
    response = api.call(CREATE, VALID)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert names(api) == ["web"]


def test_late_commit_answers_504_then_commits_later_plus_the_lag(api: Api) -> None:
    """A late_commit 504s at once; the server appears late_commit_seconds later, plus the lag."""
    api.sim.configure(list_lag=5.0)
    api.sim.faults({"action": CREATE, "fault": "late_commit"})
    api.wall.now = NOON_KST_2024
    response = api.call(CREATE, VALID)
    assert gateway_error(response) == (504, "510")
    (record,) = api.sim.state()["servers"]
    assert (record["committed"], record["visible"]) == (False, False)
    no = record["serverInstanceNo"]
    api.clock.advance(BASE.late_commit_seconds)
    assert api.sim.state()["servers"][0]["committed"] is True
    assert api.ok("getServerInstanceList")["totalRows"] == 0  # still within the listing lag
    api.clock.advance(5.0)
    (listed,) = api.ok("getServerInstanceList")["serverInstanceList"]
    assert listed["serverInstanceNo"] == no
    assert listed["createDate"] == "2024-01-01T12:00:20+0900"  # the commit, not the call
    assert api.status(no) == ("INIT", "NULL")


def test_never_ready_creates_a_server_that_never_boots(api: Api) -> None:
    """A never_ready create is answered as usual; its server stays CREAT/SETUP for good."""
    api.sim.faults({"action": CREATE, "fault": "never_ready"})
    created = api.ok(CREATE, VALID)["serverInstanceList"][0]
    api.clock.advance(BASE.create_seconds + BASE.setup_seconds + 3600)
    assert api.status(created["serverInstanceNo"]) == ("CREAT", "SETUP")


# -- rules on demand ---------------------------------------------------------------------------


def test_a_rule_fires_for_the_named_server_only_and_is_consumed(api: Api) -> None:
    """A rule naming web-003 fails that create once; other names, and the retry, go through."""
    left = api.sim.faults({"action": CREATE, "serverName": "web-003", "fault": "fail_before"})
    assert left == [{"action": CREATE, "fault": "fail_before", "times": 1, "serverName": "web-003"}]
    statuses = [
        api.call(CREATE, {**VALID, "serverName": name}).status_code
        for name in ("web-001", "web-003", "web-0031", "web-003")
    ]
    assert statuses == [200, 503, 200, 200]
    assert api.sim.faults() == []


def test_a_rule_fires_times_times_then_stops(api: Api) -> None:
    """A rule with times=N fires on the next N matching calls, then the calls succeed."""
    api.sim.faults({"action": "getServerInstanceList", "fault": "fail_after", "times": 2})
    statuses = [api.call("getServerInstanceList").status_code for _ in range(3)]
    assert statuses == [504, 504, 200]


def test_a_rule_with_a_region_fires_for_that_region_only(api: Api) -> None:
    """A rule for JPN leaves KR calls (and calls without regionCode) alone."""
    api.sim.faults({"action": CREATE, "regionCode": "JPN", "fault": "fail_before"})
    assert api.call(CREATE, VALID).status_code == 200
    assert api.call(CREATE, {**VALID, "regionCode": "KR"}).status_code == 200
    assert api.call(CREATE, {**VALID, **IN_JPN}).status_code == 503
    assert api.sim.faults() == []


def test_first_matching_rule_wins(api: Api) -> None:
    """Rules are tried in order: the first that matches fires, the next waits its turn."""
    api.sim.faults(
        {"action": CREATE, "fault": "fail_before"}, {"action": CREATE, "fault": "error_500"}
    )
    statuses = [api.call(CREATE, VALID).status_code for _ in range(3)]
    assert statuses == [503, 500, 200]


@pytest.mark.parametrize(
    ("action", "params", "fault", "status"),
    [
        ("getServerInstanceList", {}, "fail_before", 503),
        ("getServerInstanceList", {}, "fail_after", 504),
        ("getServerInstanceDetail", {"serverInstanceNo": "{no}"}, "error_500", 500),
        ("getZoneList", {}, "fail_before", 503),
        ("stopServerInstances", {"serverInstanceNoList.1": "{no}"}, "error_500", 500),
    ],
)
def test_rules_reach_reads_and_control_calls(
    api: Api, action: str, params: dict[str, str], fault: str, status: int
) -> None:
    """A read or control call can be failed on demand, so a client's handling of it is tested."""
    api.sim.configure(create_seconds=0, setup_seconds=0)
    (made,) = api.create()
    no = made["serverInstanceNo"]
    params = {k: v.format(no=no) for k, v in params.items()}
    api.sim.faults({"action": action, "fault": fault})
    assert api.call(action, params).status_code == status
    assert api.call(action, params).status_code in (200, 400)  # consumed: the next is answered


def test_a_failed_control_call_after_the_fact_did_the_work(api: Api) -> None:
    """A stop answered 500 (error_500) still stopped the server, as an ambiguous call may have."""
    api.sim.configure(create_seconds=0, setup_seconds=0)
    (made,) = api.create()
    no = made["serverInstanceNo"]
    api.sim.faults({"action": "stopServerInstances", "fault": "error_500"})
    assert api.call("stopServerInstances", {"serverInstanceNoList.1": no}).status_code == 500
    assert api.status(no) == ("RUN", "SHTDN")


def test_a_refused_call_leaves_an_after_fault_rule_in_place(api: Api) -> None:
    """A create NCP refuses answers its 400 and keeps the rule for the next valid create."""
    api.sim.faults({"action": CREATE, "fault": "fail_after"})
    assert server_error(api.call(CREATE, {**VALID, "serverName": "Bad_Name"})) == "900004"
    assert len(api.sim.faults()) == 1
    assert api.call(CREATE, VALID).status_code == 504


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": "launchRockets", "fault": "fail_before"}, "action"),
        ({"action": CREATE, "fault": "melt"}, "fault"),
        ({"action": "getServerInstanceList", "fault": "late_commit"}, "late_commit"),
        ({"action": CREATE, "fault": "slow", "times": 0}, "times"),
        ({"action": CREATE, "fault": "slow", "regionCode": "MARS"}, "regionCode"),
        ({"action": CREATE, "fault": "slow", "zone": "KR-1"}, "unknown rule keys"),
    ],
)
def test_bad_rules_are_refused_whole(api: Api, rule: dict[str, Any], message: str) -> None:
    """A bad rule answers 400 naming the problem, and no rule of the batch is added."""
    with pytest.raises(ValueError, match=message):
        api.sim.faults({"action": CREATE, "fault": "slow"}, rule)
    assert api.sim.faults() == []


def test_rules_are_shown_and_cleared(api: Api) -> None:
    """GET /_admin/faults and the state show the rules left; DELETE and reset clear them."""
    rule = {"action": CREATE, "fault": "slow", "times": 3}
    api.sim.faults(rule)
    assert api.client.get(f"{api.sim.url}/_admin/faults").json() == {"faults": [rule]}
    assert api.sim.state()["fault_rules"] == [rule]
    assert api.client.delete(f"{api.sim.url}/_admin/faults").json() == {"faults": []}
    api.sim.faults(rule)
    api.sim.reset()
    assert api.sim.faults() == []


# -- the seeded draw ---------------------------------------------------------------------------


def test_faults_repeat_for_a_seed(api: Api) -> None:
    """The same seed and request order give the same faults."""
    api.sim.configure(fail_before=0.5, seed=42)

    def run() -> list[int]:
        return [api.call(CREATE, VALID).status_code for _ in range(12)]

    first = run()
    api.sim.reset()
    assert run() == first
    assert {200, 503} == set(first)


def test_a_rule_does_not_shift_the_seeded_draw(api: Api) -> None:
    """Each valid create takes one draw even when a rule overrides it: the others keep theirs."""
    api.sim.configure(fail_before=0.3, error_500=0.3, seed=42)
    calls = [{**VALID, "serverName": f"web-{i:03d}"} for i in range(1, 13)]
    without = [api.call(CREATE, params).status_code for params in calls]
    api.sim.reset()
    api.sim.faults({"action": CREATE, "serverName": "web-004", "fault": "fail_after"})
    with_rule = [api.call(CREATE, params).status_code for params in calls]
    assert with_rule[3] == 504
    assert with_rule[:3] + with_rule[4:] == without[:3] + without[4:]


def test_invalid_creates_take_no_draw(api: Api) -> None:
    """Only creates that pass validation draw a fault, so refused ones do not shift the run."""
    api.sim.configure(fail_before=0.5, seed=42)
    first = [api.call(CREATE, VALID).status_code for _ in range(6)]
    api.sim.reset()
    second = []
    for _ in range(6):
        api.call(CREATE, {**VALID, "vpcNo": "x"})
        second.append(api.call(CREATE, VALID).status_code)
    assert second == first


def test_every_fault_kind_has_a_fraction(api: Api) -> None:
    """Each fault kind can also be drawn at random, with its own config fraction."""
    config = api.sim.state()["config"]
    assert all(config[kind] == 0.0 for kind in FAULT_KINDS)
    assert set(FAULT_KINDS) == set(api.sim.state()["counters"]["faults"])


# -- the call log ------------------------------------------------------------------------------


def test_calls_are_logged_with_parameters_and_status(api: Api) -> None:
    """GET /_admin/calls lists each call: action, method, merged parameters, status, fault."""
    api.sim.faults({"action": "getServerInstanceList", "fault": "fail_before"})
    api.call(CREATE, VALID)
    api.call("getServerInstanceList", {"regionCode": "JPN"}, method="GET")
    calls = api.sim.calls()
    assert [(c["action"], c["method"], c["status"], c["fault"]) for c in calls] == [
        (CREATE, "POST", 200, None),
        ("getServerInstanceList", "GET", 503, "fail_before"),
    ]
    assert calls[0]["params"] == {"responseFormatType": "json", **VALID}
    assert calls[1]["params"] == {"regionCode": "JPN", "responseFormatType": "json"}
    assert [c["seq"] for c in calls] == [1, 2]


def test_tests_can_assert_what_reached_the_simulator(api: Api) -> None:
    """A test can assert that no create arrived, and that every call about JPN named JPN."""
    assert api.sim.calls(CREATE) == []
    (jpn,) = api.create(**IN_JPN)
    no = jpn["serverInstanceNo"]
    api.ok("getServerInstanceDetail", {"serverInstanceNo": no, "regionCode": "JPN"})
    api.ok("getServerInstanceList", {"serverInstanceNoList.1": no, "regionCode": "JPN"})
    about_jpn = [c for c in api.sim.calls() if c["action"] == CREATE or no in c["params"].values()]
    assert len(about_jpn) == 3
    assert all(c["params"].get("regionCode") == "JPN" for c in about_jpn)
    assert [c["action"] for c in api.sim.calls(CREATE)] == [CREATE]


def test_refused_calls_are_logged_too(api: Api) -> None:
    """Throttled, unauthenticated and unknown calls are logged with the status they got."""
    api.call("getServerInstanceList", secret="wrong")
    api.call("launchRockets")
    api.sim.configure(rate=1.0, burst=1.0)
    api.call("getServerInstanceList")
    api.call("getServerInstanceList")
    assert [c["status"] for c in api.sim.calls()] == [401, 404, 200, 429]


def test_no_key_or_signature_is_ever_logged(api: Api) -> None:
    """The log holds no secret key or signature, even one sent as a parameter by mistake."""
    api.call(
        CREATE, {**VALID, "x-ncp-apigw-signature-v2": "c2lnbmF0dXJl", "secretKey": BASE_SECRET}
    )
    text = api.client.get(f"{api.sim.url}/_admin/calls").text
    assert BASE_SECRET not in text and "c2lnbmF0dXJl" not in text
    assert BASE_ACCESS not in text  # the access key travels in headers, which are not logged


def test_the_call_log_is_bounded(api: Api) -> None:
    """Only the last call_log_size calls are kept; the total counts them all."""
    api.sim.configure(call_log_size=3)
    for i in range(5):
        api.call("getServerInstanceList", {"pageNo": str(i + 1)})
    calls = api.client.get(f"{api.sim.url}/_admin/calls").json()
    assert [c["params"]["pageNo"] for c in calls["calls"]] == ["3", "4", "5"]
    assert calls["total"] == 5
