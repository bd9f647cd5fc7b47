"""The proof rule: which servers under a rollout's names are its own, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.ncp.client import ServerInstance
from fleet.ncp.parameters import MARKER_BYTES
from fleet.ownership import Evidence, Ground, Marker, describe, judge

OURS = "k3v9x2m7q1"
THEIRS = "z9y8x7w6v5"


def server(no: str = "101", description: str = "") -> ServerInstance:
    item: dict[str, Any] = {
        "serverInstanceNo": no,
        "serverName": "web-001",
        "serverDescription": description,
        "serverInstanceStatus": {"code": "RUN"},
    }
    return ServerInstance.from_api(item)


MARK = f"fleet-{OURS}-5f3a9c2e-2"
OTHER = f"fleet-{THEIRS}-00c0ffee-1"

# (description, recorded numbers and origins, legacy row, made in its window) -> judgement
TABLE = [
    (MARK, {}, False, False, True, Ground.MARKED),
    (f"web tier {MARK}", {}, False, False, True, Ground.MARKED),
    (OTHER, {}, False, False, False, Ground.OTHER_MARKER),
    ("", {}, False, False, False, Ground.UNMARKED),
    ("made by hand", {}, False, True, False, Ground.UNMARKED),  # a window proves nothing now
    ("", {"101": "answer"}, False, False, True, Ground.RECORDED),
    # Edited by hand after its number was recorded: still ours, by its number.
    (OTHER, {"101": "lookup"}, False, False, True, Ground.RECORDED),
    ("", {"101": "adopted"}, False, False, True, Ground.ADOPTED),
    ("", {"999": "answer"}, False, False, False, Ground.UNMARKED),  # another number recorded
    # A row last sent before markers: the old rule, made while its creates went out.
    ("", {}, True, True, True, Ground.SENT_BEFORE_MARKERS),
    ("", {}, True, False, False, Ground.UNMARKED),
    (OTHER, {}, True, True, False, Ground.OTHER_MARKER),  # another rollout's, whenever made
    (f"{MARK} and more words", {}, False, False, False, Ground.UNMARKED),  # not the last word
]


@pytest.mark.parametrize(("description", "recorded", "legacy", "window", "ours", "ground"), TABLE)
def test_judge(
    description: str,
    recorded: dict[str, str],
    legacy: bool,
    window: bool,
    ours: bool,
    ground: Ground,
) -> None:
    """Each row of the proof rule, first match first."""
    judgement = judge(server(description=description), Evidence(OURS, recorded, legacy, window))
    assert (judgement.ours, judgement.ground) == (ours, ground)


def test_an_adopted_server_is_ours_but_not_made_by_us() -> None:
    """Adopted servers belong to the rollout, but fleet did not create them."""
    judgement = judge(server(), Evidence(OURS, {"101": "adopted"}))
    assert judgement.ours and not judgement.made_by_us


def test_a_rollout_without_an_id_owns_only_what_it_recorded() -> None:
    """A ledger that never sent with markers takes no marked server for its own."""
    assert not judge(server(description=MARK), Evidence(None, {})).ours


def test_the_marker_follows_the_users_description_and_reads_back() -> None:
    """The user's text is kept as written; the marker is the last word, ASCII, and fits."""
    marker = Marker(OURS, "5f3a9c2e", 123456789)
    text = describe("déjà vu, team A", marker)
    assert text.startswith("déjà vu, team A ")
    assert Marker.parse(text) == marker
    assert Marker.parse(describe("", marker)) == marker
    assert str(marker).isascii() and len(f" {marker}".encode()) <= MARKER_BYTES
