"""The simulator over loopback HTTP: starting stopped servers, changing a spec, the listed codes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from fleet.simulator import running_simulator
from fleet.simulator.catalog_default import DEFAULT_CATALOG
from fleet.simulator.catalog_file import catalog_from_json
from tests.support.clock import FakeClock
from tests.support.simulator import BASE, NOON_KST_2024, VALID, Api, api_on, server_error

GIB = 1 << 30
KVM = {"serverImageNo": "23214590", "serverSpecCode": "s2-g3"}
XEN_IMAGE = "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050"
XEN_PRODUCT = "SVR.VSVR.STAND.C002.M008.NET.SSD.B050.G002"
XEN_BIGGER = "SVR.VSVR.STAND.C004.M016.NET.SSD.B050.G002"
XEN_HICPU = "SVR.VSVR.HICPU.C008.M016.NET.SSD.B050.G002"
CODES = ("serverImageNo", "serverImageProductCode", "serverSpecCode", "serverProductCode")


def made(
    api: Api, changes: Mapping[str, str] = VALID, *, running: bool = True, stopped: bool = False
) -> str:
    """Create one server from VALID with changes; let it boot (and stop); return its number."""
    (server,) = api.create(**changes)
    no: str = server["serverInstanceNo"]
    if running or stopped:
        api.clock.advance(BASE.create_seconds + BASE.setup_seconds)
    if stopped:
        api.ok("stopServerInstances", {"serverInstanceNoList.1": no})
        api.clock.advance(BASE.stop_seconds)
    return no


def listed(api: Api, no: str) -> dict[str, Any]:
    """Return the server's record in a getServerInstanceList filtered by its number."""
    body = api.ok("getServerInstanceList", {"serverInstanceNoList.1": no})
    (server,) = body["serverInstanceList"]
    record: dict[str, Any] = server
    return record


def codes_of(server: dict[str, Any]) -> tuple[str, ...]:
    """Return a record's image number, image product, spec and product codes."""
    return tuple(server[key] for key in CODES)


# -- startServerInstances ----------------------------------------------------------------------


def test_start_boots_a_stopped_server_to_run(api: Api) -> None:
    """A stopped server starts: NSTOP with op START ('booting'), then RUN with op NULL."""
    no = made(api, stopped=True)
    answer = api.ok("startServerInstances", {"serverInstanceNoList.1": no})
    (server,) = answer["serverInstanceList"]
    assert server["serverInstanceNo"] == no
    assert (server["serverInstanceStatus"]["code"], server["serverInstanceOperation"]["code"]) == (
        "NSTOP",
        "START",
    )
    assert listed(api, no)["serverInstanceStatusName"] == "booting"
    api.clock.advance(BASE.start_seconds - 0.5)
    assert api.status(no) == ("NSTOP", "START")
    api.clock.advance(0.5)
    assert api.status(no) == ("RUN", "NULL")


@pytest.mark.parametrize(
    ("setup", "code", "status"),
    [
        ("running", "900010", ("RUN", "NULL")),
        ("stopping", "900010", ("RUN", "SHTDN")),
        ("in setup", "1100031", ("CREAT", "SETUP")),
        ("starting", "900010", ("NSTOP", "START")),
    ],
)
def test_start_refuses_a_server_that_is_not_stopped(
    api: Api, setup: str, code: str, status: tuple[str, str]
) -> None:
    """Only a stopped server (NSTOP, op NULL) starts: NCP's error shape, and nothing changes."""
    nos = {"serverInstanceNoList.1": made(api, running=setup != "in setup")}
    no = nos["serverInstanceNoList.1"]
    if setup == "in setup":
        api.clock.advance(BASE.create_seconds)
    if setup == "stopping":
        api.ok("stopServerInstances", nos)
    if setup == "starting":
        api.ok("stopServerInstances", nos)
        api.clock.advance(BASE.stop_seconds)
        api.ok("startServerInstances", nos)
    response = api.call("startServerInstances", nos)
    assert server_error(response) == code
    assert api.status(no) == status


def test_start_of_many_refuses_all_when_one_is_running(api: Api) -> None:
    """A start naming a stopped and a running server starts neither (NCP changes none on error)."""
    stopped = made(api, stopped=True)
    running = made(api)
    both = {"serverInstanceNoList.1": stopped, "serverInstanceNoList.2": running}
    assert server_error(api.call("startServerInstances", both)) == "900010"
    assert api.status(stopped) == ("NSTOP", "NULL")


