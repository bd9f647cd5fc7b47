"""NCP's records read as data: ServerInstance (what it runs, records that lack fields), reads."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.ncp.client import ServerInstance
from fleet.ncp.reads import READS, BlockStorage, PublicIp, Resource
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


def test_every_kind_of_object_reads_by_its_declared_fields() -> None:
    """A read's records become typed objects by one reader: codes' codes, defaults, raw kept."""
    record = {
        "publicIpInstanceNo": "20000001",
        "publicIp": "198.18.0.2",
        "serverInstanceNo": "10000001",
        "publicIpInstanceOperation": None,  # NCP says null where nothing is under way
    }
    ip = READS[Resource.PUBLIC_IP].item(record)
    assert isinstance(ip, PublicIp)
    assert (ip.key, ip.ip, ip.server_no, ip.operation) == (
        "20000001",
        "198.18.0.2",
        "10000001",
        "NULL",
    )
    assert ip.raw == record  # nothing NCP returned is lost
    region = READS[Resource.REGION].item({"regionCode": "KR", "regionName": "Korea"})
    assert (region.key, region.raw["regionName"]) == ("KR", "Korea")
    disk = {"blockStorageInstanceNo": "3", "blockStorageType": {"code": "SVRBS"}}
    storage = READS[Resource.BLOCK_STORAGE].item(disk)
    assert isinstance(storage, BlockStorage) and storage.type == "SVRBS"
