"""The simulator's catalog: the read APIs, the checks of what a create references, catalog files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleet.inventory import load_inventories
from fleet.simulator import SimulatorConfig, running_simulator
from fleet.simulator.server import main
from tests.support.clock import FakeClock
from tests.support.keys import BASE_ACCESS, BASE_SECRET
from tests.support.simulator import NOON_KST_2024, VALID, Api, server_error

ROOT = Path(__file__).resolve().parents[2]
CREATE = "createServerInstances"


def ids(body: dict[str, Any], key: str, field: str) -> list[str]:
    """Return one field of every item of a list answer."""
    return [str(item[field]) for item in body[key]]


# -- the built-in catalog and the example inventories ------------------------------------------


def test_the_example_inventories_fit_the_built_in_catalog(api: Api) -> None:
    """Every server of demo.csv and full.csv is accepted by the default catalog."""
    specs = load_inventories([ROOT / "inventories" / "demo.csv", ROOT / "inventories" / "full.csv"])
    refused = {}
    for spec in specs:
        response = api.call(CREATE, dict(spec.params))
        if response.status_code != 200:
            refused[spec.name] = server_error(response)
    assert refused == {}
    assert len(api.sim.state()["servers"]) == len(specs) == 21


# -- the read APIs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params", "key", "field", "expected"),
    [
        (
            "getServerImageList",
            {},
            "serverImageList",
            "serverImageNo",
            ["23214590", "25495367", "23214591", "16187005"],
        ),
        (
            "getServerImageList",
            {"serverImageNoList.1": "16187005"},
            "serverImageList",
            "serverImageNo",
            ["16187005"],
        ),
        (
            "getServerImageProductList",
            {"productCode": "SW.VSVR.OS.LNX64.CNTOS.0703.B050"},
            "productList",
            "productCode",
            ["SW.VSVR.OS.LNX64.CNTOS.0703.B050"],
        ),
        (
            "getMemberServerImageInstanceList",
            {},
            "memberServerImageInstanceList",
            "memberServerImageInstanceNo",
            ["75701"],
        ),
        (
            "getServerSpecList",
            {"serverImageNo": "16187005"},
            "serverSpecList",
            "serverSpecCode",
            ["s2-g2-s50", "s4-g2-s50", "c8-g2-s50"],
        ),
        (
            "getServerSpecList",
            {"serverImageNo": "23214591", "zoneCode": "KR-2"},
            "serverSpecList",
            "serverSpecCode",
            ["bm-gpu-h100"],
        ),
        (
            "getServerProductList",
            {
                "serverImageProductCode": "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050",
                "productCode": "SVR.VSVR.HICPU.C008.M016.NET.SSD.B050.G002",
            },
            "productList",
            "productCode",
            ["SVR.VSVR.HICPU.C008.M016.NET.SSD.B050.G002"],
        ),
        ("getLoginKeyList", {"keyName": "full-key"}, "loginKeyList", "keyName", ["full-key"]),
        (
            "getLoginKeyList",
            {"loginKeyNameList.1": "demo-key", "loginKeyNameList.2": "test-key"},
            "loginKeyList",
            "keyName",
            ["demo-key", "test-key"],
        ),
        ("getLoginKeyList", {"regionCode": "JPN"}, "loginKeyList", "keyName", ["tokyo-key"]),
        (
            "getAccessControlGroupList",
            {"vpcNo": "1001"},
            "accessControlGroupList",
            "accessControlGroupNo",
            ["111"],
        ),
        (
            "getAccessControlGroupList",
            {"accessControlGroupNoList.1": "75204"},
            "accessControlGroupList",
            "accessControlGroupNo",
            ["75204"],
        ),
        ("getInitScriptList", {}, "initScriptList", "initScriptNo", ["75401"]),
        ("getPlacementGroupList", {}, "placementGroupList", "placementGroupNo", ["75301"]),
        (
            "getPlacementGroupList",
            {"regionCode": "SGN"},
            "placementGroupList",
            "placementGroupNo",
            [],
        ),
        (
            "getBlockStorageSnapshotInstanceList",
            {},
            "blockStorageSnapshotInstanceList",
            "blockStorageSnapshotInstanceNo",
            ["75601"],
        ),
        (
            "getNetworkInterfaceList",
            {"networkInterfaceNoList.1": "75502"},
            "networkInterfaceList",
            "instanceNo",
            ["9000001"],
        ),
        (
            "getNetworkInterfaceList",
            {"ip": "10.0.2.50"},
            "networkInterfaceList",
            "networkInterfaceNo",
            ["75501"],
        ),
    ],
)
def test_reads_answer_ncps_shape_with_filters(
    api: Api, action: str, params: dict[str, str], key: str, field: str, expected: list[str]
) -> None:
    """Each read answers <action>Response with success codes, its list, and NCP's filters."""
    body = api.ok(action, params)
    assert (body["returnCode"], body["returnMessage"]) == ("0", "success")
    assert body["requestId"]
    assert ids(body, key, field) == expected
    assert body["totalRows"] == len(expected)


