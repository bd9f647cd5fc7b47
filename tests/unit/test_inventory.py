"""Inventories: reading and the expansion into one call per server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.inventory import load_inventories
from tests.support.inventory import Write, table

# VALID_ROW (tests/support/inventory.py) as the calls it expands to.
BASE_PARAMS = (
    ("serverImageNo", "1001"),
    ("serverSpecCode", "s2-g3"),
    ("vpcNo", "75001"),
    ("subnetNo", "75101"),
    ("serverCreateCount", "1"),
    ("serverName", "web"),
    ("networkInterfaceList.1.networkInterfaceOrder", "0"),
)

# --- expansion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "names"),
    [
        ({}, ["web"]),
        ({"serverCreateCount": "3"}, ["web-001", "web-002", "web-003"]),
        ({"serverCreateStartNo": "5"}, ["web-005"]),
        ({"serverCreateCount": "2", "serverCreateStartNo": "0"}, ["web-000", "web-001"]),
        ({"serverCreateCount": " 2 ", "serverCreateStartNo": "098"}, ["web-098", "web-099"]),
        ({"serverCreateCount": "1", "serverCreateStartNo": "999"}, ["web-999"]),
    ],
)
def test_names(write_file: Write, cells: dict[str, str], names: list[str]) -> None:
    """A row makes serverCreateCount servers named serverName-NNN from serverCreateStartNo."""
    specs = load_inventories([write_file(table(cells))])
    assert [spec.name for spec in specs] == names
    assert all(dict(spec.params)["serverName"] == spec.name for spec in specs)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        pytest.param({}, BASE_PARAMS, id="base row and the default NIC"),
        pytest.param(
            {"serverCreateCount": "2", "serverCreateStartNo": "7"},
            (*BASE_PARAMS[:5], ("serverName", "web-007"), *BASE_PARAMS[6:]),
            id="one server per call, start number not sent",
        ),
        pytest.param(
            {
                "isProtectServerTermination": "TRUE",
                "isEncryptedBaseBlockStorageVolume": "False",
                "regionCode": " KR ",
                "serverDescription": '  a, "quoted" text # not a comment ',
            },
            (
                ("regionCode", "KR"),
                *BASE_PARAMS[:4],
                ("isEncryptedBaseBlockStorageVolume", "false"),
                *BASE_PARAMS[4:6],
                ("isProtectServerTermination", "true"),
                ("serverDescription", 'a, "quoted" text # not a comment'),
                BASE_PARAMS[6],
            ),
            id="scalars in the reference order, lower-case booleans, stripped text",
        ),
        pytest.param(
            {
                "networkInterfaceList.5.networkInterfaceOrder": "01",
                "networkInterfaceList.5.subnetNo": "75102",
                "networkInterfaceList.2.networkInterfaceOrder": "0",
                "networkInterfaceList.2.accessControlGroupNoList": " 111   222 ",
                "networkInterfaceList.3.ip": "",
            },
            (
                *BASE_PARAMS[:6],
                ("networkInterfaceList.1.networkInterfaceOrder", "0"),
                ("networkInterfaceList.1.accessControlGroupNoList.1", "111"),
                ("networkInterfaceList.1.accessControlGroupNoList.2", "222"),
                ("networkInterfaceList.2.networkInterfaceOrder", "1"),
                ("networkInterfaceList.2.subnetNo", "75102"),
            ),
            id="NICs renumbered 1, 2 in index order, ACG cell split, integers decimal",
        ),
        pytest.param(
            {
                "blockStorageMappingList.3.blockStorageSize": "100",
                "blockStorageMappingList.3.order": "002",
                "blockStorageMappingList.3.emptyBlockStorage": "TRUE",
                "blockDevicePartitionList.4.mountPoint": "/data",
                "blockDevicePartitionList.4.partitionSize": "500",
            },
            (
                *BASE_PARAMS,
                ("blockDevicePartitionList.1.mountPoint", "/data"),
                ("blockDevicePartitionList.1.partitionSize", "500"),
                ("blockStorageMappingList.1.order", "2"),
                ("blockStorageMappingList.1.blockStorageSize", "100"),
                ("blockStorageMappingList.1.emptyBlockStorage", "true"),
            ),
            id="lists after scalars, in the parameter table's list and field order",
        ),
        pytest.param(
            {
                "serverImageNo": None,
                "serverSpecCode": None,
                "serverImageProductCode": "SW.VSVR.OS",
                "serverProductCode": "SVR.VSVR.STAND",
            },
            (
                ("serverImageProductCode", "SW.VSVR.OS"),
                ("serverProductCode", "SVR.VSVR.STAND"),
                *BASE_PARAMS[2:],
            ),
            id="image product code with server product code",
        ),
    ],
)
def test_params(
    write_file: Write, cells: dict[str, str | None], expected: tuple[tuple[str, str], ...]
) -> None:
    """A row's cells become the wire parameters of one createServerInstances call."""
    spec = load_inventories([write_file(table(cells))])[0]
    assert spec.params == expected


