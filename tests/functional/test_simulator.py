"""The NCP simulator over loopback HTTP: gateway, create validation, lifecycle, lists, admin."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from fleet.ncp.signing import signed_headers
from fleet.simulator import serve
from tests.functional.simkit import (
    ACCESS,
    BASE,
    CLOCK,
    DEMO_VPC,
    NOON_KST_2024,
    SECRET,
    VALID,
    WALL,
    Api,
    api_fixture,  # noqa: F401 (a fixture)
    body_of,
    call,
    server_error,
    server_fixture,  # noqa: F401 (a fixture)
)

# -- gateway -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_signed_request_is_accepted(api: Api, method: str) -> None:
    """A request signed over its raw path and query is answered, by POST or GET."""
    body = api.ok("getServerInstanceList", {"serverName": "a b/c"}, method=method)
    assert body["totalRows"] == 0


def test_request_without_query_is_signed_without_question_mark(api: Api) -> None:
    """With no query string the signed URI is the bare path (no trailing '?')."""
    uri = "/vserver/v2/getServerInstanceList"
    headers = signed_headers("POST", uri, int(WALL() * 1000), ACCESS, SECRET)
    assert api.client.post(api.sim.url + uri, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("names", "status"),
    [
        (("x-ncp-apigw-signature-v2",), 200),
        (("x-ncp-apigw-signature-v1",), 200),  # what the official SDKs send
        (("x-ncp-apigw-signature-v2", "x-ncp-apigw-signature-v1"), 200),
        ((), 401),
    ],
)
def test_signature_header_v1_or_v2(api: Api, names: tuple[str, ...], status: int) -> None:
    """The gateway reads the signature from either header name, and refuses a request with none."""
    uri = "/vserver/v2/getServerInstanceList?responseFormatType=json"
    signed = signed_headers("GET", uri, int(WALL() * 1000), ACCESS, SECRET)
    signature = signed.pop("x-ncp-apigw-signature-v2")
    headers = {**signed, **dict.fromkeys(names, signature)}
    assert api.client.get(api.sim.url + uri, headers=headers).status_code == status


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        ({"secret": "wrong-secret"}, "signature"),
        ({"access": "AKUNKNOWN"}, "access key"),
        ({"skew_ms": -6 * 60 * 1000}, "5 minutes"),
        ({"skew_ms": 6 * 60 * 1000}, "5 minutes"),
    ],
)
def test_bad_credentials_are_rejected(api: Api, options: dict[str, Any], detail: str) -> None:
    """A wrong key or signature, or a timestamp over 5 minutes off, answers 401 errorCode 200."""
    response = api.call("createServerInstances", VALID, **options)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["errorCode"], error["message"]) == ("200", "Authentication Failed")
    assert detail in error["details"]
    assert api.sim.state()["counters"]["auth_failed"] == 1
    assert api.sim.state()["counters"]["created"] == 0


def test_missing_headers_are_rejected(api: Api) -> None:
    """A request without the gateway headers answers 401."""
    response = api.client.post(f"{api.sim.url}/vserver/v2/getServerInstanceList")
    assert response.status_code == 401
    assert response.json()["error"]["errorCode"] == "200"


def test_unknown_action_is_404(api: Api) -> None:
    """An action the simulator does not know answers 404 errorCode 300."""
    response = api.call("launchRockets")
    assert response.status_code == 404
    assert response.json()["error"]["errorCode"] == "300"


def test_throttling_answers_429_and_processes_nothing(api: Api) -> None:
    """An empty bucket answers 429 410 with Retry-After and creates nothing; it refills in time."""
    api.sim.configure(rate=1.0, burst=2.0, retry_after=True)
    for _ in range(2):
        assert api.call("getServerInstanceList").status_code == 200
    response = api.call("createServerInstances", VALID)
    assert response.status_code == 429
    assert response.json() == {
        "error": {"errorCode": "410", "message": "Throttle Limited", "details": ""}
    }
    assert response.headers["retry-after"] == "1"
    counters = api.sim.state()["counters"]
    assert (counters["throttled"], counters["created"]) == (1, 0)
    CLOCK.advance(1.0)
    assert len(api.create()) == 1


# -- createServerInstances ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"vpcNo": ""}, "900001"),
        ({"networkInterfaceList.1.networkInterfaceOrder": ""}, "900001"),
        ({"serverImageProductCode": "SW.VSVR.OS"}, "900003"),
        ({"serverSpecCode": ""}, "900003"),
        ({"serverProductCode": "SVR.VSVR.STAND"}, "900003"),
        ({"serverName": "Web_1"}, "900004"),
        ({"serverName": "1web"}, "900004"),
        ({"serverCreateCount": "21"}, "900002"),
        ({"serverCreateCount": "0"}, "900002"),
        ({"serverCreateCount": "20", "serverCreateStartNo": "990"}, "900002"),
        ({"serverDescription": "가" * 334}, "900002"),
        ({"isProtectServerTermination": "True"}, "900002"),
        ({"vpcNo": "vpc-1"}, "900002"),
        ({"regionCode": "MARS"}, "900005"),
    ],
)
def test_create_validation(api: Api, changes: dict[str, str], code: str) -> None:
    """An invalid create answers 400 with the rule's returnCode and creates nothing."""
    params = {k: v for k, v in {**VALID, **changes}.items() if v != ""}
    assert server_error(api.call("createServerInstances", params)) == code
    assert api.sim.state()["counters"]["created"] == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"serverSpecCode": ""}, "serverImageNo needs serverSpecCode"),
        ({"serverProductCode": "SVR.X"}, "serverSpecCode and serverProductCode exclude each"),
        (
            {"serverImageNo": "", "serverImageProductCode": "SW.X", "serverProductCode": "SVR.X"},
            "serverImageProductCode does not take serverSpecCode",
        ),
    ],
)
def test_image_spec_rules_come_from_the_parameter_table(
    api: Api, changes: dict[str, str], message: str
) -> None:
    """The image/spec pair rules are the parameter table's IMAGE_RULES and SPEC_CHOICES."""
    params = {k: v for k, v in {**VALID, **changes}.items() if v != ""}
    response = api.call("createServerInstances", params)
    assert server_error(response) == "900003"
    assert message in response.json()["responseError"]["returnMessage"]


