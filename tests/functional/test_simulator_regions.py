"""The simulator's regions and listing lag: calls act on one region, new servers list late."""

from __future__ import annotations

import pytest

from tests.support.simulator import BASE, IN_JPN, VALID, Api, server_error

# Every Server API action but create, with the parameters that name one server.
ONE_SERVER_CALLS = [
    ("getServerInstanceDetail", "serverInstanceNo"),
    ("stopServerInstances", "serverInstanceNoList.1"),
    ("startServerInstances", "serverInstanceNoList.1"),
    ("terminateServerInstances", "serverInstanceNoList.1"),
    ("setProtectServerTermination", "serverInstanceNo"),
]


def one_server_params(key: str, no: str, **extra: str) -> dict[str, str]:
    """Return the parameters of a one-server call (protect needs its flag too)."""
    params = {key: no, **extra}
    if key == "serverInstanceNo":
        params.setdefault("isProtectServerTermination", "true")
    return params


# -- regions and zones -------------------------------------------------------------------------


def test_region_list_is_ncps_with_kr_first(api: Api) -> None:
    """GetRegionList answers NCP's shape, the default region KR first."""
    body = api.ok("getRegionList")
    assert (body["returnCode"], body["returnMessage"]) == ("0", "success")
    codes = [r["regionCode"] for r in body["regionList"]]
    assert codes[0] == "KR" and {"JPN", "SGN"} <= set(codes)
    assert body["totalRows"] == len(codes)
    assert all(set(r) == {"regionCode", "regionName"} for r in body["regionList"])


@pytest.mark.parametrize(
    ("params", "zones"),
    [
        ({}, ["KR-1", "KR-2"]),
        ({"regionCode": "KR"}, ["KR-1", "KR-2"]),
        ({"regionCode": "JPN"}, ["JPN-4", "JPN-5"]),
        ({"regionCode": "SGN"}, ["SGN-4", "SGN-5"]),
    ],
)
def test_zone_list_per_region(api: Api, params: dict[str, str], zones: list[str]) -> None:
    """GetZoneList lists the zones of the call's region, KR's without regionCode."""
    body = api.ok("getZoneList", params)
    assert [z["zoneCode"] for z in body["zoneList"]] == zones
    for zone in body["zoneList"]:
        assert set(zone) == {"zoneName", "zoneCode", "zoneDescription", "regionCode"}
        assert zone["regionCode"] == params.get("regionCode", "KR")


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("getZoneList", {}),
        ("getServerInstanceList", {}),
        ("getServerInstanceDetail", {"serverInstanceNo": "10000001"}),
        ("stopServerInstances", {"serverInstanceNoList.1": "10000001"}),
        ("startServerInstances", {"serverInstanceNoList.1": "10000001"}),
        ("terminateServerInstances", {"serverInstanceNoList.1": "10000001"}),
        (
            "setProtectServerTermination",
            {"serverInstanceNo": "10000001", "isProtectServerTermination": "true"},
        ),
    ],
)
def test_unknown_region_is_refused(api: Api, action: str, params: dict[str, str]) -> None:
    """Every region-aware action refuses a regionCode that getRegionList does not list."""
    assert server_error(api.call(action, {**params, "regionCode": "XX"})) == "900005"


def test_a_server_lives_in_the_region_it_was_created_in(api: Api) -> None:
    """A create with regionCode=JPN makes a JPN server in a JPN zone; KR creates stay in KR."""
    (jpn,) = api.create(**IN_JPN, serverName="tokyo")
    (kr,) = api.create(serverName="seoul")
    assert (jpn["regionCode"], jpn["zoneCode"]) == ("JPN", "JPN-4")
    assert (kr["regionCode"], kr["zoneCode"]) == ("KR", "KR-1")
    names = {s["serverName"]: s["regionCode"] for s in api.sim.state()["servers"]}
    assert names == {"tokyo": "JPN", "seoul": "KR"}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({}, ["seoul"]),
        ({"regionCode": "KR"}, ["seoul"]),
        ({"regionCode": "JPN"}, ["tokyo"]),
        ({"regionCode": "SGN"}, []),
    ],
)
def test_list_shows_the_calls_region_only(
    api: Api, params: dict[str, str], names: list[str]
) -> None:
    """GetServerInstanceList lists one region's servers: the first region's without regionCode."""
    api.create(**IN_JPN, serverName="tokyo")
    api.create(serverName="seoul")
    body = api.ok("getServerInstanceList", params)
    assert [s["serverName"] for s in body["serverInstanceList"]] == names
    assert body["totalRows"] == len(names)


