"""A teardown returns what creates made beside the servers: public IPs and extra disks."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from fleet.ledger import Extra
from fleet.ledger.model import Record
from fleet.ncp.reads import BlockStorage, PublicIp, Resource
from fleet.plan.survey import survey
from fleet.planned import PlannedServer
from fleet.simulator import running_simulator
from fleet.teardown import ADOPTED_LEFT, ExtraStep, Made, extra_step, teardown, teardown_targets
from fleet.watch.readiness import wait_running
from tests.support.engine import OWNER, QUICK, client_for, open_ledger, roll_out, specs
from tests.support.simulator import sim_config

pytestmark = pytest.mark.anyio

PUBLIC_IP = (("associateWithPublicIp", "true"),)
DISKS = (
    ("blockStorageMappingList.1.order", "0"),  # the root disk: never an extra one
    ("blockStorageMappingList.2.order", "1"),
    ("blockStorageMappingList.2.blockStorageSize", "20"),
    ("blockStorageMappingList.3.order", "2"),
    ("blockStorageMappingList.3.snapshotInstanceNo", "75601"),
    ("blockStorageMappingList.4.order", "3"),
    ("blockStorageMappingList.4.noBlockStorage", "true"),  # makes no disk
)


def with_params(
    plan: list[PlannedServer], extra: tuple[tuple[str, str], ...]
) -> list[PlannedServer]:
    """Return the servers with parameters added to their creates."""
    return [PlannedServer(s.name, s.file, s.line, (*s.params, *extra)) for s in plan]


@pytest.mark.parametrize("outlives", [True, False], ids=["disks-outlive", "disks-go-along"])
async def test_teardown_returns_public_ips_and_extra_disks(tmp_path: Path, outlives: bool) -> None:
    """Nothing billed is left: IPs disassociated then deleted, disks deleted or gone along."""
    plan = with_params(specs(2, "ip"), PUBLIC_IP) + with_params(specs(2, "disk"), DISKS)
    plan += with_params(specs(1, "both"), PUBLIC_IP + DISKS) + specs(1, "bare")
    with running_simulator(sim_config(storage_outlives_server=outlives)) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "s", plan)
            await wait_running(client, book, "s", interval=0.1, time_limit=30)
            before = sim.state()
            assert len(before["public_ips"]) == 3
            assert len(before["block_storages"]) == 6
            targets = (await teardown_targets(client, book, "s")).targets
            report = await teardown(client, book, "s", targets, QUICK)
        after = sim.state()
        calls = [c["action"] for c in sim.calls()]
    assert after["servers"] == []
    assert after["public_ips"] == []
    assert after["block_storages"] == []
    kinds = sorted(r.kind for r in report.returned)
    assert kinds == [Resource.BLOCK_STORAGE] * 6 + [Resource.PUBLIC_IP] * 3
    assert report.extras_left == {}
    assert calls.count("deletePublicIpInstance") == 3
    assert calls.count("deleteBlockStorageInstances") == (1 if outlives else 0)
    last_terminate = max(i for i, a in enumerate(calls) if a == "terminateServerInstances")
    first_delete = calls.index("deletePublicIpInstance")
    assert first_delete > last_terminate  # returned once the servers were gone


async def test_teardown_takes_only_what_its_creates_made(tmp_path: Path) -> None:
    """An adopted server goes only when asked, and the public IP another's create made stays."""
    (theirs,) = with_params(specs(1, "theirs"), PUBLIC_IP)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db", "a")
        async with client_for(sim.url) as client:
            await client.create_server(theirs.params)  # someone else's, with its public IP
            found = await survey(client, book, "a", [theirs], owner=OWNER, adopt_existing=True)
            assert found.adopted == ("theirs-001",)
            # fleet did not make it: left alone, unless asked for.
            (left,) = (await teardown_targets(client, book, "a")).left
            assert (left.name, left.reason) == ("theirs-001", ADOPTED_LEFT)
            scope = await teardown_targets(client, book, "a", include_adopted=True)
            targets = scope.targets
            report = await teardown(client, book, "a", targets, QUICK)
        after = sim.state()
    assert report.terminated == ["theirs-001"]
    assert report.returned == []
    assert after["servers"] == []
    assert len(after["public_ips"]) == 1


