"""What creates make besides servers: public IPs and extra disks that stay billed, NICs taken."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleet.simulator import RunningSimulator
from tests.support.clock import FakeClock
from tests.support.simulator import BASE, IN_JPN, Api, api_on, server_error

CREATE = "createServerInstances"
BASE_CALL = {
    "vpcNo": "75001",
    "subnetNo": "75101",
    "networkInterfaceList.1.networkInterfaceOrder": "0",
    "serverImageNo": "23214590",
    "serverSpecCode": "s2-g3",
    "serverName": "side",
}
WITH_IP = {**BASE_CALL, "associateWithPublicIp": "true"}
DISKS = {
    **BASE_CALL,
    "blockStorageMappingList.1.order": "0",  # the base storage: no extra disk
    "blockStorageMappingList.1.blockStorageVolumeTypeCode": "CB1",
    "blockStorageMappingList.2.order": "1",
    "blockStorageMappingList.2.snapshotInstanceNo": "75601",  # 50 GiB
    "blockStorageMappingList.2.blockStorageName": "data",
    "blockStorageMappingList.3.order": "2",
    "blockStorageMappingList.3.blockStorageSize": "100",
    "blockStorageMappingList.3.blockStorageVolumeTypeCode": "CB2",
    "blockStorageMappingList.4.order": "3",
    "blockStorageMappingList.4.noBlockStorage": "true",
}


@pytest.fixture
def api(
    module_simulator: RunningSimulator, sim_clock: FakeClock, sim_wall: FakeClock
) -> Iterator[Api]:
    """Give each test the module's simulator, servers RUN at once, with nothing in it."""
    with api_on(module_simulator, sim_clock, sim_wall) as fresh_api:
        fresh_api.sim.configure(create_seconds=0, setup_seconds=0)
        yield fresh_api


def made(api: Api, params: dict[str, str]) -> dict[str, Any]:
    """Create one server; return its record."""
    server: dict[str, Any] = api.ok(CREATE, params)["serverInstanceList"][0]
    return server


def terminate(api: Api, no: str, **params: str) -> None:
    """Stop and terminate a RUN server, and let the termination finish."""
    nos = {"serverInstanceNoList.1": no, **params}
    api.ok("stopServerInstances", nos)
    api.clock.advance(BASE.stop_seconds)
    api.ok("terminateServerInstances", nos)
    api.clock.advance(BASE.terminate_seconds)


def ips(api: Api, **params: str) -> list[dict[str, Any]]:
    """Return getPublicIpInstanceList's items."""
    items: list[dict[str, Any]] = api.ok("getPublicIpInstanceList", params)["publicIpInstanceList"]
    return items


def disks(api: Api, **params: str) -> list[dict[str, Any]]:
    """Return getBlockStorageInstanceList's items."""
    body = api.ok("getBlockStorageInstanceList", params)
    items: list[dict[str, Any]] = body["blockStorageInstanceList"]
    return items


def billed(api: Api) -> tuple[int, int]:
    """Return how many public IPs and disks the account is billed for."""
    state = api.sim.state()
    return len(state["public_ips"]), len(state["block_storages"])


# -- public IPs --------------------------------------------------------------------------------


def test_associate_with_public_ip_makes_a_billed_ip(api: Api) -> None:
    """The server record shows its public IP, which getPublicIpInstanceList lists associated."""
    server = made(api, WITH_IP)
    (ip,) = ips(api)
    assert server["publicIpInstanceNo"] == ip["publicIpInstanceNo"]
    assert server["publicIp"] == ip["publicIp"] != ""
    assert (ip["serverInstanceNo"], ip["serverName"]) == (server["serverInstanceNo"], "side")
    assert ips(api, isAssociated="true") == [ip]
    assert ips(api, isAssociated="false") == []
    assert billed(api) == (1, 0)
    assert made(api, BASE_CALL)["publicIp"] == ""


def test_a_public_ip_is_returned_disassociate_first_then_delete(api: Api) -> None:
    """Deleting an associated IP is refused; disassociated, it deletes, and none is billed."""
    server = made(api, WITH_IP)
    no = server["publicIpInstanceNo"]
    assert server_error(api.call("deletePublicIpInstance", {"publicIpInstanceNo": no})) == "900030"
    api.ok(
        "disassociatePublicIpFromServerInstance",
        {"publicIpInstanceNo": no, "serverInstanceNo": server["serverInstanceNo"]},
    )
    assert api.status(server["serverInstanceNo"]) == ("RUN", "NULL")
    detail = api.ok("getServerInstanceDetail", {"serverInstanceNo": server["serverInstanceNo"]})
    assert detail["serverInstanceList"][0]["publicIp"] == ""
    twice = api.call("disassociatePublicIpFromServerInstance", {"publicIpInstanceNo": no})
    assert server_error(twice) == "900010"
    api.ok("deletePublicIpInstance", {"publicIpInstanceNo": no})
    assert billed(api) == (0, 0)
    assert server_error(api.call("deletePublicIpInstance", {"publicIpInstanceNo": no})) == "900012"


def test_a_public_ip_outlives_its_server(api: Api) -> None:
    """A terminated server's IP stays, unassociated and billed, until deleted."""
    server = made(api, WITH_IP)
    terminate(api, server["serverInstanceNo"])
    assert api.sim.state()["servers"] == []
    (ip,) = ips(api, isAssociated="false")
    assert ip["serverInstanceNo"] == ""
    assert billed(api) == (1, 0)
    api.ok("deletePublicIpInstance", {"publicIpInstanceNo": ip["publicIpInstanceNo"]})
    assert billed(api) == (0, 0)