@pytest.mark.parametrize(("action", "key"), ONE_SERVER_CALLS)
def test_a_jpn_server_is_not_found_without_its_region(api: Api, action: str, key: str) -> None:
    """A call about a JPN server without regionCode=JPN (or by number in a list) finds nothing."""
    (jpn,) = api.create(**IN_JPN)
    no = jpn["serverInstanceNo"]
    assert server_error(api.call(action, one_server_params(key, no))) == "900012"
    listed = api.ok("getServerInstanceList", {"serverInstanceNoList.1": no})
    assert listed["totalRows"] == 0


def test_a_jpn_server_is_controlled_with_its_region(api: Api) -> None:
    """With regionCode=JPN every call reaches the JPN server: detail, protect, stop, terminate."""
    (jpn,) = api.create(**IN_JPN)
    no = jpn["serverInstanceNo"]
    nos = {"serverInstanceNoList.1": no, "regionCode": "JPN"}
    api.clock.advance(BASE.create_seconds + BASE.setup_seconds)
    assert api.status(no, regionCode="JPN") == ("RUN", "NULL")
    protect = {"serverInstanceNo": no, "regionCode": "JPN", "isProtectServerTermination": "false"}
    api.ok("setProtectServerTermination", protect)
    api.ok("stopServerInstances", nos)
    api.clock.advance(BASE.stop_seconds)
    api.ok("terminateServerInstances", nos)
    api.clock.advance(BASE.terminate_seconds)
    assert api.sim.state()["servers"] == []


# -- listing lag -------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "key"), ONE_SERVER_CALLS)
def test_a_server_within_its_listing_lag_is_not_found(api: Api, action: str, key: str) -> None:
    """Until created + list_lag, no call finds the server; from then on, it does."""
    api.sim.configure(list_lag=30.0, create_seconds=0, setup_seconds=0)
    (server,) = api.create()
    no = server["serverInstanceNo"]
    api.clock.advance(29.9)
    assert server_error(api.call(action, one_server_params(key, no))) == "900012"
    api.clock.advance(0.1)
    response = api.call(action, one_server_params(key, no))
    assert response.status_code == 200 or server_error(response) == "900010"  # found: RUN


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"serverName": "web"},
        {"vpcNo": "1001"},
        {"serverInstanceStatusCode": "INIT"},
        {"serverInstanceNoList.1": "10000001"},
    ],
)
def test_a_server_within_its_listing_lag_is_in_no_list(api: Api, params: dict[str, str]) -> None:
    """GetServerInstanceList under any filter leaves out a server younger than the listing lag."""
    api.sim.configure(list_lag=30.0, create_seconds=60.0)  # still INIT when it lists
    (server,) = api.create()
    if "serverInstanceNoList.1" in params:
        params = {"serverInstanceNoList.1": server["serverInstanceNo"]}
    assert api.ok("getServerInstanceList", params)["totalRows"] == 0
    api.clock.advance(30.0)
    assert api.ok("getServerInstanceList", params)["totalRows"] == 1


def test_a_lagging_server_exists_for_the_admin_and_the_account_limit(api: Api) -> None:
    """Not yet listed, a server shows in the admin state as not visible and counts to the limit."""
    api.sim.configure(list_lag=30.0, max_servers=1)
    api.create()
    (record,) = api.sim.state()["servers"]
    assert (record["visible"], record["committed"]) == (False, True)
    second = {**VALID, "serverName": "second"}
    assert server_error(api.call("createServerInstances", second)) == "1015009"
    api.clock.advance(30.0)
    assert api.sim.state()["servers"][0]["visible"] is True


def test_listing_lag_jitter_is_seeded_and_bounded(api: Api) -> None:
    """Each server lists between lag and lag + jitter after creation; a seed repeats the draws."""
    api.sim.configure(list_lag=10.0, list_lag_jitter=20.0, seed=5)

    def visible_after() -> list[float]:
        servers = api.create(serverCreateCount="20")
        nos = {s["serverInstanceNo"] for s in servers}
        first_seen: dict[str, float] = {}
        for step in range(31):
            for record in api.sim.state()["servers"]:
                no = record["serverInstanceNo"]
                if no in nos and record["visible"] and no not in first_seen:
                    first_seen[no] = step
            api.clock.advance(1.0)
        return [first_seen[s["serverInstanceNo"]] for s in servers]

    first = visible_after()
    assert all(10 <= t <= 30 for t in first) and len(set(first)) > 3
    api.sim.reset()
    assert visible_after() == first