@pytest.mark.parametrize(
    ("action", "params", "key", "field", "expected"),
    [
        ("getVpcList", {}, "vpcList", "vpcNo", ["75001", "1001"]),
        ("getVpcList", {"regionCode": "JPN"}, "vpcList", "vpcNo", ["3001"]),
        ("getVpcList", {"vpcName": "test-vpc"}, "vpcList", "vpcNo", ["1001"]),
        (
            "getSubnetList",
            {"vpcNo": "75001"},
            "subnetList",
            "subnetNo",
            ["75101", "75102", "75103"],
        ),
        (
            "getSubnetList",
            {"vpcNo": "75001", "zoneCode": "KR-2"},
            "subnetList",
            "subnetNo",
            ["75103"],
        ),
        (
            "getSubnetList",
            {"subnetNoList.1": "3101", "regionCode": "JPN"},
            "subnetList",
            "zoneCode",
            ["JPN-4"],
        ),
    ],
)
def test_vpc_api_reads(
    api: Api, action: str, params: dict[str, str], key: str, field: str, expected: list[str]
) -> None:
    """GetVpcList and getSubnetList answer under /vpc/v2/, per region, with their filters."""
    body = api.ok(action, params, api="vpc")
    assert ids(body, key, field) == expected


@pytest.mark.parametrize(
    ("api_name", "action", "status"),
    [
        ("vserver", "getVpcList", 404),
        ("vpc", "getServerInstanceList", 404),
        ("vpc", "getSubnetList", 200),
        ("vserver", "getAccessControlGroupList", 200),
    ],
)
def test_each_action_lives_on_its_own_api(
    api: Api, api_name: str, action: str, status: int
) -> None:
    """The VPC API's reads are under /vpc/v2/ only, the Server API's under /vserver/v2/ only."""
    assert api.call(action, api=api_name).status_code == status


def test_paged_reads_page_and_count_every_match(api: Api) -> None:
    """A paged read answers pageSize rows of page pageNo, and totalRows counts them all."""
    pages = [
        api.ok("getAccessControlGroupList", {"vpcNo": "75001", "pageSize": "2", "pageNo": str(n)})
        for n in (1, 2, 3)
    ]
    assert [p["totalRows"] for p in pages] == [5, 5, 5]
    seen = [acg for p in pages for acg in ids(p, "accessControlGroupList", "accessControlGroupNo")]
    assert seen == ["75200", "75201", "75202", "75203", "75204"]


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("getServerProductList", {}, "900001"),
        ("getServerSpecList", {"zoneCode": "JPN-4"}, "900002"),
        ("getAccessControlGroupList", {"regionCode": "MARS"}, "900005"),
        ("getAccessControlGroupList", {"pageNo": "0"}, "900002"),
    ],
)
def test_bad_reads_are_refused(api: Api, action: str, params: dict[str, str], code: str) -> None:
    """A read without a required filter, with a zone of another region, or bad paging: 400."""
    assert server_error(api.call(action, params)) == code


def test_records_carry_ncps_field_names(api: Api) -> None:
    """Records use the SDK models' names: a few pinned, the rest checked by the SDK test."""
    spec = api.ok("getServerSpecList", {"serverSpecCodeList.1": "s2-g3"})["serverSpecList"][0]
    assert (spec["cpuCount"], spec["memorySize"], spec["generationCode"]) == (2, 8 << 30, "G3")
    volume = api.ok("getBlockStorageVolumeTypeList", {"blockStorageVolumeTypeCodeList.1": "CB1"})
    (cb1,) = volume["blockStorageVolumeTypeList"]
    assert cb1["blockStorageVolumeType"] == {"code": "CB1", "codeName": "CB1"}
    subnet = api.ok("getSubnetList", {"subnetNoList.1": "75101"}, api="vpc")["subnetList"][0]
    assert (subnet["subnet"], subnet["subnetType"]["code"]) == ("10.0.1.0/24", "PUBLIC")