def test_create_success_body(api: Api) -> None:
    """A create answers the reference body: success codes, uuid requestId, INIT servers."""
    body = api.ok("createServerInstances", {**VALID, "serverDescription": "설명"})
    assert (body["returnCode"], body["returnMessage"], body["totalRows"]) == ("0", "success", 1)
    uuid.UUID(body["requestId"], version=4)
    (server,) = body["serverInstanceList"]
    assert server["serverInstanceNo"].isdigit()
    assert server["serverName"] == "web"
    assert server["serverDescription"] == "설명"
    assert server["serverInstanceStatus"]["code"] == "INIT"
    assert server["serverInstanceOperation"]["code"] == "NULL"
    assert server["serverInstanceStatusName"] == "init"
    assert (server["vpcNo"], server["subnetNo"]) == ("1001", "2002")
    assert (server["serverImageNo"], server["serverSpecCode"]) == ("16187005", "s2-g2-s50")
    assert server["isProtectServerTermination"] is False
    assert (server["regionCode"], server["zoneCode"]) == ("KR", "KR-1")
    for key in ("cpuCount", "memorySize", "hypervisorType"):
        assert key in server


def test_create_date_is_ncp_format_from_the_wall_clock(api: Api) -> None:
    """The createDate and uptime are KST to the second, from the wall clock at the commit."""
    WALL.now = NOON_KST_2024 + 0.75
    (server,) = api.create()
    assert server["createDate"] == server["uptime"] == "2024-01-01T12:00:00+0900"
    listed = api.ok("getServerInstanceList")["serverInstanceList"][0]
    assert listed["createDate"] == "2024-01-01T12:00:00+0900"


