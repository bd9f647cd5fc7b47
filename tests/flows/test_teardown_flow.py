"""The teardown-fleet flow's dry run: what it would take down, and what it would return with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from fleet.ncp.reads import Resource
from fleet.options import ProvisionOptions, TeardownOptions
from fleet.simulator import RunningSimulator
from fleet.teardown import TeardownReport
from flows.provision import provision_fleet
from flows.teardown import teardown_fleet
from tests.flows.opskit import keyed_simulator
from tests.functional.fleetkit import servers_by_name

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A simulator whose keys are in the environment, as a worker's would be."""
    with keyed_simulator(monkeypatch, latency=0.01) as running:
        yield running


async def test_a_dry_run_lists_each_server_with_its_public_ip_and_disk(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """The plan artifact names each server and what goes with it; nothing is touched."""
    path = tmp_path / "side.csv"
    path.write_text(
        "serverName,serverCreateCount,serverImageNo,serverSpecCode,vpcNo,subnetNo,"
        "associateWithPublicIp,blockStorageMappingList.1.order,"
        "blockStorageMappingList.1.blockStorageSize\n"
        "side,2,25495367,s2-g3,75001,75101,true,1,20\n"
    )
    ledger = str(tmp_path / "ledger.db")
    made = await provision_fleet(
        inventories=[str(path)],
        rollout="side",
        options=ProvisionOptions(endpoint=sim.url, ledger=ledger),
        return_state=True,
    )
    assert made.is_completed(), made.message
    before = sim.state()
    assert len(before["public_ips"]) == len(before["block_storages"]) == 2

    options = TeardownOptions(endpoint=sim.url, ledger=ledger, dry_run=True)
    state = await teardown_fleet(rollout="side", options=options, return_state=True)
    assert state.is_completed(), state.message
    assert await state.aresult() == TeardownReport()
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["side-teardown-plan"]))
        )
    assert found, "no teardown plan artifact"
    data: Any = found[0].data
    rows: list[dict[str, str]] = json.loads(data) if isinstance(data, str) else data
    assert sorted(r["serverName"] for r in rows) == ["side-001", "side-002"]
    for row in rows:
        returned = row["returned"].split(", ")
        assert len(returned) == 2, row
        assert returned[0].startswith(f"{Resource.PUBLIC_IP.value} "), row
        assert returned[1].startswith(f"{Resource.BLOCK_STORAGE.value} "), row
        assert all(r.endswith(f" of {row['serverName']}") for r in returned), row
    after = sim.state()  # a dry run stops, terminates and returns nothing
    assert servers_by_name(after) == servers_by_name(before)
    assert len(after["public_ips"]) == len(after["block_storages"]) == 2
    new = set(after["counters"]["by_action"]) - set(before["counters"]["by_action"])
    assert all(action.startswith("get") for action in new), new  # reads only