# -- the codes every listing reports -----------------------------------------------------------

# (create parameters, the listed serverImageNo, serverImageProductCode, serverSpecCode,
# serverProductCode): NCP reports all it knows, whichever pair the create named.
CREATES = [
    (KVM, ("23214590", "", "s2-g3", "SVR.VSVR.STAND.C002.M008.G003")),
    (
        {"serverImageNo": "16187005", "serverSpecCode": "s2-g2-s50"},
        ("16187005", XEN_IMAGE, "s2-g2-s50", XEN_PRODUCT),
    ),
    (
        {"serverImageProductCode": XEN_IMAGE, "serverProductCode": XEN_BIGGER},
        ("16187005", XEN_IMAGE, "s4-g2-s50", XEN_BIGGER),
    ),
    ({"serverImageProductCode": XEN_IMAGE}, ("16187005", XEN_IMAGE, "s2-g2-s50", XEN_PRODUCT)),
    (
        {"memberServerImageInstanceNo": "75701", "serverSpecCode": "m2-g3"},
        ("23214590", "", "m2-g3", "SVR.VSVR.MEMRY.C002.M016.G003"),
    ),
]


@pytest.mark.parametrize(("changes", "codes"), CREATES)
def test_listings_report_image_and_spec_codes(
    api: Api, changes: dict[str, str], codes: tuple[str, ...]
) -> None:
    """The create answer, the list and the detail carry the server's image, spec, product codes."""
    params = {k: v for k, v in VALID.items() if k not in ("serverImageNo", "serverSpecCode")}
    (created,) = api.ok("createServerInstances", {**params, **changes})["serverInstanceList"]
    no = created["serverInstanceNo"]
    detail = api.ok("getServerInstanceDetail", {"serverInstanceNo": no})["serverInstanceList"][0]
    for record in (created, listed(api, no), detail):
        assert codes_of(record) == codes
        assert record["baseBlockStorageDiskDetailType"]["code"] == "SSD"


# -- changeServerInstanceSpec ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("create", "change", "after", "size"),
    [
        (KVM, {"serverSpecCode": "s4-g3"}, ("s4-g3", "SVR.VSVR.STAND.C004.M016.G003"), (4, 16)),
        ({}, {"serverSpecCode": "s4-g2-s50"}, ("s4-g2-s50", XEN_BIGGER), (4, 16)),
        ({}, {"serverProductCode": XEN_BIGGER}, ("s4-g2-s50", XEN_BIGGER), (4, 16)),
    ],
)
def test_change_spec_of_a_stopped_server_within_its_type(
    api: Api,
    create: dict[str, str],
    change: dict[str, str],
    after: tuple[str, str],
    size: tuple[int, int],
) -> None:
    """A stopped server goes through op CHNG and stays NSTOP, same number, with the new spec."""
    no = made(api, create, stopped=True)
    before = listed(api, no)
    answer = api.ok("changeServerInstanceSpec", {"serverInstanceNo": no, **change})
    (server,) = answer["serverInstanceList"]
    assert answer["returnCode"] == "0"
    assert server["serverInstanceNo"] == no
    assert (server["serverInstanceStatus"]["code"], server["serverInstanceOperation"]["code"]) == (
        "NSTOP",
        "CHNG",
    )
    assert codes_of(server) == codes_of(before)  # the answer shows it as it was asked, as NCP's
    assert api.status(no) == ("NSTOP", "CHNG")
    api.clock.advance(BASE.change_seconds)
    assert api.status(no) == ("NSTOP", "NULL")
    now = listed(api, no)
    assert (now["serverSpecCode"], now["serverProductCode"]) == after
    assert (now["serverImageNo"], now["serverImageProductCode"]) == (
        before["serverImageNo"],
        before["serverImageProductCode"],
    )
    assert (now["cpuCount"], now["memorySize"]) == (size[0], size[1] * GIB)
    api.ok("startServerInstances", {"serverInstanceNoList.1": no})
    api.clock.advance(BASE.start_seconds)
    assert api.status(no) == ("RUN", "NULL")
    assert listed(api, no)["serverSpecCode"] == after[0]


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("running", "900010"),
        ("in setup", "1100031"),
        ("stopping", "900010"),
        ("changing", "900010"),
    ],
)
def test_change_spec_refused_unless_stopped(api: Api, setup: str, code: str) -> None:
    """A server not stopped with op NULL keeps its spec; NCP's error shape, HTTP 400."""
    no = made(api, running=setup != "in setup", stopped=setup == "changing")
    if setup == "in setup":
        api.clock.advance(BASE.create_seconds)
    if setup == "stopping":
        api.ok("stopServerInstances", {"serverInstanceNoList.1": no})
    if setup == "changing":
        api.ok("changeServerInstanceSpec", {"serverInstanceNo": no, "serverSpecCode": "s4-g2-s50"})
    response = api.call(
        "changeServerInstanceSpec", {"serverInstanceNo": no, "serverSpecCode": "s2-g2-s50"}
    )
    assert server_error(response) == code
    api.clock.advance(BASE.change_seconds)
    expected = "s4-g2-s50" if setup == "changing" else "s2-g2-s50"
    assert listed(api, no)["serverSpecCode"] == expected


