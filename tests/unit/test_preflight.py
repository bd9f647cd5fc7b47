"""Preflight's pure parts: columns of sent parameters, rows, paged reads, the error it raises."""

from __future__ import annotations

import pickle
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from fleet.config import Credentials
from fleet.errors import PreflightError, Problem
from fleet.inventory import load_inventories
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.ncp.listed import rows_of
from fleet.ncp.reads import Resource, Subnet, read
from fleet.planned import PlannedServer
from flows.cli.exits import exit_code
from tests.support.clock import FakeClock
from tests.support.keys import ACCESS, SECRET

RENUMBERED = (("networkInterfaceList.1", "networkInterfaceList.2"),)


@pytest.mark.parametrize(
    ("key", "renumbered", "column"),
    [
        ("serverImageNo", (), "serverImageNo"),
        ("networkInterfaceList.1.subnetNo", (), "networkInterfaceList.1.subnetNo"),
        (  # one cell holds every ACG of a NIC
            "networkInterfaceList.1.accessControlGroupNoList.2",
            (),
            "networkInterfaceList.1.accessControlGroupNoList",
        ),
        ("networkInterfaceList.1.subnetNo", RENUMBERED, "networkInterfaceList.2.subnetNo"),
        (
            "networkInterfaceList.1.accessControlGroupNoList.1",
            RENUMBERED,
            "networkInterfaceList.2.accessControlGroupNoList",
        ),
        ("blockStorageMappingList.1.order", RENUMBERED, "blockStorageMappingList.1.order"),
    ],
)
def test_a_sent_parameter_maps_back_to_its_column(
    key: str, renumbered: tuple[tuple[str, str], ...], column: str
) -> None:
    """A parameter as sent names the inventory column it came from, index as written."""
    spec = PlannedServer("web-001", "f.csv", 2, ((key, "1"),), renumbered)
    assert spec.column(key) == column


def test_the_inventory_records_the_items_it_renumbered(tmp_path: Path) -> None:
    """A row that skips a list index says which items moved; a row that does not, nothing."""
    path = tmp_path / "inv.csv"
    nic = "networkInterfaceList"
    path.write_text(
        f"serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo,"
        f"{nic}.1.networkInterfaceOrder,{nic}.3.networkInterfaceOrder,{nic}.3.subnetNo\n"
        "aaa,2,1,s,1,2,0,1,7\n"
        "bbb,1,1,s,1,2,,0,7\n"
    )
    first, second, third = load_inventories([path])
    assert first.renumbered == second.renumbered == ((f"{nic}.2", f"{nic}.3"),)
    assert first.renumbered is second.renumbered  # one tuple per row, not per server
    assert third.renumbered == ((f"{nic}.1", f"{nic}.3"),)
    assert third.get(f"{nic}.1.subnetNo") == "7"
    assert third.column(f"{nic}.1.subnetNo") == f"{nic}.3.subnetNo"
    assert first.params_hash == PlannedServer("x", "y", 0, first.params).params_hash


def test_rows_stand_for_their_servers() -> None:
    """Servers of one row (same place, same parameters but the name) make one row."""
    a1 = PlannedServer("a-001", "f.csv", 2, (("vpcNo", "1"), ("serverName", "a-001")))
    a2 = PlannedServer("a-002", "f.csv", 2, (("vpcNo", "1"), ("serverName", "a-002")))
    b = PlannedServer("b", "f.csv", 3, (("vpcNo", "1"), ("serverName", "b")))
    rows = rows_of([a1, a2, b])
    assert [(r.spec.name, r.servers) for r in rows] == [("a-001", 2), ("b", 1)]


def test_preflight_error_pickles_and_exits_2() -> None:
    """Prefect persists the error: its problems survive; the command line exits 2."""
    error = PreflightError([Problem("f.csv", 3, "vpcNo", "no such VPC (found '9')")])
    again = pickle.loads(pickle.dumps(error))
    assert again.problems == error.problems
    assert str(again) == "f.csv:3: vpcNo: no such VPC (found '9')"
    assert exit_code(again) == 2
    failed = pickle.loads(pickle.dumps(PreflightError([], "could not read getVpcList")))
    assert (failed.problems, str(failed), exit_code(failed)) == ([], "could not read getVpcList", 2)


@pytest.mark.anyio
async def test_a_read_batches_numbers_and_reads_every_page(clock: FakeClock) -> None:
    """250 numbers go 100 to a call; each is read to totalRows, NCP's pages being of 40."""
    sent: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(request.content.decode()))
        sent.append(params)
        wanted = [v for k, v in params.items() if k.startswith("subnetNoList.")]
        page, size = int(params["pageNo"]), min(40, int(params["pageSize"]))
        rows = [{"subnetNo": n, "vpcNo": "1", "subnet": "10.0.0.0/24"} for n in wanted]
        body = {"totalRows": len(rows), "subnetList": rows[(page - 1) * size : page * size]}
        return httpx.Response(200, json={"getSubnetListResponse": body})

    client = NcpClient(
        Credentials(ACCESS, SECRET, "test"),
        "https://ncloud.apigw.ntruss.com",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(),
        clock=clock,
        sleep=clock.sleep,
    )
    numbers = [str(n) for n in range(1000, 1250)]
    async with client:
        found = await read(client, Resource.SUBNET, region="JPN", numbers=numbers)
    assert [s.key for s in found] == numbers
    assert all(isinstance(s, Subnet) and s.holds("10.0.0.7") for s in found)
    batches = [len([k for k in p if k.startswith("subnetNoList.")]) for p in sent]
    assert batches == [100] * 6 + [50] * 2
    assert [p["pageNo"] for p in sent] == ["1", "2", "3", "1", "2", "3", "1", "2"]
    assert {p["regionCode"] for p in sent} == {"JPN"}
