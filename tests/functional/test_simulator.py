"""The NCP simulator over real loopback HTTP: gateway, Server API, lifecycle, faults and admin."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fleet.signing import signed_headers
from fleet.simulator import (
    ADMIN_FIELDS,
    RunningSimulator,
    SimulatorConfig,
    running_simulator,
    serve,
)

ACCESS = "AKSIMTEST000000000001"
SECRET = "SKsimtest0123456789abcdefghijklmnopqrst"
BASE = SimulatorConfig(
    access_key=ACCESS,
    secret_key=SECRET,
    create_seconds=10,
    setup_seconds=20,
    stop_seconds=5,
    start_seconds=5,
    terminate_seconds=5,
    page_size=10,
    max_page_size=15,
    slow_seconds=5,
    seed=7,
)
VALID: dict[str, str] = {
    "vpcNo": "1001",
    "subnetNo": "2002",
    "networkInterfaceList.1.networkInterfaceOrder": "0",
    "networkInterfaceList.1.accessControlGroupNoList.1": "111",
    "serverImageNo": "16187005",
    "serverSpecCode": "s2-g2-s50",
    "serverName": "web",
}


class FakeClock:
    """A monotonic clock the tests step by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward."""
        self.now += seconds


CLOCK = FakeClock()


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSimulator]:
    """Run one threaded simulator on the fake clock for the whole module."""
    with running_simulator(BASE, clock=CLOCK) as simulator:
        yield simulator


@pytest.fixture
def sim(server: RunningSimulator) -> RunningSimulator:
    """Give each test the module's simulator with the base settings and no servers."""
    server.configure(**{name: getattr(BASE, name) for name in ADMIN_FIELDS})
    server.reset()
    return server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """Give each test a fresh HTTP client."""
    with httpx.Client(timeout=5) as http:
        yield http


def call(
    client: httpx.Client,
    sim: RunningSimulator,
    action: str,
    params: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    access: str = ACCESS,
    secret: str = SECRET,
    skew_ms: int = 0,
    timeout: float | None = None,
) -> httpx.Response:
    """Send one signed call: POST puts params in a form body, GET in the query string."""
    params = dict(params or {})
    query = "responseFormatType=json"
    if method == "GET":
        query = urlencode({**params, "responseFormatType": "json"})
    uri = f"/vserver/v2/{action}?{query}"
    headers = signed_headers(method, uri, int(time.time() * 1000) + skew_ms, access, secret)
    content = None
    if method == "POST":
        headers["content-type"] = "application/x-www-form-urlencoded"
        content = urlencode(params)
    return client.request(
        method,
        sim.url + uri,
        headers=headers,
        content=content,
        timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
    )


def body_of(response: httpx.Response, action: str) -> dict[str, Any]:
    """Return the ``<action>Response`` object of a successful answer."""
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()[f"{action}Response"]
    return result


def create(client: httpx.Client, sim: RunningSimulator, **changes: str) -> list[dict[str, Any]]:
    """Create servers from VALID with changes, and return the serverInstanceList."""
    body = body_of(
        call(client, sim, "createServerInstances", {**VALID, **changes}), "createServerInstances"
    )
    servers: list[dict[str, Any]] = body["serverInstanceList"]
    return servers


def status_of(client: httpx.Client, sim: RunningSimulator, no: str) -> tuple[str, str]:
    """Return (status, operation) of one server, read with getServerInstanceDetail."""
    body = body_of(
        call(client, sim, "getServerInstanceDetail", {"serverInstanceNo": no}),
        "getServerInstanceDetail",
    )
    server = body["serverInstanceList"][0]
    return server["serverInstanceStatus"]["code"], server["serverInstanceOperation"]["code"]


def server_error(response: httpx.Response) -> str:
    """Return the returnCode of a Server API error answer."""
    assert response.status_code == 400, response.text
    code: str = response.json()["responseError"]["returnCode"]
    return code


# -- gateway -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_signed_request_is_accepted(
    sim: RunningSimulator, client: httpx.Client, method: str
) -> None:
    """A request signed over its raw path and query is answered, by POST or GET."""
    response = call(client, sim, "getServerInstanceList", {"serverName": "a b/c"}, method=method)
    assert body_of(response, "getServerInstanceList")["totalRows"] == 0