async def test_a_teardown_stopped_before_returning_them_leaves_them_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its servers went and before their IPs did: a rerun finds them in the ledger."""
    module = sys.modules["fleet.teardown.takedown"]

    plan = with_params(specs(2, "ip"), PUBLIC_IP)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        async with client_for(sim.url) as client:
            await roll_out(client, book, "k", plan)
            await wait_running(client, book, "k", interval=0.1, time_limit=30)
            targets = (await teardown_targets(client, book, "k")).targets

            async def killed(*args: object, **kwargs: object) -> None:
                raise asyncio.CancelledError  # the process died here

            with monkeypatch.context() as patch:
                patch.setattr(module, "return_extras", killed)
                with pytest.raises(asyncio.CancelledError):
                    await teardown(client, book, "k", targets, QUICK)
            assert sim.state()["servers"] == [] and len(sim.state()["public_ips"]) == 2
            again = (await teardown_targets(client, book, "k")).targets
            assert again == []  # the servers are gone; only what they left is to return
            report = await teardown(client, book, "k", again, QUICK)
        after = sim.state()
    assert after["public_ips"] == []
    assert sorted(r.server for r in report.returned) == ["ip-001", "ip-002"]
    assert book.sync.extras("k") == []


def test_what_a_create_made_beside_its_server() -> None:
    """Order 0 is the root disk and noBlockStorage makes none; an adopted server made nothing."""
    fields = dict.fromkeys(Record.__dataclass_fields__)
    fields.update(adopted=False, sent_params='[["associateWithPublicIp", "true"]]')
    assert Made.by(Record(**fields)) == Made(True, 0)  # type: ignore[arg-type]
    disks = [list(p) for p in DISKS]
    fields.update(sent_params=str(disks).replace("'", '"'))
    assert Made.by(Record(**fields)) == Made(False, 2)  # type: ignore[arg-type]
    fields.update(adopted=True)
    assert Made.by(Record(**fields)) == Made(False, 0)  # type: ignore[arg-type]


IP = Extra(Resource.PUBLIC_IP, "20000001", "", "web-001", "101", "198.18.0.2")
DISK = Extra(Resource.BLOCK_STORAGE, "30000001", "", "web-001", "101", "data")


def _ip(server: str, op: str = "NULL") -> PublicIp:
    return PublicIp("20000001", {}, "198.18.0.2", server, op)


def _disk(server: str, op: str = "NULL") -> BlockStorage:
    return BlockStorage("30000001", {}, "data", server, "SVRBS", "ATTAC" if server else "CREAT", op)


@pytest.mark.parametrize(
    ("resource", "now", "step"),
    [
        (IP, None, ExtraStep.GONE),  # deleted, or never listed again
        (IP, _ip("", "DISAS"), ExtraStep.WAIT),  # an operation under way
        (IP, _ip("101"), ExtraStep.DISASSOCIATE),  # still tied to its own (gone) server
        (IP, _ip(""), ExtraStep.DELETE),
        (IP, _ip("999"), ExtraStep.LEAVE),  # someone tied it to another server
        (DISK, None, ExtraStep.GONE),  # went with its server, or deleted
        (DISK, _disk("101"), ExtraStep.DETACH),
        (DISK, _disk(""), ExtraStep.DELETE),
        (DISK, _disk("", "DETAC"), ExtraStep.WAIT),
        (DISK, _disk("999"), ExtraStep.LEAVE),
    ],
)
def test_next_step_table(resource: Extra, now: object, step: ExtraStep) -> None:
    """What to do with a public IP or disk follows from what NCP lists of it now."""
    assert extra_step(resource, now) == step  # type: ignore[arg-type]