def test_column_order_does_not_matter(write_file: Write) -> None:
    """The same row with its columns in another order makes the same call."""
    forward = "serverName,vpcNo,subnetNo,serverImageNo,serverSpecCode\nweb,1,2,3,s\n"
    backward = "serverSpecCode,serverImageNo,subnetNo,vpcNo,serverName\ns,3,2,1,web\n"
    first = load_inventories([write_file(forward, "a.csv")])[0]
    second = load_inventories([write_file(backward, "b.csv")])[0]
    assert first.params == second.params
    assert first.params_hash == second.params_hash
    assert first.vpc_no == "1"


def test_order_and_sharing(write_file: Write) -> None:
    """Servers come in file, row, serial order; a row's servers share their parameter objects."""
    one = write_file(
        table({"serverName": "b", "serverCreateCount": "2"}, {"serverName": "aaa"}), "1.csv"
    )
    two = write_file(table({"serverName": "abc", "serverCreateCount": "2"}), "2.csv")
    specs = load_inventories([one, two])
    assert [(s.name, s.file, s.line) for s in specs] == [
        ("b-001", "1.csv", 2),
        ("b-002", "1.csv", 2),
        ("aaa", "1.csv", 3),
        ("abc-001", "2.csv", 2),
        ("abc-002", "2.csv", 2),
    ]
    first, second = specs[3], specs[4]
    assert first.file is second.file
    for a, b in zip(first.params, second.params, strict=True):
        if a[0] != "serverName":
            assert a is b


@pytest.mark.parametrize(
    ("text", "names_lines"),
    [
        pytest.param(
            "# comment before the header\nserverName,serverImageNo,serverSpecCode,vpcNo,subnetNo\n"
            "# a comment\n\nweb,1,s,2,3\n,,,,\n#another\napi,1,s,2,3\n",
            [("web", 5), ("api", 8)],
            id="comments and blank rows count as lines but make no servers",
        ),
        pytest.param(
            "\ufeffserverName,serverImageNo,serverSpecCode,vpcNo,subnetNo\r\nweb,1,s,2,3\r\n",
            [("web", 2)],
            id="a BOM and CRLF line ends are tolerated",
        ),
        pytest.param(
            "serverName,serverImageNo,serverSpecCode,vpcNo,subnetNo,serverDescription\n"
            'web,1,s,2,3,"two\nlines"\napi,1,s,2,3,"#x"\n',
            [("web", 2), ("api", 4)],
            id="a quoted cell may span lines; '#' inside a cell is text",
        ),
        pytest.param(
            "serverName,serverImageNo,serverSpecCode,vpcNo,subnetNo,serverDescription\nweb,1,s,2,3\n",
            [("web", 2)],
            id="missing trailing cells are empty",
        ),
    ],
)
def test_reading(write_file: Write, text: str, names_lines: list[tuple[str, int]]) -> None:
    """Physical line numbers survive comments, blank rows, BOMs, CRLF and multi-line cells."""
    specs = load_inventories([write_file(text)])
    assert [(s.name, s.line) for s in specs] == names_lines


def test_multiline_cell_keeps_its_text(write_file: Write) -> None:
    """A multi-line quoted cell is sent with its inner line break."""
    text = table({"serverDescription": "two\nlines"})
    assert ("serverDescription", "two\nlines") in load_inventories([write_file(text)])[0].params


def test_inventories_are_parsed_once_per_process_unless_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line and its flow load the same files: the second load reuses the first."""
    from fleet.inventory import sheets

    path = tmp_path / "once.csv"
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo\n"
        "once,2,1,s2-g3,7,8\n"
    )
    reads: list[object] = []
    real = sheets.read_sheets

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr("fleet.inventory.read_sheets", counting)
    first = load_inventories([path])
    again = load_inventories([str(path)])
    path.write_text(path.read_text().replace("once,2", "once,3"))  # same size, same instant
    edited = load_inventories([path])
    assert first == again and len(edited) == 3
    assert len(reads) == 2  # the first load, and the load after the edit
