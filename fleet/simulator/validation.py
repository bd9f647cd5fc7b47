"""createServerInstances checked as NCP checks it: every problem gathered, then one error raised.

Two passes: the structure (names, types, counts, image/spec pairs), whose rules come from
``fleet.ncp.parameters`` (the table the inventory validator reads too, so the simulator and the
client cannot disagree about them); then, on a well-formed call, its references against the catalog
(``references``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from fleet.ncp.parameters import (
    FEE_SYSTEM_TYPE_CODES,
    IMAGE_CHOICES,
    IMAGE_RULES,
    LISTS,
    MAX_CREATE_SERIAL,
    MAX_DESCRIPTION_BYTES,
    MAX_NICS,
    SCALARS,
    SPEC_CHOICES,
    ListField,
    Type,
    valid_server_name,
)
from fleet.simulator.catalog import Catalog
from fleet.simulator.errors import (
    INVALID_COMBINATION,
    INVALID_PARAMETER,
    INVALID_SERVER_NAME,
    MISSING_PARAMETER,
    Problems,
    raise_first,
)
from fleet.simulator.references import Placement, place
from fleet.simulator.wire import int_param, is_digits

__all__ = ["MAX_CREATE_COUNT", "CreateRequest", "validate_create"]

MAX_CREATE_COUNT: Final = 20


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A validated createServerInstances call."""

    count: int
    start_no: int
    name: str | None
    description: str
    vpc_no: str
    subnet_no: str
    protect: bool
    echo: dict[str, str]  # the scalar parameters as sent, for the server records
    region: str
    placement: Placement

    @property
    def zone(self) -> str:
        """Return the zone the servers go to: their subnet's."""
        return self.placement.zone


def _valid_value(kind: Type, value: str) -> bool:
    if kind is Type.BOOL:
        return value in ("true", "false")
    if kind in (Type.INT, Type.NUM):
        return is_digits(value)
    if kind is Type.NUMS:
        return all(is_digits(v) for v in value.split())
    return True


def collect_list(
    params: Mapping[str, str], spec: ListField, problems: Problems
) -> dict[int, dict[str, str]]:
    """Gather ``name.N.field[.M]`` parameters into items by N, checking names and types."""
    items: dict[int, dict[str, str]] = {}
    prefix = spec.name + "."
    for key, value in params.items():
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix) :].split(".")
        if len(parts) not in (2, 3) or not is_digits(parts[0]) or int(parts[0]) < 1:
            problems.append((INVALID_PARAMETER, f"{key}: not a parameter of {spec.name}"))
            continue
        index, name = int(parts[0]), parts[1]
        kind = spec.fields.get(name)
        nested = len(parts) == 3
        if kind is None or nested != (kind is Type.NUMS):
            problems.append((INVALID_PARAMETER, f"{key}: not a parameter of {spec.name}"))
            continue
        if nested and (not is_digits(parts[2]) or int(parts[2]) < 1):
            problems.append((INVALID_PARAMETER, f"{key}: list index must be 1 or more"))
            continue
        if not _valid_value(kind, value):
            problems.append((INVALID_PARAMETER, f"{key}: not a valid {kind} value: {value!r}"))
            continue
        item = items.setdefault(index, {})
        item[name] = f"{item[name]} {value}" if nested and name in item else value
    if spec.required:
        for index, item in sorted(items.items()):
            if spec.required not in item:
                problems.append(
                    (MISSING_PARAMETER, f"{spec.name}.{index}.{spec.required} is required")
                )
    return items


def _check_nics(nics: dict[int, dict[str, str]], problems: Problems) -> None:
    if not nics:
        problems.append(
            (MISSING_PARAMETER, "networkInterfaceList.N.networkInterfaceOrder is required")
        )
        return
    if len(nics) > MAX_NICS:
        problems.append((INVALID_PARAMETER, f"at most {MAX_NICS} network interfaces"))
        return
    orders = [int(item.get("networkInterfaceOrder", "0")) for item in nics.values()]
    if len(set(orders)) != len(orders) or 0 not in orders or max(orders) >= MAX_NICS:
        problems.append(
            (
                INVALID_PARAMETER,
                f"networkInterfaceOrder must be distinct, below {MAX_NICS}, and include 0",
            )
        )