@pytest.mark.parametrize(
    ("create", "change", "code"),
    [
        (KVM, {"serverSpecCode": "c4-g3"}, "900006"),  # STAND -> CPU
        (KVM, {"serverSpecCode": "m4-g3"}, "900006"),  # STAND -> MEMRY
        ({}, {"serverSpecCode": "c8-g2-s50"}, "900006"),  # STAND -> HICPU
        ({}, {"serverProductCode": XEN_HICPU}, "900006"),
        (KVM, {"serverSpecCode": "s4-g2-s50"}, "1413"),  # a XEN spec: not the image's
        ({}, {"serverSpecCode": "s4-g3"}, "1413"),  # a KVM spec for a XEN image
        (KVM, {"serverProductCode": "SVR.VSVR.STAND.C004.M016.G003"}, "900003"),  # KVM: specs
        ({}, {"serverProductCode": "SVR.NOPE"}, "1413"),
        ({}, {"serverSpecCode": "nope"}, "1413"),
        ({}, {"serverSpecCode": "s4-g2-s50", "serverProductCode": XEN_BIGGER}, "900003"),
        ({}, {}, "900001"),
    ],
)
def test_change_spec_refused_across_types_or_with_bad_codes(
    api: Api, create: dict[str, str], change: dict[str, str], code: str
) -> None:
    """Another product type, a spec not for the image, both codes or none: refused, unchanged."""
    no = made(api, create, stopped=True)
    before = listed(api, no)
    response = api.call("changeServerInstanceSpec", {"serverInstanceNo": no, **change})
    assert server_error(response) == code
    assert api.status(no) == ("NSTOP", "NULL")
    assert codes_of(listed(api, no)) == codes_of(before)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"serverSpecCode": "s4-g3"}, "900001"),  # no serverInstanceNo
        ({"serverInstanceNo": "99999999", "serverSpecCode": "s4-g3"}, "900012"),
        ({"serverSpecCode": "s4-g3", "regionCode": "JPN"}, "900012"),  # the server is in KR
    ],
)
def test_change_spec_needs_a_server_of_the_region(
    api: Api, params: dict[str, str], code: str
) -> None:
    """No number is 900001; an unknown number, or a server of another region, is 900012."""
    no = made(api, KVM, stopped=True)
    if "regionCode" in params:
        params = {**params, "serverInstanceNo": no}
    assert server_error(api.call("changeServerInstanceSpec", params)) == code
    assert listed(api, no)["serverSpecCode"] == "s2-g3"


def hdd_catalog() -> Any:
    """The built-in catalog plus an HDD twin of the XEN image's smallest spec and product."""
    data = copy.deepcopy(DEFAULT_CATALOG)
    hdd_product = XEN_PRODUCT.replace(".SSD.", ".HDD.")
    spec = next(s for s in data["serverSpecs"] if s["serverSpecCode"] == "s2-g2-s50")
    data["serverSpecs"].append(
        {**spec, "serverSpecCode": "s2-g2-h50", "serverProductCode": hdd_product}
    )
    product = next(p for p in data["serverProducts"] if p["productCode"] == XEN_PRODUCT)
    data["serverProducts"].append({**product, "productCode": hdd_product})
    for image in data["serverImages"]:
        if image["serverImageNo"] == "16187005":
            image["serverSpecCodes"] = [*image["serverSpecCodes"], "s2-g2-h50"]
    for image_product in data["serverImageProducts"]:
        image_product["serverProductCodes"] = [*image_product["serverProductCodes"], hdd_product]
    return catalog_from_json(data)