def test_create_many_and_duplicate_names(api: Api) -> None:
    """A serverCreateCount makes that many servers with new increasing numbers; names may repeat."""
    first = api.create(serverCreateCount="3")
    second = api.create(serverCreateCount="3")
    numbers = [int(s["serverInstanceNo"]) for s in first + second]
    assert numbers == sorted(set(numbers))
    assert [s["serverName"] for s in first] == [s["serverName"] for s in second]
    unnamed = {k: v for k, v in VALID.items() if k != "serverName"}
    assert api.ok("createServerInstances", unnamed)["serverInstanceList"][0]["serverName"]
    assert api.sim.state()["counters"]["created"] == 7


# -- lifecycle and control ---------------------------------------------------------------------


def test_lifecycle_and_control_rules(api: Api) -> None:
    """INIT -> CREAT/SETUP -> RUN; SETUP refuses control (1100031); stop, protect, terminate."""
    (server,) = api.create()
    no = server["serverInstanceNo"]
    nos = {"serverInstanceNoList.1": no}
    assert api.status(no) == ("INIT", "NULL")
    CLOCK.advance(BASE.create_seconds)
    assert api.status(no) == ("CREAT", "SETUP")
    assert server_error(api.call("stopServerInstances", nos)) == "1100031"
    CLOCK.advance(BASE.setup_seconds)
    assert api.status(no) == ("RUN", "NULL")
    assert server_error(api.call("terminateServerInstances", nos)) == "900010"

    stopped = api.ok("stopServerInstances", nos)
    assert stopped["serverInstanceList"][0]["serverInstanceOperation"]["code"] == "SHTDN"
    assert api.status(no) == ("RUN", "SHTDN")
    CLOCK.advance(BASE.stop_seconds)
    assert api.status(no) == ("NSTOP", "NULL")

    api.ok("startServerInstances", nos)
    assert api.status(no) == ("NSTOP", "START")
    CLOCK.advance(BASE.start_seconds)
    assert api.status(no) == ("RUN", "NULL")
    api.ok("stopServerInstances", nos)
    CLOCK.advance(BASE.stop_seconds)

    protect = {"serverInstanceNo": no, "isProtectServerTermination": "true"}
    api.ok("setProtectServerTermination", protect)
    assert server_error(api.call("terminateServerInstances", nos)) == "900011"
    api.ok("setProtectServerTermination", {**protect, "isProtectServerTermination": "false"})
    api.ok("terminateServerInstances", nos)
    assert api.status(no) == ("NSTOP", "TERMT")
    CLOCK.advance(BASE.terminate_seconds)
    assert api.ok("getServerInstanceList", nos)["totalRows"] == 0
    detail = api.call("getServerInstanceDetail", {"serverInstanceNo": no})
    assert server_error(detail) == "900012"
    assert server_error(api.call("stopServerInstances", nos)) == "900012"
    assert api.sim.state()["servers"] == []


# -- getServerInstanceList ---------------------------------------------------------------------


def test_list_paging_and_filters(api: Api) -> None:
    """Pages of page_size in instance order, totalRows of all matches, substring name filter."""
    web = api.create(serverCreateCount="20")
    api.create(serverName="dbs", serverCreateCount="5")
    api.create(serverName="myweb")
    api.create(**DEMO_VPC, serverName="other")

    def page(**params: str) -> dict[str, Any]:
        result: dict[str, Any] = api.ok("getServerInstanceList", params)
        return result

    seen: list[str] = []
    for page_no in (1, 2, 3):
        result = page(serverName="web", vpcNo="1001", pageNo=str(page_no))
        assert result["totalRows"] == 21  # web-001..web-020 and, as a substring, myweb
        seen += [s["serverName"] for s in result["serverInstanceList"]]
    assert seen == [s["serverName"] for s in web] + ["myweb"]
    assert len(page(pageSize="1000")["serverInstanceList"]) == BASE.max_page_size
    assert page(pageNo="9")["serverInstanceList"] == []
    assert page(vpcNo="75001")["totalRows"] == 1
    picked = page(**{"serverInstanceNoList.1": web[3]["serverInstanceNo"]})
    assert [s["serverName"] for s in picked["serverInstanceList"]] == [web[3]["serverName"]]
    assert page(serverInstanceStatusCode="INIT")["totalRows"] == 27
    assert page(serverInstanceStatusCode="RUN")["totalRows"] == 0
    assert server_error(api.call("getServerInstanceList", {"pageNo": "0"})) == "900002"


