"""ServerInstance read from NCP's records: what it runs, and records that lack fields."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.ncp.client import ServerInstance
from fleet.states import Operation, ServerStatus

LISTED = {
    "serverInstanceNo": "10000001",
    "serverName": "web-001",
    "serverDescription": "web tier",
    "serverInstanceStatus": {"code": "NSTOP"},
    "serverInstanceOperation": {"code": "CHNG"},
    "serverImageNo": "16187005",
    "serverImageProductCode": "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050",
    "serverSpecCode": "s2-g2-s50",
    "serverProductCode": "SVR.VSVR.STAND.C002.M008.NET.SSD.B050.G002",
}


def test_codes_and_description_come_from_the_listing() -> None:
    """The spec, product, image product and image codes and the description are NCP's fields."""
    server = ServerInstance.from_api(LISTED)
    assert (server.status, server.operation) == (ServerStatus.NSTOP, Operation.CHNG)
    assert server.spec_code == "s2-g2-s50"
    assert server.product_code == "SVR.VSVR.STAND.C002.M008.NET.SSD.B050.G002"
    assert server.image_product_code == "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050"
    assert server.image_no == "16187005"
    assert server.description == "web tier"
    assert "web tier" not in repr(server)  # a user's text, kept out of log lines


@pytest.mark.parametrize(
    "item",
    [
        {"serverInstanceNo": "10000001"},
        {"serverInstanceNo": "10000001", **dict.fromkeys(LISTED.keys() - {"serverInstanceNo"})},
    ],
    ids=["absent", "null"],
)
def test_missing_or_null_fields_read_as_empty(item: dict[str, Any]) -> None:
    """A record without the codes (or with nulls) still reads: every code and text is ''."""
    server = ServerInstance.from_api(item)
    assert server.instance_no == "10000001"
    fields = (server.spec_code, server.product_code, server.image_product_code, server.image_no)
    assert fields == ("", "", "", "")
    assert (server.description, server.name) == ("", "")
