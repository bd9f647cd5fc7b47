"""Inventory rules: the RULES table one rule at a time, and every problem of one row reported."""

from __future__ import annotations

import pytest

from fleet.inventory.names import expand
from fleet.inventory.report import Report
from fleet.inventory.rules import RULES, Rows
from fleet.inventory.sheets import read_sheets
from fleet.ncp.parameters import LISTS
from tests.unit.test_inventory import Write, problems_of, table
from tests.unit.test_inventory import write as write  # the fixture, shared
from tests.unit.test_inventory_validation import LONG

NAME_RULE = (
    "not a valid server name: 3-30 characters, lower-case letters, digits and '-', "
    "starting with a letter and ending with a letter or digit"
)


def problems_by_rule(path: str) -> dict[str, list[str]]:
    """Run each rule of RULES alone on an inventory; return the problems of those that fired."""
    columns = read_sheets([path], Report([path]))
    rows = Rows(columns, expand(columns))
    fired: dict[str, list[str]] = {}
    for rule in RULES:
        report = Report([path])
        rule(rows, report)
        if report.problems():
            fired[rule.__name__] = [str(problem) for problem in report.problems()]
    return fired


# --- the table ---------------------------------------------------------------------------------

# Per rule, in RULES order: the smallest change to BASE's valid rows that breaks it, and the
# column its problem is reported on.
BREAKS: list[tuple[str, list[dict[str, str | None]], str]] = [
    ("check_types", [{"vpcNo": "75-001"}], "vpcNo"),
    ("check_required", [{"vpcNo": ""}], "vpcNo"),
    ("check_image_choice", [{"serverImageNo": ""}], "serverImageNo"),
    ("check_image_spec", [{"serverSpecCode": ""}], "serverSpecCode"),
    ("check_spec_choice", [{"serverProductCode": "SVR.X"}], "serverProductCode"),
    ("check_fee", [{"feeSystemTypeCode": "HOURLY"}], "feeSystemTypeCode"),
    ("check_description", [{"serverDescription": LONG}], "serverDescription"),
    ("check_login_key", [{"loginKeyName": "ab"}], "loginKeyName"),
    (
        "check_nic_orders",
        [{"networkInterfaceList.2.subnetNo": "75102"}],
        "networkInterfaceList.2.networkInterfaceOrder",
    ),
    (
        "check_nic_count",
        [{f"networkInterfaceList.{i}.networkInterfaceOrder": str(i - 1) for i in range(1, 5)}],
        "networkInterfaceList",
    ),
    (
        "check_one_server_each",
        [
            {
                "serverCreateCount": "2",
                "networkInterfaceList.1.networkInterfaceOrder": "0",
                "networkInterfaceList.1.ip": "10.0.1.5",
            }
        ],
        "networkInterfaceList.1.ip",
    ),
    (
        "check_storage_orders",
        [{"blockStorageMappingList.1.blockStorageSize": "100"}],
        "blockStorageMappingList.1.order",
    ),
    ("check_serials", [{"serverCreateCount": "0"}], "serverCreateCount"),
    ("check_names", [{"serverName": "Web"}], "serverName"),
    ("check_duplicates", [{}, {}], "serverName"),
]

# Valid rows that use every column a rule above looks at.
GOOD = [
    {},
    {
        "serverName": "api",
        "serverCreateCount": "3",
        "serverCreateStartNo": "0",
        "feeSystemTypeCode": "MTRAT",
        "serverDescription": "é" * 480,  # 960 bytes: all the create marker leaves
        "loginKeyName": "key",
        "isProtectServerTermination": "TRUE",
        "networkInterfaceList.1.networkInterfaceOrder": "0",
        "networkInterfaceList.2.networkInterfaceOrder": "1",
        "networkInterfaceList.2.subnetNo": "75102",
        "blockStorageMappingList.1.order": "1",
        "blockStorageMappingList.1.blockStorageSize": "100",
    },
    {
        "serverName": "fixed",
        "networkInterfaceList.1.networkInterfaceOrder": "0",
        "networkInterfaceList.1.ip": "10.0.1.5",
        "networkInterfaceList.2.networkInterfaceOrder": "1",
        "networkInterfaceList.2.networkInterfaceNo": "75501",
    },
    {
        "serverName": "old",
        "serverImageNo": None,
        "serverSpecCode": None,
        "serverImageProductCode": "SW.X",
        "serverProductCode": "SVR.X",
    },
]


def test_the_table_covers_every_rule() -> None:
    """Every rule in RULES has a row here that breaks it, in the same order."""
    assert [name for name, _, _ in BREAKS] == [rule.__name__ for rule in RULES]


@pytest.mark.parametrize(("rule", "rows", "column"), BREAKS, ids=[name for name, _, _ in BREAKS])
def test_each_rule_fires_alone(
    write: Write, rule: str, rows: list[dict[str, str | None]], column: str
) -> None:
    """A rule's minimal bad row breaks that rule alone, and it reports on the column it is about."""
    fired = problems_by_rule(write(table(*rows)))
    assert list(fired) == [rule]
    assert all(f": {column}: " in problem for problem in fired[rule])


def test_no_rule_fires_on_good_rows(write: Write) -> None:
    """Valid rows using every checked column break no rule."""
    assert problems_by_rule(write(table(*GOOD))) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("list_name", [name for name, spec in LISTS.items() if spec.required])
def test_every_list_with_an_order_field_is_checked(write: Write, list_name: str) -> None:
    """A list item without its order field is reported, for every list the table gives one."""
    spec = LISTS[list_name]
    other = next(field for field in spec.fields if field != spec.required)
    value = "true" if other.startswith(("no", "empty")) else "1"
    assert problems_of(write(table({f"{list_name}.1.{other}": value}))) == [
        f"inv.csv:2: {list_name}.1.{spec.required}: required when any other {list_name}.1 field "
        "is set (empty)"
    ]


