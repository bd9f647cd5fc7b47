"""Inventories: every validation rule, by row, header, file and across files; the examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import InventoryError
from fleet.inventory import PlannedServer, load_inventories, validate_inventories
from fleet.ncp.parameters import LISTS, SCALARS
from tests.support.inventory import INVENTORIES, LONG, Write, problems_of, table

# --- validation: one row, one rule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        # types
        (
            {"serverCreateCount": "three"},
            ["inv.csv:2: serverCreateCount: not an integer (found 'three')"],
        ),
        (
            {"networkInterfaceList.1.networkInterfaceOrder": "1.0"},
            [
                "inv.csv:2: networkInterfaceList.1.networkInterfaceOrder: "
                "not an integer (found '1.0')"
            ],
        ),
        (
            {"serverCreateCount": "12345678"},
            ["inv.csv:2: serverCreateCount: too large (found '12345678')"],
        ),
        (
            {"associateWithPublicIp": "yes"},
            ["inv.csv:2: associateWithPublicIp: not true or false (found 'yes')"],
        ),
        (
            {"vpcNo": "75-001"},
            ["inv.csv:2: vpcNo: not an NCP number: digits only (found '75-001')"],
        ),
        (
            {"networkInterfaceList.1.accessControlGroupNoList": "111,222"},
            [
                "inv.csv:2: networkInterfaceList.1.accessControlGroupNoList: not NCP numbers: "
                "digits only, several separated by spaces (found '111,222')",
                "inv.csv:2: networkInterfaceList.1.networkInterfaceOrder: required when any other "
                "networkInterfaceList.1 field is set (empty)",
            ],
        ),
        # required
        ({"vpcNo": " "}, ["inv.csv:2: vpcNo: required (empty)"]),
        (
            {"serverName": None},
            ["inv.csv:1: serverName: required column missing"],
        ),
        # images
        (
            {"serverImageNo": ""},
            [
                "inv.csv:2: serverImageNo: an image is required: set one of "
                "memberServerImageInstanceNo, serverImageNo, serverImageProductCode (all empty)"
            ],
        ),
        (
            {"memberServerImageInstanceNo": "9"},
            [
                "inv.csv:2: serverImageNo: only one image choice per row "
                "(found memberServerImageInstanceNo and serverImageNo)"
            ],
        ),
        (
            {"serverSpecCode": ""},
            ["inv.csv:2: serverSpecCode: required with serverImageNo (empty)"],
        ),
        (
            {"serverImageNo": "", "serverImageProductCode": "SW.X"},
            [
                "inv.csv:2: serverSpecCode: not allowed with serverImageProductCode, "
                "which takes serverProductCode (found 's2-g3')"
            ],
        ),
        (
            {"serverProductCode": "SVR.X"},
            [
                "inv.csv:2: serverProductCode: "
                "not allowed together with serverSpecCode (found 'SVR.X')"
            ],
        ),
        # counts and names
        (
            {"serverCreateCount": "0"},
            ["inv.csv:2: serverCreateCount: must be at least 1 (found '0')"],
        ),
        (
            {"serverCreateStartNo": "-1"},
            ["inv.csv:2: serverCreateStartNo: must be at least 0 (found '-1')"],
        ),
        (
            {"serverCreateCount": "600", "serverCreateStartNo": "401"},
            [
                "inv.csv:2: serverCreateCount: serverCreateCount + serverCreateStartNo must be at "
                "most 1000, so serials fit 3 digits (found 600 + 401)"
            ],
        ),
        (
            {"serverCreateStartNo": "1000"},
            [
                "inv.csv:2: serverCreateStartNo: serverCreateCount + serverCreateStartNo "
                "must be at most 1000, so serials fit 3 digits (found 1 + 1000)"
            ],
        ),
        (
            {"serverName": "ab"},
            [
                "inv.csv:2: serverName: not a valid server name: 3-30 characters, lower-case "
                "letters, digits and '-', starting with a letter and ending with a letter or digit "
                "(found 'ab')"
            ],
        ),
        (
            {"serverName": "a" * 27, "serverCreateCount": "2"},
            [
                "inv.csv:2: serverName: not a valid server name: 3-30 characters, lower-case "
                "letters, digits and '-', starting with a letter and ending with a letter or digit "
                f"(found '{'a' * 27}-001')"
            ],
        ),
        (
            {"serverName": "Web", "serverCreateStartNo": "3"},
            [
                "inv.csv:2: serverName: not a valid server name: 3-30 characters, lower-case "
                "letters, digits and '-', starting with a letter and ending with a letter or digit "
                "(found 'Web-003')"
            ],
        ),
        # text
        (
            {"serverDescription": LONG},
            [
                "inv.csv:2: serverDescription: longer than 960 bytes of UTF-8 (NCP's 1000, less "
                "40 for fleet's create marker) (found 1002 bytes)"
            ],
        ),
        (  # NCP would take 961 bytes, but not with the create marker every create adds
            {"serverDescription": "a" * 961},
            [
                "inv.csv:2: serverDescription: longer than 960 bytes of UTF-8 (NCP's 1000, less "
                "40 for fleet's create marker) (found 961 bytes)"
            ],
        ),
        ({"loginKeyName": "ab"}, ["inv.csv:2: loginKeyName: must be 3-30 characters (found 'ab')"]),
        (
            {"feeSystemTypeCode": "mtrat"},
            ["inv.csv:2: feeSystemTypeCode: must be MTRAT or FXSUM (found 'mtrat')"],
        ),
        # lists
        (
            {f"networkInterfaceList.{i}.networkInterfaceOrder": str(i) for i in range(1, 5)},
            [
                "inv.csv:2: networkInterfaceList: at most 3 network interfaces (found "
                "networkInterfaceList.1, networkInterfaceList.2, networkInterfaceList.3, "
                "networkInterfaceList.4)"
            ],
        ),
        (
            {
                "networkInterfaceList.1.networkInterfaceOrder": "0",
                "networkInterfaceList.3.networkInterfaceOrder": "0",
            },
            [
                "inv.csv:2: networkInterfaceList.3.networkInterfaceOrder: duplicate "
                "networkInterfaceOrder, also in networkInterfaceList.1 (found 0)"
            ],
        ),
        (
            {"networkInterfaceList.2.subnetNo": "75102"},
            [
                "inv.csv:2: networkInterfaceList.2.networkInterfaceOrder: required when any other "
                "networkInterfaceList.2 field is set (empty)"
            ],
        ),
        (
            {
                "blockStorageMappingList.1.blockStorageSize": "100",
                "blockStorageMappingList.1.order": "",
            },
            [
                "inv.csv:2: blockStorageMappingList.1.order: required when any other "
                "blockStorageMappingList.1 field is set (empty)"
            ],
        ),
        (
            {"blockStorageMappingList.1.order": "-1"},
            ["inv.csv:2: blockStorageMappingList.1.order: must be at least 0 (found -1)"],
        ),
    ],
)
def test_row_rules(write_file: Write, cells: dict[str, str | None], expected: list[str]) -> None:
    """Each broken rule is reported as FILE:LINE: COLUMN: what is wrong (what was found)."""
    assert problems_of(write_file(table(cells))) == expected


# --- validation: the header --------------------------------------------------------------------

HEADER = "serverName,serverImageNo,serverSpecCode,vpcNo,subnetNo"
ROW = "web,1,s,2,3"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "serverSpecCod",
            "inv.csv:1: serverSpecCod: unknown column (did you mean 'serverSpecCode'?)",
        ),
        ("loginkeyname", "inv.csv:1: loginkeyname: unknown column (did you mean 'loginKeyName'?)"),
        (
            "networkInterfaceList.2.subnet",
            "inv.csv:1: networkInterfaceList.2.subnet: unknown column "
            "(did you mean 'networkInterfaceList.2.subnetNo'?)",
        ),
        ("colour", "inv.csv:1: colour: unknown column"),
        (
            "networkInterfaceList.0.ip",
            "inv.csv:1: networkInterfaceList.0.ip: "
            "list index must be a positive integer without leading zeros (found '0')",
        ),
        (
            "blockStorageMappingList.a.order",
            "inv.csv:1: blockStorageMappingList.a.order: "
            "list index must be a positive integer without leading zeros (found 'a')",
        ),
        (
            "networkInterfaceList.ip",
            "inv.csv:1: networkInterfaceList.ip: list column without an index "
            "(did you mean 'networkInterfaceList.1.ip'?)",
        ),
        (
            "networkInterfaceList.1.accessControlGroupNoList.1",
            "inv.csv:1: networkInterfaceList.1.accessControlGroupNoList.1: unknown column: put "
            "every ACG number of a NIC in one cell, separated by spaces "
            "(did you mean 'networkInterfaceList.1.accessControlGroupNoList'?)",
        ),
        (
            "responseFormatType",
            "inv.csv:1: responseFormatType: set by the client, which always asks for json: "
            "remove this column",
        ),
        ("vpcNo", "inv.csv:1: vpcNo: duplicate column (also column 4)"),
    ],
)
def test_header_rules(write_file: Write, extra: str, expected: str) -> None:
    """A bad header cell is reported once, on the header's line, with a hint where there is one."""
    assert problems_of(write_file(f"{HEADER},{extra}\n{ROW},\n")) == [expected]


