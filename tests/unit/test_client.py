"""The NCP client over a fake transport: request shape, signing, error parsing, retry rules."""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from fleet.config import Credentials
from fleet.errors import AmbiguousError, PermanentError, RetryableError, ThrottledError
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.ncp.ratelimit import AdaptiveRateLimiter
from fleet.ncp.signing import sign
from tests.conftest import ACCESS, SECRET, FakeClock

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]

CREATED = {
    "createServerInstancesResponse": {
        "requestId": "rid-ok",
        "returnCode": "0",
        "returnMessage": "success",
        "totalRows": 1,
        "serverInstanceList": [
            {
                "serverInstanceNo": "1001",
                "serverName": "web-001",
                "serverInstanceStatus": {"code": "INIT"},
                "serverInstanceOperation": {"code": "NULL"},
                "vpcNo": "75001",
            }
        ],
    }
}
THROTTLED = httpx.Response(429, json={"error": {"errorCode": "410", "message": "Throttle Limited"}})
ENDPOINT_ERROR = httpx.Response(
    503, json={"error": {"errorCode": "500", "message": "Endpoint Error"}}
)
TIMEOUT_504 = httpx.Response(
    504, json={"error": {"errorCode": "510", "message": "Endpoint Timeout"}}
)


def make_client(
    clock: FakeClock, handler: Handler, *, limiter: AdaptiveRateLimiter | None = None
) -> NcpClient:
    wall = iter(range(1_700_000_000, 1_800_000_000))  # one second later on every read
    return NcpClient(
        Credentials(ACCESS, SECRET, "test"),
        "https://ncloud.apigw.ntruss.com",
        transport=httpx.MockTransport(handler),
        limiter=limiter,
        retry=RetryPolicy(max_attempts=4, base=0.5, cap=4.0, deadline=60.0),
        wall_clock=lambda: float(next(wall)),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),  # the jitter too: the same back-offs on every run
    )