# --- every problem of a row --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        pytest.param(
            {
                "blockStorageMappingList.1.order": "",
                "blockStorageMappingList.1.blockStorageSize": "100GB",
            },
            [
                "inv.csv:2: blockStorageMappingList.1.order: required when any other "
                "blockStorageMappingList.1 field is set (empty)",
                "inv.csv:2: blockStorageMappingList.1.blockStorageSize: not an NCP number: "
                "digits only (found '100GB')",
            ],
            id="the issue's example: no order, and a size that is not a number of GB",
        ),
        pytest.param(
            {
                "blockStorageMappingList.1.order": "",
                "blockStorageMappingList.1.blockStorageSize": "100",
                "blockStorageMappingList.1.emptyBlockStorage": "maybe",
                "blockStorageMappingList.1.snapshotInstanceNo": "snap-1",
            },
            [
                "inv.csv:2: blockStorageMappingList.1.order: required when any other "
                "blockStorageMappingList.1 field is set (empty)",
                "inv.csv:2: blockStorageMappingList.1.emptyBlockStorage: not true or false "
                "(found 'maybe')",
                "inv.csv:2: blockStorageMappingList.1.snapshotInstanceNo: not an NCP number: "
                "digits only (found 'snap-1')",
            ],
            id="a list element without its order, with badly typed fields",
        ),
        pytest.param(
            {"serverName": "Web", "serverCreateCount": "x"},
            [
                f"inv.csv:2: serverName: {NAME_RULE} (found 'Web-001')",
                "inv.csv:2: serverCreateCount: not an integer (found 'x')",
            ],
            id="a bad name behind a count that is not an integer",
        ),
        pytest.param(
            {"serverName": "Web", "serverCreateCount": "0"},
            [
                f"inv.csv:2: serverName: {NAME_RULE} (found 'Web-001')",
                "inv.csv:2: serverCreateCount: must be at least 1 (found '0')",
            ],
            id="a bad name behind a count below 1",
        ),
        pytest.param(
            {"serverName": "a" * 27, "serverCreateCount": "600", "serverCreateStartNo": "401"},
            [
                f"inv.csv:2: serverName: {NAME_RULE} (found '{'a' * 27}-401')",
                "inv.csv:2: serverCreateCount: serverCreateCount + serverCreateStartNo must be at "
                "most 1000, so serials fit 3 digits (found 600 + 401)",
            ],
            id="a name too long with its serial, behind too many serials",
        ),
        pytest.param(
            {
                "serverName": "Web",
                "serverImageNo": "",
                "vpcNo": "75-001",
                "subnetNo": "",
                "feeSystemTypeCode": "HOURLY",
                "loginKeyName": "ab",
                "isProtectServerTermination": "yes",
                "serverCreateCount": "12345678",
                "networkInterfaceList.2.subnetNo": "75102",
            },
            [
                f"inv.csv:2: serverName: {NAME_RULE} (found 'Web-001')",
                "inv.csv:2: serverImageNo: an image is required: set one of "
                "memberServerImageInstanceNo, serverImageNo, serverImageProductCode (all empty)",
                "inv.csv:2: vpcNo: not an NCP number: digits only (found '75-001')",
                "inv.csv:2: subnetNo: required (empty)",
                "inv.csv:2: feeSystemTypeCode: must be MTRAT or FXSUM (found 'HOURLY')",
                "inv.csv:2: loginKeyName: must be 3-30 characters (found 'ab')",
                "inv.csv:2: isProtectServerTermination: not true or false (found 'yes')",
                "inv.csv:2: serverCreateCount: too large (found '12345678')",
                "inv.csv:2: networkInterfaceList.2.networkInterfaceOrder: required when any other "
                "networkInterfaceList.2 field is set (empty)",
            ],
            id="one row breaking many rules at once",
        ),
    ],
)
def test_every_problem_of_a_row(write: Write, cells: dict[str, str], expected: list[str]) -> None:
    """A row breaking several rules reports each of them, in the header's column order."""
    assert problems_of(write(table(cells))) == expected


def test_an_interface_or_a_fixed_ip_goes_to_one_server(write: Write) -> None:
    """A row of several servers, or two rows, may not share one NIC or one fixed IP."""
    rows = [
        {
            "serverName": "a",
            "serverCreateCount": "3",
            "networkInterfaceList.1.networkInterfaceOrder": "0",
            "networkInterfaceList.1.ip": "10.0.1.5",
        },
        {
            "serverName": "bee",
            "networkInterfaceList.1.networkInterfaceOrder": "0",
            "networkInterfaceList.1.ip": "10.0.1.6",
            "networkInterfaceList.2.networkInterfaceOrder": "1",
            "networkInterfaceList.2.networkInterfaceNo": "777",
        },
        {
            "serverName": "cee",
            "networkInterfaceList.1.networkInterfaceOrder": "0",
            "networkInterfaceList.1.ip": "10.0.1.6",
            "networkInterfaceList.2.networkInterfaceOrder": "1",
            "networkInterfaceList.2.networkInterfaceNo": "777",
        },
    ]
    assert problems_of(write(table(*rows))) == [
        "inv.csv:2: networkInterfaceList.1.ip: a fixed IP goes to one server only, and this row "
        "makes several (found 3 servers)",
        "inv.csv:4: networkInterfaceList.1.ip: a fixed IP goes to one server only (found "
        "'10.0.1.6', also at inv.csv:3)",
        "inv.csv:4: networkInterfaceList.2.networkInterfaceNo: an existing interface goes to one "
        "server only (found '777', also at inv.csv:3)",
    ]