def test_request_without_query_is_signed_without_question_mark(
    sim: RunningSimulator, client: httpx.Client
) -> None:
    """With no query string the signed URI is the bare path (no trailing '?')."""
    uri = "/vserver/v2/getServerInstanceList"
    headers = signed_headers("POST", uri, int(time.time() * 1000), ACCESS, SECRET)
    response = client.post(sim.url + uri, headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"secret": "wrong-secret"}, "signature"),
        ({"access": "AKUNKNOWN"}, "access key"),
        ({"skew_ms": -6 * 60 * 1000}, "5 minutes"),
        ({"skew_ms": 6 * 60 * 1000}, "5 minutes"),
    ],
)
def test_bad_credentials_are_rejected(
    sim: RunningSimulator, client: httpx.Client, kwargs: dict[str, Any], detail: str
) -> None:
    """A wrong key or signature, or a timestamp over 5 minutes off, answers 401 errorCode 200."""
    response = call(client, sim, "createServerInstances", VALID, **kwargs)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["errorCode"], error["message"]) == ("200", "Authentication Failed")
    assert detail in error["details"]
    assert sim.state()["counters"]["auth_failed"] == 1
    assert sim.state()["counters"]["created"] == 0


def test_missing_headers_are_rejected(sim: RunningSimulator, client: httpx.Client) -> None:
    """A request without the gateway headers answers 401."""
    response = client.post(f"{sim.url}/vserver/v2/getServerInstanceList")
    assert response.status_code == 401
    assert response.json()["error"]["errorCode"] == "200"


def test_unknown_action_is_404(sim: RunningSimulator, client: httpx.Client) -> None:
    """An action the simulator does not know answers 404 errorCode 300."""
    response = call(client, sim, "launchRockets")
    assert response.status_code == 404
    assert response.json()["error"]["errorCode"] == "300"


def test_throttling_answers_429_and_processes_nothing(
    sim: RunningSimulator, client: httpx.Client
) -> None:
    """An empty bucket answers 429 410 with Retry-After and creates nothing; it refills in time."""
    sim.configure(rate=1.0, burst=2.0, retry_after=True)
    for _ in range(2):
        assert call(client, sim, "getServerInstanceList").status_code == 200
    response = call(client, sim, "createServerInstances", VALID)
    assert response.status_code == 429
    assert response.json() == {
        "error": {"errorCode": "410", "message": "Throttle Limited", "details": ""}
    }
    assert response.headers["retry-after"] == "1"
    counters = sim.state()["counters"]
    assert (counters["throttled"], counters["created"]) == (1, 0)
    CLOCK.advance(1.0)
    assert len(create(client, sim)) == 1


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
    ],
)
def test_create_validation(
    sim: RunningSimulator, client: httpx.Client, changes: dict[str, str], code: str
) -> None:
    """An invalid create answers 400 with the rule's returnCode and creates nothing."""
    params = {k: v for k, v in {**VALID, **changes}.items() if v != ""}
    assert server_error(call(client, sim, "createServerInstances", params)) == code
    assert sim.state()["counters"]["created"] == 0


def test_create_success_body(sim: RunningSimulator, client: httpx.Client) -> None:
    """A create answers the reference body: success codes, uuid requestId, INIT servers."""
    response = call(client, sim, "createServerInstances", {**VALID, "serverDescription": "설명"})
    body = body_of(response, "createServerInstances")
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
    assert server["createDate"].endswith("+0900")
    for key in ("zoneCode", "regionCode", "cpuCount", "memorySize", "hypervisorType"):
        assert key in server


def test_create_many_and_duplicate_names(sim: RunningSimulator, client: httpx.Client) -> None:
    """A serverCreateCount makes that many servers with new increasing numbers; names may repeat."""
    first = create(client, sim, serverCreateCount="3")
    second = create(client, sim, serverCreateCount="3")
    numbers = [int(s["serverInstanceNo"]) for s in first + second]
    assert numbers == sorted(set(numbers))
    assert [s["serverName"] for s in first] == [s["serverName"] for s in second]
    unnamed = {k: v for k, v in VALID.items() if k != "serverName"}
    response = call(client, sim, "createServerInstances", unnamed)
    assert body_of(response, "createServerInstances")["serverInstanceList"][0]["serverName"]
    assert sim.state()["counters"]["created"] == 7


# -- lifecycle and control ---------------------------------------------------------------------