def _check_image(p: Mapping[str, str], problems: Problems) -> None:
    """Exactly one image source; at most one spec parameter; each image's pairing rule."""
    images = [name for name in IMAGE_CHOICES if name in p]
    if len(images) != 1:
        problems.append(
            (INVALID_COMBINATION, f"exactly one of {', '.join(IMAGE_CHOICES)} is required")
        )
    specs = [name for name in SPEC_CHOICES if name in p]
    if len(specs) > 1:
        problems.append((INVALID_COMBINATION, f"{' and '.join(specs)} exclude each other"))
    for rule in IMAGE_RULES:
        if rule.image not in p:
            continue
        if rule.requires is not None and rule.requires not in p:
            problems.append((INVALID_COMBINATION, f"{rule.image} needs {rule.requires}"))
        if rule.forbids is not None and rule.forbids in p:
            problems.append((INVALID_COMBINATION, f"{rule.image} does not take {rule.forbids}"))


def _check_text(p: Mapping[str, str], problems: Problems) -> None:
    server_name = p.get("serverName")
    if server_name is not None and not valid_server_name(server_name):
        problems.append((INVALID_SERVER_NAME, f"invalid serverName: {server_name!r}"))
    if len(p.get("serverDescription", "").encode()) > MAX_DESCRIPTION_BYTES:
        problems.append(
            (INVALID_PARAMETER, f"serverDescription over {MAX_DESCRIPTION_BYTES} bytes")
        )
    login_key = p.get("loginKeyName")
    if login_key is not None and not 3 <= len(login_key) <= 30:
        problems.append((INVALID_PARAMETER, "loginKeyName must be 3-30 characters"))
    fee = p.get("feeSystemTypeCode")
    if fee is not None and fee not in FEE_SYSTEM_TYPE_CODES:
        problems.append((INVALID_PARAMETER, f"unknown feeSystemTypeCode: {fee!r}"))


def _check_counts(p: Mapping[str, str], problems: Problems) -> tuple[int, int]:
    count = int_param(p, "serverCreateCount", 1, 1, MAX_CREATE_COUNT, problems)
    start_no = int_param(p, "serverCreateStartNo", 1, 0, MAX_CREATE_SERIAL, problems)
    if count + start_no > MAX_CREATE_SERIAL and "serverCreateStartNo" in p:
        problems.append(
            (
                INVALID_PARAMETER,
                f"serverCreateCount + serverCreateStartNo must be <= {MAX_CREATE_SERIAL}",
            )
        )
    return count, start_no


def _never_taken(no: str) -> bool:
    return False


def validate_create(
    params: Mapping[str, str], catalog: Catalog, nic_taken: Callable[[str], bool] = _never_taken
) -> CreateRequest:
    """Check a createServerInstances call as NCP would; raise ApiError naming every problem."""
    p = {key: value for key, value in params.items() if value != ""}
    region = catalog.region_of(p)  # an unknown region is refused before anything else
    problems: Problems = []
    for name in ("vpcNo", "subnetNo"):
        if name not in p:
            problems.append((MISSING_PARAMETER, f"{name} is required"))
    for name, kind in SCALARS.items():
        if name in p and not _valid_value(kind, p[name]):
            problems.append((INVALID_PARAMETER, f"{name}: not a valid {kind} value"))
    lists = {name: collect_list(p, spec, problems) for name, spec in LISTS.items()}
    _check_nics(lists["networkInterfaceList"], problems)
    _check_image(p, problems)
    _check_text(p, problems)
    count, start_no = _check_counts(p, problems)
    raise_first(problems)
    placement = place(p, region, catalog, lists, count, nic_taken)
    return CreateRequest(
        count=count,
        start_no=start_no,
        name=p.get("serverName"),
        description=p.get("serverDescription", ""),
        vpc_no=p["vpcNo"],
        subnet_no=p["subnetNo"],
        protect=p.get("isProtectServerTermination") == "true",
        echo={key: value for key, value in p.items() if key in SCALARS},
        region=region.code,
        placement=placement,
    )
