"""A probe's servers and a rollout's never meet: markers, the proof rule, the names planned."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.ncp.client import ServerInstance
from fleet.ownership import Evidence, Ground, Marker, ProbeMarker, judge, probe_owns
from tests.support.inventory import problems_of, table

ROLLOUT = "k3v9x2m7q1"
PROBE = "fleetprobe-5f3a9c2e"
CREATE = f"fleet-{ROLLOUT}-5f3a9c2e-2"


def server(
    description: str, no: str = "101", name: str = "fleetprobe-5f3a9c2e-a"
) -> ServerInstance:
    item: dict[str, Any] = {
        "serverInstanceNo": no,
        "serverName": name,
        "serverDescription": description,
        "serverInstanceStatus": {"code": "RUN"},
    }
    return ServerInstance.from_api(item)


@pytest.mark.parametrize(
    ("description", "probe", "create"),
    [
        (f"fleet probe server, safe to delete {PROBE}", ProbeMarker("5f3a9c2e"), None),
        (CREATE, None, Marker(ROLLOUT, "5f3a9c2e", 2)),
        ("fleet-probe-5f3a9c2e", None, None),  # neither: the probe's has no hyphen after fleet
        (f"{PROBE}-1", None, None),  # an attempt makes it no marker of either
        (f"{PROBE} trailing words", None, None),  # a marker is the last word only
        ("fleetprobe-5F3A9C2E", None, None),  # lower-case hex only
    ],
)
def test_a_probe_marker_is_never_read_as_a_create_marker(description, probe, create):
    """Each description parses as the marker it carries, and never as the other kind."""
    assert ProbeMarker.parse(description) == probe
    assert Marker.parse(description) == create


# Whatever a rollout knows of it, a probe's server is not the rollout's: only its number,
# recorded from the rollout's own create answer, outranks the marker (as for any description).
EVIDENCE = [
    (Evidence(ROLLOUT, {}), False, Ground.PROBE),
    (Evidence(ROLLOUT, {"101": "adopted"}), False, Ground.PROBE),  # never adopted either
    (Evidence(ROLLOUT, {}, legacy=True, in_window=True), False, Ground.PROBE),
    (Evidence(None, {}, legacy=True, in_window=True), False, Ground.PROBE),
    (Evidence(ROLLOUT, {"101": "answer"}), True, Ground.RECORDED),
]


@pytest.mark.parametrize(("evidence", "ours", "ground"), EVIDENCE)
def test_a_rollout_never_takes_a_probe_server_as_its_own(evidence, ours, ground):
    """judge: a server carrying the probe's marker is no rollout's, adopted or sent in a window."""
    judgement = judge(server(f"fleet probe server {PROBE}"), evidence)
    assert (judgement.ours, judgement.ground) == (ours, ground)


@pytest.mark.parametrize(
    ("description", "no", "numbers", "owned"),
    [
        (PROBE, "101", (), True),  # this run's marker
        ("fleetprobe-00c0ffee", "101", (), False),  # another probe run's
        (CREATE, "101", (), False),  # a rollout's
        ("edited by hand", "101", ("101",), True),  # its number came back to this run
        ("", "102", ("101",), False),
    ],
)
def test_a_probe_run_removes_only_what_it_can_prove_it_made(description, no, numbers, owned):
    """probe_owns: this run's marker, or a number NCP answered to this run."""
    assert probe_owns(server(description, no), "5f3a9c2e", numbers) is owned


def test_no_inventory_may_plan_a_probe_name(write_file):
    """A row named fleetprobe-... is refused, so no rollout looks under a probe's name."""
    path = write_file(table({"serverName": "fleetprobe-1a2b3c4d-a"}, {"serverName": "web"}))
    found = problems_of(path)
    assert len(found) == 1 and "fleet probe's own servers" in found[0] and ":2:" in found[0]