def script(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that plays the answers in order, keeping each request it saw."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


async def test_request_is_a_signed_form_post_asking_for_json(clock: FakeClock) -> None:
    """The call goes as POST .../action?responseFormatType=json, form body, valid signature."""
    handler, seen = script(httpx.Response(200, json=CREATED))
    async with make_client(clock, handler) as client:
        result = await client.create_server(
            [("serverName", "web-001"), ("networkInterfaceList.1.accessControlGroupNoList.1", "9")]
        )
    (req,) = seen
    assert req.method == "POST"
    assert req.url.raw_path == b"/vserver/v2/createServerInstances?responseFormatType=json"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.headers["user-agent"].startswith("fleet/")  # who is calling, in NCP's logs
    assert parse_qsl(req.content.decode()) == [
        ("serverName", "web-001"),
        ("networkInterfaceList.1.accessControlGroupNoList.1", "9"),
    ]
    ts = int(req.headers["x-ncp-apigw-timestamp"])
    uri = req.url.raw_path.decode()
    assert req.headers["x-ncp-apigw-signature-v2"] == sign("POST", uri, ts, ACCESS, SECRET)
    assert result.request_id == "rid-ok"
    assert result.servers[0].instance_no == "1001" and result.servers[0].status == "INIT"


async def test_not_processed_errors_are_retried_and_signed_anew(clock: FakeClock) -> None:
    """503 Endpoint Error and a connect error are sent again, each with a fresh signature."""
    handler, seen = script(
        ENDPOINT_ERROR, httpx.ConnectError("refused"), httpx.Response(200, json=CREATED)
    )
    async with make_client(clock, handler) as client:
        result = await client.create_server([("serverName", "web-001")])
    assert result.servers[0].instance_no == "1001"
    assert len(seen) == 3
    stamps = {r.headers["x-ncp-apigw-timestamp"] for r in seen}
    signatures = {r.headers["x-ncp-apigw-signature-v2"] for r in seen}
    assert len(stamps) == 3 and len(signatures) == 3
    assert len(clock.slept) == 2 and all(0 <= s <= 4.0 for s in clock.slept)


@pytest.mark.parametrize(
    "answer",
    [
        TIMEOUT_504,
        httpx.Response(500, json={"error": {"errorCode": "900", "message": "Unexpected Error"}}),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
async def test_ambiguous_create_failure_is_not_retried(
    clock: FakeClock, answer: httpx.Response | Exception
) -> None:
    """A create that may have gone through is raised after one call, for the caller to look."""
    handler, seen = script(answer, httpx.Response(200, json=CREATED))
    async with make_client(clock, handler) as client:
        with pytest.raises(AmbiguousError):
            await client.create_server([("serverName", "web-001")])
    assert len(seen) == 1


async def test_ambiguous_read_is_retried(clock: FakeClock) -> None:
    """A look-up changes nothing, so a timeout on it is simply sent again."""
    page = {"getServerInstanceListResponse": {"totalRows": 0, "serverInstanceList": []}}
    handler, seen = script(httpx.ReadTimeout("slow"), httpx.Response(200, json=page))
    async with make_client(clock, handler) as client:
        assert await client.list_servers(vpc_no="1") == []
    assert len(seen) == 2


async def test_throttle_slows_the_limiter_and_honours_retry_after(clock: FakeClock) -> None:
    """A 429 410 cuts the limiter's rate, and Retry-After sets the wait before the retry."""
    throttled = httpx.Response(
        429,
        headers={"Retry-After": "3"},
        json={"error": {"errorCode": "410", "message": "Throttle Limited"}},
    )
    handler, seen = script(throttled, httpx.Response(200, json=CREATED))
    limiter = AdaptiveRateLimiter(50, burst=5, clock=clock, sleep=clock.sleep)
    async with make_client(clock, handler, limiter=limiter) as client:
        await client.create_server([("serverName", "web-001")])
        assert client.stats.throttled == 1
    assert limiter.stats.throttled == 1 and limiter.stats.decreases == 1
    assert 3.0 in clock.slept
    assert len(seen) == 2


async def test_throttling_has_its_own_larger_budget(clock: FakeClock) -> None:
    """Throttles do not use up the 4 attempts kept for errors; the call's deadline ends them."""
    handler, seen = script(THROTTLED)
    start = clock.now
    client = make_client(clock, handler)
    client.retry = RetryPolicy(max_attempts=4, max_throttled=1000, base=0.5, cap=4.0, deadline=60)
    async with client:
        with pytest.raises(ThrottledError):
            await client.create_server([("serverName", "web-001")])
    assert len(seen) > 4  # far more throttles than the 4 attempts errors get
    assert 60.0 <= clock.now - start < 60.0 + 4.0  # stopped by the 60 s deadline


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (
            httpx.Response(
                400,
                json={"responseError": {"returnCode": "1015009", "returnMessage": "limit"}},
            ),
            "1015009",
            "limit",
        ),
        (
            httpx.Response(429, json={"error": {"errorCode": "400", "message": "Quota Exceeded"}}),
            "400",
            "Quota Exceeded",
        ),
        (
            httpx.Response(
                401,
                json={
                    "error": {
                        "errorCode": "200",
                        "message": "Authentication Failed",
                        "details": "x",
                    }
                },
            ),
            "200",
            "Authentication Failed: x",
        ),
        (
            httpx.Response(
                200,
                json={"responseError": {"returnCode": "1413", "returnMessage": "mismatch"}},
            ),
            "1413",
            "mismatch",
        ),
    ],
)
async def test_permanent_errors_raise_at_once_with_code_and_message(
    clock: FakeClock, answer: httpx.Response, code: str, message: str
) -> None:
    """A refusal NCP would repeat is raised after one call, carrying NCP's code and message."""
    handler, seen = script(answer)
    async with make_client(clock, handler) as client:
        with pytest.raises(PermanentError) as caught:
            await client.create_server([("serverName", "web-001")])
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.status == answer.status_code
    assert len(seen) == 1


async def test_retries_run_out_with_our_own_error_not_tenacitys(clock: FakeClock) -> None:
    """When attempts run out the last NCP error is raised (a RetryError would not pickle)."""
    handler, seen = script(ENDPOINT_ERROR)
    async with make_client(clock, handler) as client:
        with pytest.raises(RetryableError) as caught:
            await client.create_server([("serverName", "web-001")])
    assert len(seen) == 4
    pickle.loads(pickle.dumps(caught.value))


async def test_unreadable_gateway_page_is_an_error_with_its_text(clock: FakeClock) -> None:
    """An HTML 502 from a proxy is an ambiguous error quoting the page, not a crash."""
    handler, _ = script(httpx.Response(502, text="<html>Bad Gateway</html>"))
    async with make_client(clock, handler) as client:
        with pytest.raises(AmbiguousError, match="Bad Gateway"):
            await client.create_server([("serverName", "web-001")])


async def test_list_reads_every_page_and_find_compares_names_exactly(clock: FakeClock) -> None:
    """Paging continues until totalRows; a substring match from NCP is not taken for the name."""
    names = ["web-1", "web-10", "web-11", "web-1x", "web-1"]

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        page, size = int(form["pageNo"]), int(form["pageSize"])
        size = 2  # the server ignores the asked size, as a small default page would
        items = [
            {"serverInstanceNo": str(100 + i), "serverName": n}
            for i, n in enumerate(names)
            if form.get("serverName", "") in n
        ]
        body = {
            "getServerInstanceListResponse": {
                "totalRows": len(items),
                "serverInstanceList": items[(page - 1) * size : page * size],
            }
        }
        return httpx.Response(200, content=json.dumps(body))

    async with make_client(clock, handler) as client:
        everything = await client.list_servers()
        exact = await client.find_by_name("web-1")
    assert [s.instance_no for s in everything] == ["100", "101", "102", "103", "104"]
    assert [s.instance_no for s in exact] == ["100", "104"]


async def test_secret_never_shows(clock: FakeClock) -> None:
    """Neither the client's nor the credentials' repr or str shows the secret key."""
    handler, _ = script(THROTTLED)
    client = make_client(clock, handler)
    creds = Credentials(ACCESS, SECRET, "test")
    for text in (repr(client), str(client), repr(creds), str(creds)):
        assert SECRET not in text
    assert ACCESS in repr(creds)
    await client.aclose()


async def test_a_gateway_path_prefix_is_sent_and_signed_once(clock: FakeClock) -> None:
    """With NCLOUD_API_GW carrying a path, that path leads the request and its signature."""
    handler, seen = script(httpx.Response(200, json=CREATED))
    client = NcpClient(
        Credentials(ACCESS, SECRET, "test"),
        "https://gw.example.com/ncp/",
        transport=httpx.MockTransport(handler),
        wall_clock=lambda: 1_700_000_000.0,
        clock=clock,
        sleep=clock.sleep,
    )
    async with client:
        await client.create_server([("serverName", "web-001")])
    (req,) = seen
    uri = "/ncp/vserver/v2/createServerInstances?responseFormatType=json"
    assert req.url.raw_path.decode() == uri
    expected = sign("POST", uri, 1_700_000_000_000, ACCESS, SECRET)
    assert req.headers["x-ncp-apigw-signature-v2"] == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_retry_after_is_read_as_seconds_or_ignored(header: str, expected: float | None) -> None:
    """Retry-After in seconds is honoured; an unreadable one falls back to our own back-off."""
    from fleet.ncp.answers import retry_after

    assert retry_after(httpx.Headers({"retry-after": header})) == expected


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>gateway hiccup</html>"),  # not JSON at all
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"somethingElse": {}}),  # no createServerInstancesResponse
        httpx.Response(200, content=b'{"createServerInstancesResponse": {"serverInst'),  # cut
    ],
)
async def test_a_success_that_cannot_be_read_is_ambiguous(
    clock: FakeClock, answer: httpx.Response
) -> None:
    """NCP said 2xx: the server may exist, so an unreadable body is ambiguous, not a refusal."""
    handler, seen = script(answer)
    async with make_client(clock, handler) as client:
        with pytest.raises(AmbiguousError):
            await client.create_server([("serverName", "web-001")])
    assert len(seen) == 1  # a create is never sent again blindly


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectError("refused"), RetryableError),  # nothing reached NCP
        (httpx.ConnectTimeout("slow connect"), RetryableError),
        (httpx.PoolTimeout("no connection free"), RetryableError),
        (httpx.UnsupportedProtocol("ftp://"), RetryableError),
        (httpx.ReadTimeout("no answer"), AmbiguousError),  # sent; NCP may have acted
        (httpx.WriteTimeout("half sent"), AmbiguousError),
        (httpx.RemoteProtocolError("dropped"), AmbiguousError),
        (httpx.ReadError("reset"), AmbiguousError),
        (httpx.DecodingError("bad gzip"), AmbiguousError),  # the answer came, unreadable
        (httpx.TooManyRedirects("loop"), AmbiguousError),
    ],
)
async def test_network_failures_are_retryable_only_before_sending(
    clock: FakeClock, error: Exception, kind: type[Exception]
) -> None:
    """An httpx error before anything is sent is retryable; every other one is ambiguous."""
    handler, _ = script(error)
    client = make_client(clock, handler)
    client.retry = RetryPolicy(max_attempts=1)
    async with client:
        with pytest.raises(kind):
            await client.create_server([("serverName", "web-001")])