def test_unnamed_column(write_file: Write) -> None:
    """A column with no name is an error only when some row has a value in it."""
    assert problems_of(write_file(f"{HEADER},\n{ROW},\n{ROW.replace('web', 'api')},x\n")) == [
        "inv.csv:1: column 6 has no name in the header (found a value on line 3)"
    ]
    assert problems_of(write_file(f"{HEADER},\n{ROW},\n")) == []


# --- validation: files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, ["inv.csv: no such file"]),
        (b"", ["inv.csv: empty inventory: no header line"]),
        (b"# only a comment\n\n", ["inv.csv: empty inventory: no header line"]),
        (
            f"# header only\n{HEADER}\n".encode(),
            ["inv.csv:2: no servers: the header has no rows under it"],
        ),
        (
            f"{HEADER}\n{ROW}\nd\xe9j\xe0,1,s,2,3\n".encode("latin-1"),
            ["inv.csv:3: not UTF-8 text: save the file as UTF-8 (found byte 0xe9)"],
        ),
        (f"{HEADER}\n{ROW}\n".encode("utf-16"), ["inv.csv:1: UTF-16 text: save the file as UTF-8"]),
        (
            f"{HEADER}\n{ROW},x\n".encode(),
            [
                "inv.csv:2: more cells than the header has columns, an unquoted ',' in a cell? "
                "(found 6 cells for 5 columns)",
            ],
        ),
        (
            f'{HEADER}\n"web"x,1,s,2,3\n{ROW}\n'.encode(),
            ["inv.csv:2: malformed CSV (',' expected after '\"')"],
        ),
        (
            f'{HEADER}\n{ROW}\napi,1,s,2,"3\n'.encode(),
            ["inv.csv:3: malformed CSV (unexpected end of data)"],
        ),
    ],
)
def test_file_problems(write_file: Write, content: bytes | None, expected: list[str]) -> None:
    """Unreadable, empty, mis-encoded or malformed files are problems, never tracebacks."""
    path = "inv.csv" if content is None else write_file(content)
    assert problems_of(path) == expected