# -- what a create references ------------------------------------------------------------------

DEMO = {
    "vpcNo": "75001",
    "subnetNo": "75101",
    "networkInterfaceList.1.networkInterfaceOrder": "0",
    "serverImageNo": "23214590",
    "serverSpecCode": "s2-g3",
    "serverName": "ref",
}
XEN = {k: v for k, v in DEMO.items() if k not in ("serverImageNo", "serverSpecCode")}
XEN["serverImageProductCode"] = "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050"
NIC2 = "networkInterfaceList.2."


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"serverImageNo": "99999999"}, "900020"),
        ({"serverSpecCode": "s2-g2-s50"}, "1413"),  # a XEN spec for a KVM image
        ({"serverSpecCode": "x9-g9"}, "1413"),
        ({"vpcNo": "3001"}, "900021"),  # a JPN VPC, from KR
        ({"vpcNo": "424242"}, "900021"),
        ({"subnetNo": "2002"}, "900022"),  # another VPC's subnet
        ({"networkInterfaceList.1.accessControlGroupNoList.1": "111"}, "900023"),
        ({"loginKeyName": "nobody-key"}, "900024"),
        ({"loginKeyName": "tokyo-key"}, "900024"),  # a JPN key, from KR
        ({"initScriptNo": "1"}, "900025"),
        ({"placementGroupNo": "1"}, "900026"),
        (
            {
                "blockStorageMappingList.1.order": "1",
                "blockStorageMappingList.1.snapshotInstanceNo": "1",
            },
            "900027",
        ),
        (
            {
                "blockStorageMappingList.1.order": "1",
                "blockStorageMappingList.1.blockStorageVolumeTypeCode": "NVME9",
            },
            "900027",
        ),
        ({f"{NIC2}networkInterfaceOrder": "1", f"{NIC2}networkInterfaceNo": "1"}, "900028"),
        (
            {f"{NIC2}networkInterfaceOrder": "1", f"{NIC2}networkInterfaceNo": "75502"},
            "900028",
        ),  # in use
        ({f"{NIC2}networkInterfaceOrder": "1", f"{NIC2}subnetNo": "75103"}, "900022"),  # other zone
        ({"networkInterfaceList.1.ip": "10.9.9.9"}, "900029"),
        ({"serverImageNo": "", "serverSpecCode": "", "memberServerImageInstanceNo": "1"}, "900020"),
    ],
)
def test_creates_naming_what_is_missing_are_refused(
    api: Api, changes: dict[str, str], code: str
) -> None:
    """A create naming anything the catalog lacks (there) is refused with its code, nothing made."""
    params = {k: v for k, v in {**DEMO, **changes}.items() if v != ""}
    assert server_error(api.call(CREATE, params)) == code
    assert api.sim.state()["counters"]["created"] == 0


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, None),
        ({"serverProductCode": "SVR.VSVR.STAND.C004.M016.NET.SSD.B050.G002"}, None),
        ({"serverProductCode": "SVR.VSVR.STAND.C999.M999"}, "1413"),
        ({"serverImageProductCode": "SW.NOTHING"}, "900020"),
    ],
)
def test_image_products_take_their_server_products(
    api: Api, changes: dict[str, str], code: str | None
) -> None:
    """An image product runs on its server products (its first one when none is named)."""
    response = api.call(CREATE, {**XEN, **changes})
    if code is None:
        server = response.json()["createServerInstancesResponse"]["serverInstanceList"][0]
        assert server["hypervisorType"]["code"] == "XEN"
    else:
        assert server_error(response) == code


def test_a_create_lands_in_its_subnets_zone_with_its_specs_size(api: Api) -> None:
    """The server's zone is its subnet's, and its CPU and memory are its spec's."""
    body = api.ok(CREATE, {**DEMO, "subnetNo": "75103", "serverSpecCode": "m4-g3"})
    (server,) = body["serverInstanceList"]
    assert server["zoneCode"] == "KR-2"
    assert (server["cpuCount"], server["memorySize"]) == (4, 32 << 30)


