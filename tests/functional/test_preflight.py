"""Preflight against the simulator over loopback HTTP: each check, a failing read, call counts."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.errors import PreflightError, Problem
from fleet.inventory import load_inventories
from fleet.plan.preflight import preflight
from fleet.planned import PlannedServer
from fleet.simulator import RunningSimulator, running_simulator
from tests.support.engine import client_for
from tests.support.simulator import sim_config

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
XEN_IMAGE = "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050"
# A good row: two KVM servers in the demo VPC, two ACGs on the default NIC, a login key.
GOOD = {
    "serverName": "good",
    "serverCreateCount": "2",
    "serverImageNo": "23214590",
    "serverSpecCode": "s2-g3",
    "vpcNo": "75001",
    "subnetNo": "75101",
    "loginKeyName": "demo-key",
    "networkInterfaceList.1.networkInterfaceOrder": "0",
    "networkInterfaceList.1.accessControlGroupNoList": "75201 75202",
}
NIC2 = "networkInterfaceList.2"
ONE = {"serverCreateCount": "1"}


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    """One simulator with the built-in catalog for the module; preflight never changes it."""
    with running_simulator(sim_config()) as running:
        yield running


def write(path: Path, *rows: dict[str, str]) -> str:
    """Write an inventory of these rows (line 2, 3 ...), its header every column they use."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


async def problems_of(url: str, specs: list[PlannedServer]) -> list[Problem]:
    """Run the preflight; return what it found (nothing when it passed)."""
    async with client_for(url) as client:
        try:
            await preflight(client, specs)
        except PreflightError as exc:
            return exc.problems
    return []


# (the bad row's cells over GOOD's, the column named, what the message says). One row per check.
CASES = [
    ({"serverImageNo": "999"}, "serverImageNo", "no such server image in the default region"),
    (
        {"serverImageNo": "", "serverSpecCode": "", "serverImageProductCode": "SW.NOPE"},
        "serverImageProductCode",
        "no such server image product",
    ),
    (
        {"serverImageNo": "", "memberServerImageInstanceNo": "75799"},
        "memberServerImageInstanceNo",
        "no such member server image",
    ),
    (
        {"serverSpecCode": "s2-g2-s50"},
        "serverSpecCode",
        "does not run server image 23214590 in zone KR-1",
    ),
    (
        {"serverImageNo": "", "serverSpecCode": "", "memberServerImageInstanceNo": "75701"},
        "serverSpecCode",
        "required: member image 75701 is of server image 23214590",
    ),
    (
        {
            "serverImageNo": "",
            "serverSpecCode": "",
            "serverImageProductCode": XEN_IMAGE,
            "serverProductCode": "SVR.VSVR.STAND.C099.M999",
        },
        "serverProductCode",
        f"not a server product of image product {XEN_IMAGE} in zone KR-1",
    ),
    ({"vpcNo": "9999"}, "vpcNo", "no such VPC in the default region"),
    ({"regionCode": "JPN"}, "vpcNo", "no such VPC in region JPN"),
    ({"regionCode": "MARS"}, "regionCode", "no such region"),
    ({"subnetNo": "2002"}, "subnetNo", "belongs to VPC 1001, not to vpcNo 75001"),
    (
        {f"{NIC2}.networkInterfaceOrder": "1", f"{NIC2}.subnetNo": "2002"},
        f"{NIC2}.subnetNo",
        "belongs to VPC 1001",
    ),
    (
        {f"{NIC2}.networkInterfaceOrder": "1", f"{NIC2}.subnetNo": "75103"},
        f"{NIC2}.subnetNo",
        "in zone KR-2, while the server's subnetNo is in KR-1",
    ),
    (
        {**ONE, "networkInterfaceList.1.ip": "10.0.9.9"},
        "networkInterfaceList.1.ip",
        "not inside subnet 75101 (10.0.1.0/24)",
    ),
    (
        {**ONE, f"{NIC2}.networkInterfaceOrder": "1", f"{NIC2}.networkInterfaceNo": "75599"},
        f"{NIC2}.networkInterfaceNo",
        "no such network interface",
    ),
    (
        {**ONE, f"{NIC2}.networkInterfaceOrder": "1", f"{NIC2}.networkInterfaceNo": "75502"},
        f"{NIC2}.networkInterfaceNo",
        "in use by server 9000001",
    ),
    (
        {"networkInterfaceList.1.accessControlGroupNoList": "75201 75299"},
        "networkInterfaceList.1.accessControlGroupNoList",
        "no such ACG",
    ),
    (
        {"networkInterfaceList.1.accessControlGroupNoList": "111"},
        "networkInterfaceList.1.accessControlGroupNoList",
        "ACG of VPC 1001, not of vpcNo 75001",
    ),
    ({"loginKeyName": "no-such-key"}, "loginKeyName", "no such login key"),
    ({"initScriptNo": "75499"}, "initScriptNo", "no such init script"),
    ({"placementGroupNo": "75399"}, "placementGroupNo", "no such placement group"),
    (
        {
            "blockStorageMappingList.1.order": "1",
            "blockStorageMappingList.1.snapshotInstanceNo": "7",
        },
        "blockStorageMappingList.1.snapshotInstanceNo",
        "no such block storage snapshot",
    ),
    (
        {
            "blockStorageMappingList.1.order": "1",
            "blockStorageMappingList.1.blockStorageVolumeTypeCode": "XX9",
        },
        "blockStorageMappingList.1.blockStorageVolumeTypeCode",
        "no such block storage volume type",
    ),
    (  # the row skips NIC 2: its NIC 3 is sent as networkInterfaceList.2, named as written
        {
            "networkInterfaceList.3.networkInterfaceOrder": "1",
            "networkInterfaceList.3.subnetNo": "2002",
        },
        "networkInterfaceList.3.subnetNo",
        "belongs to VPC 1001",
    ),
]