def test_lifecycle_and_control_rules(sim: RunningSimulator, client: httpx.Client) -> None:
    """INIT -> CREAT/SETUP -> RUN; SETUP refuses control (1100031); stop, protect, terminate."""
    (server,) = create(client, sim)
    no = server["serverInstanceNo"]
    nos = {"serverInstanceNoList.1": no}
    assert status_of(client, sim, no) == ("INIT", "NULL")
    CLOCK.advance(BASE.create_seconds)
    assert status_of(client, sim, no) == ("CREAT", "SETUP")
    assert server_error(call(client, sim, "stopServerInstances", nos)) == "1100031"
    CLOCK.advance(BASE.setup_seconds)
    assert status_of(client, sim, no) == ("RUN", "NULL")
    assert server_error(call(client, sim, "terminateServerInstances", nos)) == "900010"

    stopped = body_of(call(client, sim, "stopServerInstances", nos), "stopServerInstances")
    assert stopped["serverInstanceList"][0]["serverInstanceOperation"]["code"] == "SHTDN"
    assert status_of(client, sim, no) == ("RUN", "SHTDN")
    CLOCK.advance(BASE.stop_seconds)
    assert status_of(client, sim, no) == ("NSTOP", "NULL")

    body_of(call(client, sim, "startServerInstances", nos), "startServerInstances")
    assert status_of(client, sim, no) == ("NSTOP", "START")
    CLOCK.advance(BASE.start_seconds)
    assert status_of(client, sim, no) == ("RUN", "NULL")
    body_of(call(client, sim, "stopServerInstances", nos), "stopServerInstances")
    CLOCK.advance(BASE.stop_seconds)

    protect = {"serverInstanceNo": no, "isProtectServerTermination": "true"}
    body_of(
        call(client, sim, "setProtectServerTermination", protect), "setProtectServerTermination"
    )
    assert server_error(call(client, sim, "terminateServerInstances", nos)) == "900011"
    protect["isProtectServerTermination"] = "false"
    call(client, sim, "setProtectServerTermination", protect)
    body_of(call(client, sim, "terminateServerInstances", nos), "terminateServerInstances")
    assert status_of(client, sim, no) == ("NSTOP", "TERMT")
    CLOCK.advance(BASE.terminate_seconds)
    listed = call(client, sim, "getServerInstanceList", nos)
    assert body_of(listed, "getServerInstanceList")["totalRows"] == 0
    detail = call(client, sim, "getServerInstanceDetail", {"serverInstanceNo": no})
    assert server_error(detail) == "900012"
    assert server_error(call(client, sim, "stopServerInstances", nos)) == "900012"


# -- getServerInstanceList ---------------------------------------------------------------------


def test_list_paging_and_filters(sim: RunningSimulator, client: httpx.Client) -> None:
    """Pages of page_size in instance order, totalRows of all matches, substring name filter."""
    web = create(client, sim, serverCreateCount="20")
    create(client, sim, serverName="dbs", serverCreateCount="5")
    create(client, sim, serverName="myweb")
    create(client, sim, vpcNo="999", serverName="other")

    def page(**params: str) -> dict[str, Any]:
        return body_of(call(client, sim, "getServerInstanceList", params), "getServerInstanceList")

    seen: list[str] = []
    for page_no in (1, 2, 3):
        result = page(serverName="web", vpcNo="1001", pageNo=str(page_no))
        assert result["totalRows"] == 21  # web-001..web-020 and, as a substring, myweb
        seen += [s["serverName"] for s in result["serverInstanceList"]]
    assert seen == [s["serverName"] for s in web] + ["myweb"]
    assert len(page(pageSize="1000")["serverInstanceList"]) == BASE.max_page_size
    assert page(pageNo="9")["serverInstanceList"] == []
    assert page(vpcNo="999")["totalRows"] == 1
    picked = page(**{"serverInstanceNoList.1": web[3]["serverInstanceNo"]})
    assert [s["serverName"] for s in picked["serverInstanceList"]] == [web[3]["serverName"]]
    assert page(serverInstanceStatusCode="INIT")["totalRows"] == 27
    assert page(serverInstanceStatusCode="RUN")["totalRows"] == 0
    assert server_error(call(client, sim, "getServerInstanceList", {"pageNo": "0"})) == "900002"


def test_account_server_limit_refuses_creates_beyond_it(
    sim: RunningSimulator, client: httpx.Client
) -> None:
    """With max_servers set, a create past the limit answers 400 1015009 and creates nothing."""
    sim.configure(max_servers=2)
    create(client, sim, serverName="web-a")
    create(client, sim, serverName="web-b")
    response = call(client, sim, "createServerInstances", {**VALID, "serverName": "web-c"})
    assert response.status_code == 400
    assert server_error(response) == "1015009"
    assert sim.state()["counters"]["created"] == 2


# -- faults ------------------------------------------------------------------------------------