def test_public_ips_belong_to_their_region(api: Api) -> None:
    """A JPN server's IP is listed and returned with regionCode=JPN only."""
    server = made(api, {**WITH_IP, **IN_JPN})
    no = server["publicIpInstanceNo"]
    assert ips(api) == []
    assert [ip["publicIpInstanceNo"] for ip in ips(api, regionCode="JPN")] == [no]
    missing = api.call("disassociatePublicIpFromServerInstance", {"publicIpInstanceNo": no})
    assert server_error(missing) == "900012"


def test_a_late_commits_ip_appears_with_its_server(api: Api) -> None:
    """A late_commit create makes its public IP only when the backend commits the server."""
    api.sim.faults({"action": CREATE, "fault": "late_commit"})
    assert api.call(CREATE, WITH_IP).status_code == 504
    assert ips(api) == [] and billed(api) == (0, 0)
    api.clock.advance(BASE.late_commit_seconds)
    assert len(ips(api)) == 1 and billed(api) == (1, 0)


# -- block storage -----------------------------------------------------------------------------


def test_block_storage_mappings_make_attached_disks(api: Api) -> None:
    """Orders 1+ make attached disks sized by snapshot or blockStorageSize; order 0 makes none."""
    server = made(api, DISKS)
    found = disks(api, serverInstanceNo=server["serverInstanceNo"])
    assert [(d["blockStorageName"], d["blockStorageSize"] >> 30) for d in found] == [
        ("data", 50),
        ("side-disk2", 100),
    ]
    assert {d["blockStorageInstanceStatus"]["code"] for d in found} == {"ATTAC"}
    assert [d["blockStorageVolumeType"]["code"] for d in found] == ["SSD", "CB2"]
    assert billed(api) == (0, 2)


def test_a_disk_is_returned_detach_first_then_delete(api: Api) -> None:
    """Deleting an attached disk is refused; detached, it deletes; detaching twice is refused."""
    server = made(api, DISKS)
    first, second = (d["blockStorageInstanceNo"] for d in disks(api))
    both = {"blockStorageInstanceNoList.1": first, "blockStorageInstanceNoList.2": second}
    assert server_error(api.call("deleteBlockStorageInstances", both)) == "900030"
    api.ok("detachBlockStorageInstances", {"blockStorageInstanceNoList.1": first})
    assert server_error(api.call("deleteBlockStorageInstances", both)) == "900030"  # none deleted
    assert len(disks(api)) == 2
    again = api.call("detachBlockStorageInstances", {"blockStorageInstanceNoList.1": first})
    assert server_error(again) == "900010"
    api.ok("detachBlockStorageInstances", {"blockStorageInstanceNoList.1": second})
    assert disks(api, serverInstanceNo=server["serverInstanceNo"]) == []
    api.ok("deleteBlockStorageInstances", both)
    assert disks(api) == [] and billed(api) == (0, 0)


@pytest.mark.parametrize(("outlives", "left"), [(True, 2), (False, 0)])
def test_extra_disks_outlive_the_server_as_configured(api: Api, outlives: bool, left: int) -> None:
    """With storage_outlives_server the disks stay detached and billed; without, they go too."""
    api.sim.configure(storage_outlives_server=outlives)
    server = made(api, DISKS)
    terminate(api, server["serverInstanceNo"])
    found = disks(api)
    assert len(found) == left and billed(api) == (0, left)
    assert {d["blockStorageInstanceStatus"]["code"] for d in found} <= {"CREAT"}


# -- network interfaces ------------------------------------------------------------------------

WITH_NIC = {
    **BASE_CALL,
    "networkInterfaceList.2.networkInterfaceOrder": "1",
    "networkInterfaceList.2.networkInterfaceNo": "75501",
}


def test_a_network_interface_goes_to_one_server_until_it_is_gone(api: Api) -> None:
    """A NIC a create names is taken: listed as used, refused to the next, free once terminated."""
    server = made(api, WITH_NIC)
    assert server["networkInterfaceNoList"] == ["75501"]
    (nic,) = api.ok("getNetworkInterfaceList", {"networkInterfaceNoList.1": "75501"})[
        "networkInterfaceList"
    ]
    assert (nic["instanceNo"], nic["networkInterfaceStatus"]["code"]) == (
        server["serverInstanceNo"],
        "USED",
    )
    assert server_error(api.call(CREATE, WITH_NIC)) == "900028"
    terminate(api, server["serverInstanceNo"])
    assert made(api, WITH_NIC)["networkInterfaceNoList"] == ["75501"]


def test_a_network_interface_cannot_go_to_several_servers_of_one_call(api: Api) -> None:
    """A networkInterfaceNo with serverCreateCount over 1 is refused whole."""
    assert server_error(api.call(CREATE, {**WITH_NIC, "serverCreateCount": "2"})) == "900028"
    assert api.sim.state()["servers"] == []


# -- a teardown's proof ------------------------------------------------------------------------


def test_a_complete_teardown_leaves_nothing_billed(api: Api) -> None:
    """Terminate, then disassociate and delete the IP and delete the disks: nothing is billed."""
    server = made(api, {**DISKS, "associateWithPublicIp": "true"})
    terminate(api, server["serverInstanceNo"])
    assert billed(api) == (1, 2)
    for ip in ips(api):
        api.ok("deletePublicIpInstance", {"publicIpInstanceNo": ip["publicIpInstanceNo"]})
    nos = {
        f"blockStorageInstanceNoList.{i}": d["blockStorageInstanceNo"]
        for i, d in enumerate(disks(api), 1)
    }
    api.ok("deleteBlockStorageInstances", nos)
    state = api.sim.state()
    assert (state["servers"], state["public_ips"], state["block_storages"]) == ([], [], [])