@pytest.mark.parametrize(("bad", "column", "message"), CASES, ids=[c[1] for c in CASES])
async def test_each_check_names_the_bad_row_and_column(
    sim: RunningSimulator, tmp_path: Path, bad: dict[str, str], column: str, message: str
) -> None:
    """A good row passes; the bad row is named by line and column; no create is sent."""
    empty = {k: "" for k in bad if k not in GOOD}  # the good row leaves the bad row's own empty
    path = write(tmp_path / "inv.csv", {**GOOD, **empty}, {**GOOD, "serverName": "bad", **bad})
    specs = load_inventories([path])
    found = await problems_of(sim.url, specs)
    assert found, "the bad row passed"
    assert {(p.file, p.line) for p in found} == {(path, 3)}, found
    assert any(p.column == column and message in p.message for p in found), found
    assert sim.state()["counters"]["by_action"].get("createServerInstances", 0) == 0


async def test_the_example_inventories_pass(sim: RunningSimulator) -> None:
    """demo.csv and full.csv name only what the built-in catalog holds."""
    for name in ("demo.csv", "full.csv"):
        specs = load_inventories([ROOT / "inventories" / name])
        assert await problems_of(sim.url, specs) == [], name


async def test_every_mistake_is_named_at_once(sim: RunningSimulator) -> None:
    """bad-references.csv: one problem per wrong row, each on its own line, all in one go."""
    path = ROOT / "inventories" / "bad-references.csv"
    found = await problems_of(sim.url, load_inventories([path]))
    lines = [ln for ln in path.read_text().splitlines()]
    rows = [i for i, ln in enumerate(lines, 1) if ln and not ln.startswith(("#", "serverName"))]
    assert {p.line for p in found} == set(rows[1:])  # the first row is the good one
    for problem in found:
        assert str(problem).startswith(f"{path}:{problem.line}: {problem.column}: ")


async def test_each_distinct_object_is_read_once(sim: RunningSimulator, tmp_path: Path) -> None:
    """1,000 servers in 4 rows with 3 images cost 8 read calls: one per kind, per image x zone."""
    images = ["23214590", "25495367", "23214590", "16187005"]
    specs_ = ["s2-g3", "s4-g3", "c8-g3", "s2-g2-s50"]
    rows = [
        {
            **GOOD,
            "serverName": f"r{i}",
            "serverCreateCount": "250",
            "serverImageNo": image,
            "serverSpecCode": spec,
        }
        for i, (image, spec) in enumerate(zip(images, specs_, strict=True))
    ]
    specs = load_inventories([write(tmp_path / "big.csv", *rows)])
    assert len(specs) == 1000
    async with client_for(sim.url) as client:
        report = await preflight(client, specs)
        calls = dict(client.stats.calls)
    assert report.rows == 4
    # image, VPC, subnet, ACG, login key: one call each; specs: one per image (all in KR-1).
    assert report.calls == sum(calls.values()) == 8
    assert calls["getServerSpecList"] == 3
    assert calls["getServerImageList"] == 1  # the 3 images in one call's serverImageNoList


@pytest.mark.parametrize("fault", ["fail_before", "error_500"])
async def test_a_failing_read_api_is_reported_never_passed(tmp_path: Path, fault: str) -> None:
    """A read that keeps failing after the client's retries stops the preflight, named."""
    specs = load_inventories([write(tmp_path / "inv.csv", GOOD)])
    with running_simulator(sim_config()) as sim:
        sim.faults({"action": "getAccessControlGroupList", "fault": fault, "times": 100})
        async with client_for(sim.url) as client:
            with pytest.raises(PreflightError) as caught:
                await preflight(client, specs)
        creates = sim.state()["counters"]["by_action"].get("createServerInstances", 0)
    assert caught.value.problems == []
    assert "could not read getAccessControlGroupList" in str(caught.value)
    assert "--no-preflight" in str(caught.value)
    assert creates == 0


# A small account: one region with a VPC, a subnet, an ACG, an image and its spec.
CATALOG = {
    "regions": [{"regionCode": "KR", "zones": [{"zoneCode": "KR-1"}]}],
    "vpcs": [{"vpcNo": "7", "ipv4CidrBlock": "10.7.0.0/16"}],
    "subnets": [{"subnetNo": "8", "vpcNo": "7", "zoneCode": "KR-1", "subnet": "10.7.1.0/24"}],
    "accessControlGroups": [{"accessControlGroupNo": "9", "vpcNo": "7"}],
    "serverSpecs": [{"serverSpecCode": "tiny", "cpuCount": 1, "memorySize": 1 << 30}],
    "serverImages": [{"serverImageNo": "5", "serverSpecCodes": ["tiny"]}],
}


async def test_preflight_checks_against_a_catalog_file(tmp_path: Path) -> None:
    """A simulator started on a catalog file is the account preflight reads."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))
    row = {
        "serverName": "small",
        "serverImageNo": "5",
        "serverSpecCode": "tiny",
        "vpcNo": "7",
        "subnetNo": "8",
        "networkInterfaceList.1.networkInterfaceOrder": "0",
        "networkInterfaceList.1.accessControlGroupNoList": "9",
    }
    path = write(tmp_path / "inv.csv", row, GOOD)  # GOOD names the built-in catalog's objects
    with running_simulator(sim_config(catalog=str(catalog))) as sim:
        found = await problems_of(sim.url, load_inventories([path]))
    assert {p.line for p in found} == {3}
    assert {p.column for p in found} >= {"serverImageNo", "vpcNo", "subnetNo", "loginKeyName"}