def test_change_spec_refused_across_disk_types() -> None:
    """SSD and HDD specs of one product type do not change into each other; the HDD lists HDD."""
    clock, wall = FakeClock(1000.0), FakeClock(NOON_KST_2024)
    hdd_product = XEN_PRODUCT.replace(".SSD.", ".HDD.")
    with (
        running_simulator(BASE, clock=clock, wall_clock=wall, catalog=hdd_catalog()) as sim,
        api_on(sim, clock, wall) as api,
    ):
        nos = []
        for spec in ("s2-g2-s50", "s2-g2-h50"):
            (server,) = api.create(serverSpecCode=spec)
            nos.append(server["serverInstanceNo"])
        clock.advance(BASE.create_seconds + BASE.setup_seconds)
        for no in nos:
            api.ok("stopServerInstances", {"serverInstanceNoList.1": no})
        clock.advance(BASE.stop_seconds)
        ssd, hdd = nos
        assert listed(api, hdd)["baseBlockStorageDiskDetailType"]["code"] == "HDD"
        for no, change in [
            (ssd, {"serverSpecCode": "s2-g2-h50"}),
            (ssd, {"serverProductCode": hdd_product}),
            (hdd, {"serverSpecCode": "s4-g2-s50"}),
        ]:
            response = api.call("changeServerInstanceSpec", {"serverInstanceNo": no, **change})
            assert server_error(response) == "900006"
        assert [listed(api, no)["serverSpecCode"] for no in nos] == ["s2-g2-s50", "s2-g2-h50"]


# -- out of band (/_admin/servers/NO): drift and stuck servers for rehearsals and tests ----------


def test_a_server_stopped_out_of_band_reads_stopped_and_starts_again(api: Api) -> None:
    """Stopped as the console would: NSTOP at once, and NCP's own start brings it back."""
    no = made(api)
    record = api.sim.server(no, "stop")
    assert (record["status"], record["operation"]) == ("NSTOP", "NULL")
    assert api.status(no) == ("NSTOP", "NULL")
    api.ok("startServerInstances", {"serverInstanceNoList.1": no})
    api.clock.advance(BASE.start_seconds)
    assert api.status(no) == ("RUN", "NULL")


def test_a_server_terminated_out_of_band_is_gone_from_every_read(api: Api) -> None:
    """Terminated by someone else: no longer listed, read by number or counted."""
    no = made(api)
    api.sim.server(no, "terminate")
    body = api.ok("getServerInstanceList", {"serverInstanceNoList.1": no})
    assert body["serverInstanceList"] == [] and body["totalRows"] == 0
    assert api.sim.state()["servers"] == []


def test_a_held_server_stays_in_its_status_and_refuses_control(api: Api) -> None:
    """Held in RUN with a shutdown under way (stuck): stays so, and a stop is refused."""
    no = made(api)
    api.sim.server(no, "hold", status="RUN", operation="SHTDN")
    api.clock.advance(3600)
    assert api.status(no) == ("RUN", "SHTDN")
    refused = api.call("stopServerInstances", {"serverInstanceNoList.1": no})
    assert refused.status_code == 400 and server_error(refused) == "900010"


def test_a_server_not_listed_yet_can_be_shown_at_once(api: Api) -> None:
    """Its listing lag ends on demand: a test makes lag end when it chooses."""
    api.sim.configure(list_lag=600.0)
    (server,) = api.create()
    no = server["serverInstanceNo"]
    assert api.call("getServerInstanceDetail", {"serverInstanceNo": no}).status_code == 400
    assert api.sim.server(no, "show")["visible"] is True
    assert api.status(no) == ("INIT", "NULL")


@pytest.mark.parametrize(
    ("no", "change", "error"),
    [
        ("99999999", {"action": "stop"}, "no server 99999999"),
        (None, {"action": "explode"}, "use stop, terminate, hold or show"),
        (None, {"action": "hold"}, "hold needs a status"),
    ],
)
def test_a_bad_out_of_band_change_is_refused_with_a_reason(
    api: Api, no: str | None, change: dict[str, str], error: str
) -> None:
    """An unknown server or action answers 400 with what is wrong; nothing changes."""
    target = no or made(api)
    response = api.client.post(f"{api.sim.url}/_admin/servers/{target}", json=change)
    assert response.status_code == 400 and error in response.json()["error"]


def test_every_answer_carries_ncps_date_on_the_simulators_clock(api: Api) -> None:
    """The Date header is the simulator's wall clock (NCP's clock), as a client sees it."""
    response = api.call("getRegionList")
    assert response.headers["date"] == "Mon, 01 Jan 2024 03:00:00 GMT"