def test_directory(write_file: Write, tmp_path: Path) -> None:
    """A directory given as an inventory is a problem."""
    (tmp_path / "dir.csv").mkdir()
    assert problems_of("dir.csv") == ["dir.csv: a directory, not an inventory file"]


def test_same_file_twice(write_file: Write) -> None:
    """A file given twice is one problem, not a duplicate report for each of its servers."""
    path = write_file(table({"serverCreateCount": "3"}))
    assert problems_of(path, f"./{path}") == ["./inv.csv: the same file as inv.csv, given twice"]


def test_columns_differ_between_files(write_file: Write) -> None:
    """Files may have different columns; a required column missing is reported once per file."""
    full = write_file(table({"serverDescription": "front"}), "full.csv")
    lean = write_file(
        "serverName,serverImageNo,serverSpecCode,subnetNo\napi,1,s,3\nweb2,1,s,3\n", "lean.csv"
    )
    assert problems_of(full, lean) == ["lean.csv:1: vpcNo: required column missing"]
    specs = load_inventories([full, write_file(table({"serverName": "api"}), "other.csv")])
    assert [dict(s.params).get("serverDescription") for s in specs] == ["front", None]


def test_header_only_file_with_its_own_column(write_file: Write) -> None:
    """A header-only file whose columns no other file has is one problem, not a crash."""
    empty = write_file(f"{HEADER},loginKeyName\n", "empty.csv")
    full = write_file(table({}), "full.csv")
    assert problems_of(empty, full) == ["empty.csv:1: no servers: the header has no rows under it"]