async def test_every_call_about_a_server_carries_its_region(clock: FakeClock) -> None:
    """Look-ups, polls, stop, terminate and protection all name the region ('' = none sent)."""
    empty = {"totalRows": 0, "serverInstanceList": [], "returnCode": "0"}
    handler, seen = script(
        httpx.Response(200, json={"getServerInstanceListResponse": empty}),
        httpx.Response(200, json={"getServerInstanceListResponse": empty}),
        httpx.Response(200, json={"stopServerInstancesResponse": empty}),
        httpx.Response(200, json={"terminateServerInstancesResponse": empty}),
        httpx.Response(200, json={"setProtectServerTerminationResponse": empty}),
        httpx.Response(200, json={"getServerInstanceListResponse": empty}),
    )
    async with make_client(clock, handler) as client:
        await client.find_by_name("web-001", region="JPN", vpc_no="3001")
        await client.get_servers(["1", "2"], region="JPN")
        await client.stop_servers(["1"], region="JPN")
        await client.terminate_servers(["1"], region="JPN")
        await client.set_protection("1", False, region="JPN")
        await client.list_servers()  # the default region: no regionCode at all
    forms = [dict(parse_qsl(r.content.decode())) for r in seen]
    assert [f.get("regionCode") for f in forms] == ["JPN"] * 5 + [None]


@pytest.mark.parametrize(
    "value",
    ["web-001", "", "a b", "a+b&c=d", "100%", "웹 서버", "~_.-", "x/y?z#", "line\nbreak", "'\"<>"],
)
def test_the_form_body_is_what_urlencode_makes(value: str) -> None:
    """Plain names and values go as they are; anything else is quoted exactly as urlencode does."""
    from urllib.parse import urlencode

    from fleet.ncp.client import form_body

    params = [("serverName", value), ("networkInterfaceList.1.subnetNo", "75101"), (value, "1")]
    assert form_body(params) == urlencode(params)
    assert parse_qsl(form_body(params), keep_blank_values=True) == params