def test_fail_before_creates_nothing(sim: RunningSimulator, client: httpx.Client) -> None:
    """A fail_before fault answers 503 errorCode 500 and creates no server."""
    sim.configure(fail_before=1.0)
    response = call(client, sim, "createServerInstances", VALID)
    assert response.status_code == 503
    assert response.json() == {"error": {"errorCode": "500", "message": "Endpoint Error"}}
    state = sim.state()
    assert (state["counters"]["created"], state["servers"]) == (0, [])
    assert state["counters"]["faults"]["fail_before"] == 1


def test_fail_after_creates_then_answers_504(sim: RunningSimulator, client: httpx.Client) -> None:
    """A fail_after fault creates the server, then answers 504 errorCode 510."""
    sim.configure(fail_after=1.0)
    response = call(client, sim, "createServerInstances", VALID)
    assert response.status_code == 504
    assert response.json() == {"error": {"errorCode": "510", "message": "Endpoint Timeout"}}
    state = sim.state()
    assert [s["serverName"] for s in state["servers"]] == ["web"]
    assert state["counters"]["faults"]["fail_after"] == 1


def test_drop_after_creates_then_drops_the_connection(
    sim: RunningSimulator, client: httpx.Client
) -> None:
    """A drop_after fault creates the server; the client sees a transport error, not a status."""
    sim.configure(drop_after=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        call(client, sim, "createServerInstances", VALID)
    state = sim.state()
    assert [s["serverName"] for s in state["servers"]] == ["web"]
    assert state["counters"]["faults"]["drop_after"] == 1


def test_slow_creates_then_times_the_client_out(
    sim: RunningSimulator, client: httpx.Client
) -> None:
    """A slow create makes the server but answers too late: the client reads a timeout."""
    sim.configure(slow=1.0)
    with pytest.raises(httpx.ReadTimeout):
        call(client, sim, "createServerInstances", VALID, timeout=0.3)
    state = sim.state()
    assert [s["serverName"] for s in state["servers"]] == ["web"]
    assert state["counters"]["faults"]["slow"] == 1


def test_faults_repeat_for_a_seed(sim: RunningSimulator, client: httpx.Client) -> None:
    """The same seed and request order give the same faults."""
    sim.configure(fail_before=0.5, seed=42)

    def run() -> list[int]:
        return [call(client, sim, "createServerInstances", VALID).status_code for _ in range(12)]

    first = run()
    sim.reset()
    assert run() == first
    assert {200, 503} == set(first)


# -- admin and running -------------------------------------------------------------------------


def test_admin_state_config_and_reset(sim: RunningSimulator, client: httpx.Client) -> None:
    """The admin state counts calls and lists servers; config validates; reset clears both."""
    create(client, sim)
    call(client, sim, "getServerInstanceList")
    state = sim.state()
    assert state["counters"]["requests"] == 2
    assert state["counters"]["by_action"] == {
        "createServerInstances": 1,
        "getServerInstanceList": 1,
    }
    (server,) = state["servers"]
    assert {
        "serverInstanceNo",
        "serverName",
        "status",
        "operation",
        "vpcNo",
        "subnetNo",
        "isProtectServerTermination",
        "created_at",
    } <= server.keys()
    assert "secret_key" not in state["config"]
    assert sim.configure(latency=0.01)["latency"] == 0.01
    with pytest.raises(ValueError, match="run-time"):
        sim.configure(secret_key="x")
    with pytest.raises(ValueError, match="sum"):
        sim.configure(fail_before=0.8, fail_after=0.8)
    sim.reset()
    state = sim.state()
    assert (state["counters"]["requests"], state["servers"]) == (0, [])


def test_serve_refuses_a_public_host() -> None:
    """serve() listens on loopback only."""
    with pytest.raises(ValueError, match="loopback"):
        serve(BASE, host="0.0.0.0")  # noqa: S104 (the address being refused)


def test_secret_not_in_repr() -> None:
    """The config's repr never shows the secret key."""
    assert SECRET not in repr(BASE)


@pytest.mark.slow
def test_process_variant_serves_and_prints_keys(client: httpx.Client) -> None:
    """The child-process simulator answers signed calls and printed its URL, keys and exports."""
    from fleet.simulator import SimulatorProcess

    process = SimulatorProcess(BASE)
    with process as child:
        assert len(create(client, child)) == 1
        assert child.state()["counters"]["created"] == 1
    export = process.banner[-1]
    assert export.startswith(f"export NCLOUD_API_GW={child.url} ")
    assert f"NCLOUD_ACCESS_KEY={ACCESS}" in export
    assert f"NCLOUD_SECRET_KEY={SECRET}" in export
