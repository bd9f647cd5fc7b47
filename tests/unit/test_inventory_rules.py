"""Inventory rules: the RULES table, one rule at a time."""

from __future__ import annotations

import pytest

from fleet.inventory.names import expand
from fleet.inventory.report import Report
from fleet.inventory.rules import RULES, Rows
from fleet.inventory.sheets import read_sheets
from fleet.parameters import LISTS
from tests.unit.test_inventory import LONG, Write, problems_of, table
from tests.unit.test_inventory import write as write  # the fixture, shared


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
        "serverDescription": "é" * 500,
        "loginKeyName": "key",
        "isProtectServerTermination": "TRUE",
        "networkInterfaceList.1.networkInterfaceOrder": "0",
        "networkInterfaceList.2.networkInterfaceOrder": "1",
        "networkInterfaceList.2.subnetNo": "75102",
        "blockStorageMappingList.1.order": "1",
        "blockStorageMappingList.1.blockStorageSize": "100",
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
    assert problems_by_rule(write(table(*GOOD))) == {}


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