def test_structural_problems_are_reported_before_references(api: Api) -> None:
    """A call both malformed and naming unknown things answers the structural code first."""
    params = {**VALID, "vpcNo": "424242", "serverName": "Bad_Name"}
    assert server_error(api.call(CREATE, params)) == "900004"


# -- catalog files -----------------------------------------------------------------------------

SMALL: dict[str, Any] = {
    "regions": [{"regionCode": "KR", "zones": [{"zoneCode": "KR-1"}]}],
    "vpcs": [{"vpcNo": "7", "ipv4CidrBlock": "192.168.0.0/16"}],
    "subnets": [{"subnetNo": "8", "vpcNo": "7", "zoneCode": "KR-1", "subnet": "192.168.1.0/24"}],
    "serverSpecs": [{"serverSpecCode": "tiny", "cpuCount": 1, "memorySize": 1 << 30}],
    "serverImages": [{"serverImageNo": "5", "serverSpecCodes": ["tiny"]}],
}


def test_a_catalog_file_replaces_the_built_in_one(tmp_path: Path) -> None:
    """With config.catalog naming a file, the simulator knows that catalog and nothing else."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(SMALL))
    config = SimulatorConfig(access_key=BASE_ACCESS, secret_key=BASE_SECRET, catalog=str(path))
    clock, wall = FakeClock(1000.0), FakeClock(NOON_KST_2024)
    with (
        running_simulator(config, clock=clock, wall_clock=wall) as sim,
        httpx.Client(timeout=5) as http,
    ):
        api = Api(http, sim, clock, wall)
        assert ids(api.ok("getRegionList"), "regionList", "regionCode") == ["KR"]
        params = {
            "vpcNo": "7",
            "subnetNo": "8",
            "networkInterfaceList.1.networkInterfaceOrder": "0",
            "serverImageNo": "5",
            "serverSpecCode": "tiny",
        }
        assert api.call(CREATE, params).status_code == 200
        assert server_error(api.call(CREATE, DEMO)) == "900021"


@pytest.mark.parametrize(
    ("catalog", "problem"),
    [
        ([], "a catalog is a JSON object"),
        ({**SMALL, "regions": []}, "at least one region"),
        ({**SMALL, "vpcs": [{"vpcNo": "7", "ipv4CidrBlock": "nonsense"}]}, "ipv4CidrBlock"),
        (
            {**SMALL, "subnets": [{**SMALL["subnets"][0], "subnet": "10.0.0.0/24"}]},
            "inside its VPC",
        ),
        ({**SMALL, "subnets": [{**SMALL["subnets"][0], "zoneCode": "JPN-4"}]}, "zoneCode"),
        ({**SMALL, "subnets": [{**SMALL["subnets"][0], "vpcNo": "9"}]}, "vpcNo names no VPC"),
        (
            {**SMALL, "serverImages": [{"serverImageNo": "5", "serverSpecCodes": ["huge"]}]},
            "unknown specs",
        ),
        (
            {
                **SMALL,
                "networkInterfaces": [
                    {"networkInterfaceNo": "1", "subnetNo": "8", "ip": "10.0.0.1"}
                ],
            },
            "ip must be inside",
        ),
        ({**SMALL, "loginKeys": [{"keyName": "k", "regionCode": "MARS"}]}, "unknown regionCode"),
        (
            {
                **SMALL,
                "memberServerImages": [{"memberServerImageInstanceNo": "1", "serverImageNo": "6"}],
            },
            "does not hold",
        ),
    ],
)
def test_bad_catalog_files_are_refused_naming_the_problem(
    tmp_path: Path, catalog: Any, problem: str
) -> None:
    """A catalog with a dangling reference or a bad value does not load, and says why."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    with (
        pytest.raises(ValueError, match=problem),
        running_simulator(SimulatorConfig(catalog=str(path))),
    ):
        pass


def test_the_command_line_refuses_a_bad_catalog_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fleet simulator --catalog FILE exits 2 naming the file when it cannot be used."""
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(SystemExit) as stopped:
        main(["--catalog", str(path)])
    assert stopped.value.code == 2
    assert "broken.json" in capsys.readouterr().err