# --- validation: across rows and files ---------------------------------------------------------


def test_duplicates_across_files(write_file: Write) -> None:
    """A name made twice is reported where it is made again, naming the first place."""
    one = write_file(table({"serverName": "web", "serverCreateCount": "3"}), "one.csv")
    other = write_file(
        "# the second file\n"
        + table(
            {"serverName": "web-002"},
            {"serverName": "web", "serverCreateStartNo": "2", "serverCreateCount": "4"},
        ),
        "other.csv",
    )
    assert problems_of(one, other) == [
        "other.csv:3: serverName: duplicate server name 'web-002' (also at one.csv:2)",
        "other.csv:4: serverName: duplicate server name 'web-002' and 1 more (also at one.csv:2)",
    ]


def test_every_problem_in_one_raise(write_file: Write) -> None:
    """load_inventories reads every file and raises once with every problem, in file order."""
    bad = write_file(table({"vpcNo": ""}, {"serverCreateCount": "x"}), "bad.csv")
    worse = write_file(f"{HEADER},colour\napi,1,s,2,3,red\n", "worse.csv")
    with pytest.raises(InventoryError) as caught:
        load_inventories([bad, "missing.csv", worse])
    assert [str(p) for p in caught.value.problems] == [
        "bad.csv:2: vpcNo: required (empty)",
        "bad.csv:3: serverCreateCount: not an integer (found 'x')",
        "missing.csv: no such file",
        "worse.csv:1: colour: unknown column",
    ]


def test_no_paths() -> None:
    """No inventory means no servers and no problems."""
    assert load_inventories([]) == []
    assert validate_inventories([]) == []


# --- the shipped examples ----------------------------------------------------------------------


def test_examples_load() -> None:
    """The demo and full inventories are valid; the full one uses every supported parameter."""
    specs = load_inventories([INVENTORIES / "demo.csv", INVENTORIES / "full.csv"])
    assert all(isinstance(spec, PlannedServer) for spec in specs)
    assert len({spec.name for spec in specs}) == len(specs)
    header = next(
        line for line in (INVENTORIES / "full.csv").read_text().splitlines() if line[0] != "#"
    ).split(",")
    used = {
        column if column in SCALARS else f"{column.split('.')[0]}.{column.split('.')[2]}"
        for column in header
    }
    every = set(SCALARS) | {f"{name}.{f}" for name, spec in LISTS.items() for f in spec.fields}
    assert used == every


def test_broken_example() -> None:
    """The broken example reports many problems, each with a line, without raising anything else."""
    problems = validate_inventories([INVENTORIES / "broken.csv"])
    assert len(problems) >= 10
    assert len({p.line for p in problems}) >= 6