def test_account_server_limit_refuses_creates_beyond_it(api: Api) -> None:
    """With max_servers set, a create past the limit answers 400 1015009 and creates nothing."""
    api.sim.configure(max_servers=2)
    api.create(serverName="web-a")
    api.create(serverName="web-b")
    response = api.call("createServerInstances", {**VALID, "serverName": "web-c"})
    assert server_error(response) == "1015009"
    assert api.sim.state()["counters"]["created"] == 2


# -- admin and running -------------------------------------------------------------------------


def test_admin_state_config_and_reset(api: Api) -> None:
    """The admin state counts calls and lists servers; config validates; reset clears both."""
    api.create()
    api.call("getServerInstanceList")
    state = api.sim.state()
    assert state["counters"]["requests"] == 2
    assert state["counters"]["by_action"] == {
        "createServerInstances": 1,
        "getServerInstanceList": 1,
    }
    (server,) = state["servers"]
    assert {
        "serverInstanceNo",
        "serverName",
        "regionCode",
        "zoneCode",
        "status",
        "operation",
        "vpcNo",
        "subnetNo",
        "isProtectServerTermination",
        "created_at",
        "visible",
    } <= server.keys()
    assert "secret_key" not in state["config"]
    assert api.sim.configure(latency=0.01)["latency"] == 0.01
    with pytest.raises(ValueError, match="run-time"):
        api.sim.configure(secret_key="x")
    with pytest.raises(ValueError, match="sum"):
        api.sim.configure(fail_before=0.8, fail_after=0.8)
    api.sim.reset()
    state = api.sim.state()
    assert (state["counters"]["requests"], state["servers"]) == (0, [])


def test_admin_answers_loopback_only_and_404s_unknown_endpoints(api: Api) -> None:
    """An unknown admin endpoint answers 404, and a bad JSON body 400, neither counted as calls."""
    assert api.client.get(f"{api.sim.url}/_admin/nothing").status_code == 404
    assert api.client.post(f"{api.sim.url}/_admin/config", content=b"[1").status_code == 400
    assert api.sim.state()["counters"]["requests"] == 0


def test_serve_refuses_a_public_host() -> None:
    """serve() listens on loopback only."""
    with pytest.raises(ValueError, match="loopback"):
        serve(BASE, host="0.0.0.0")  # noqa: S104 (the address being refused)


def test_secret_not_in_repr() -> None:
    """The config's repr never shows the secret key."""
    assert SECRET not in repr(BASE)


@pytest.mark.slow
def test_process_variant_serves_and_prints_keys() -> None:
    """The child-process simulator answers signed calls and printed its URL, keys and exports."""
    from fleet.simulator import SimulatorProcess

    process = SimulatorProcess(BASE)
    with process as child, httpx.Client(timeout=5) as client:
        response = call(client, child, "createServerInstances", VALID, wall=time.time)
        assert len(body_of(response, "createServerInstances")["serverInstanceList"]) == 1
        assert child.state()["counters"]["created"] == 1
        assert child.state()["config"] == BASE.public()
    export = process.banner[-1]
    assert export.startswith(f"export NCLOUD_API_GW={child.url} ")
    assert f"NCLOUD_ACCESS_KEY={ACCESS}" in export
    assert f"NCLOUD_SECRET_KEY={SECRET}" in export
    assert export.endswith(" FLEET_LEDGER=.fleet/rehearsal.db")
