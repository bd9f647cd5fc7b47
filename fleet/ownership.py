"""Which servers a rollout may call its own: proof, never a name and a time.

NCP's create has no client token, so every create carries one of ours in ``serverDescription``
(which NCP returns in every listing): a **create marker**, the last word of the description,

    fleet-<rollout id>-<run>-<attempt>      e.g.  fleet-k3v9x2m7q1-5f3a9c2e-1

- ``rollout id``: 10 letters and digits, made once per rollout and kept in its ledger;
- ``run``: 8 hex digits, made once per run (a run's rollback takes only what it made);
- ``attempt``: the ledger's attempt count of that server's row at that send.

Together the run and the attempt are a nonce: no two sends carry the same marker. Nothing in it is
secret, and it is ASCII letters, digits and hyphens only. The user's own description stays as
written, before it, separated by one space.

``fleet probe``'s own servers carry a **probe marker** in the same place instead,

    fleetprobe-<run>                        e.g.  fleetprobe-5f3a9c2e

which never parses as a create marker (another prefix, no attempt), and ``judge`` holds a server
carrying one to be no rollout's (its number aside: a recorded number outranks any description).
Their names begin ``fleetprobe-``, which no inventory may plan.

A server found under a name is this rollout's when ``judge`` says so, by the first matching row
of ``GROUNDS``. Every path that settles, reconciles, flags a duplicate, or stops, terminates,
resizes or replaces a server asks ``judge`` first; a server it does not own is left alone, with
the reason.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fleet.ledger import Found, Record
from fleet.ncp.client import ServerInstance
from fleet.ncp.parameters import MARKER_BYTES

__all__ = [
    "CLAIM_HORIZON",
    "CLOCK_SKEW",
    "GROUNDS",
    "MARKER_BYTES",
    "Evidence",
    "Ground",
    "Judgement",
    "Marker",
    "ProbeMarker",
    "describe",
    "epoch",
    "found_from",
    "in_send_window",
    "judge",
    "new_rollout_id",
    "new_run_tag",
    "probe_owns",
]

# A marker is 6 + 10 + 1 + 8 + 1 + attempt digits bytes (about 30): MARKER_BYTES (the room the
# inventory's check leaves it, with the space before it) holds one whatever the attempt.

_ALPHABET = string.ascii_lowercase + string.digits
_MARKER = re.compile(r"fleet-([a-z0-9]{10})-([0-9a-f]{8})-([0-9]{1,9})")
_PROBE_MARKER = re.compile(r"fleetprobe-([0-9a-f]{8})")


# A claim's create goes out within this many seconds of the claim's stamp, or the claim is
# stamped again first (the engine claims a few servers ahead of their creates, several in one
# commit). So a create recorded as sent at T left between T and T + CLAIM_HORIZON.
CLAIM_HORIZON = 1.0
# How far NCP's createDate (its clock, second resolution) may be from our send times.
CLOCK_SKEW = 120.0


def epoch(stamp: str | None) -> float | None:
    """Return an ISO 8601 time (the ledger's, or NCP's createDate) as epoch seconds."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def in_send_window(record: Record, server: ServerInstance, margin: float) -> bool:
    """Whether NCP made this server while this row's creates were going out (rows before markers).

    Sent at T, a create left between T and T + CLAIM_HORIZON; NCP's clock may be CLOCK_SKEW off.
    """
    made = epoch(server.create_date)
    first, last = epoch(record.first_sent_at), epoch(record.sent_at)
    if made is None or first is None or last is None:
        return False
    return first - CLOCK_SKEW <= made <= last + CLAIM_HORIZON + margin + CLOCK_SKEW


def new_rollout_id() -> str:
    """Return a new rollout's marker id: 10 random lower-case letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))


def new_run_tag() -> str:
    """Return a new run's tag: 8 random hex digits."""
    return secrets.token_hex(4)


@dataclass(frozen=True, slots=True)
class Marker:
    """A create marker: which rollout sent the create, in which run, at which attempt."""

    rollout_id: str
    run: str
    attempt: int

    def __str__(self) -> str:
        return f"fleet-{self.rollout_id}-{self.run}-{self.attempt}"

    @classmethod
    def parse(cls, description: str | None) -> Marker | None:
        """Return the marker a server's description ends with, if it carries one."""
        words = (description or "").split()
        found = _MARKER.fullmatch(words[-1]) if words else None
        if found is None:
            return None
        return cls(found.group(1), found.group(2), int(found.group(3)))

    @classmethod
    def of(cls, server: ServerInstance) -> Marker | None:
        """Return the marker of a server NCP listed, if it carries one."""
        return cls.parse(server.description)


@dataclass(frozen=True, slots=True)
class ProbeMarker:
    """The marker of a server ``fleet probe`` made: which probe run made it."""

    run: str

    def __str__(self) -> str:
        return f"fleetprobe-{self.run}"

    @classmethod
    def parse(cls, description: str | None) -> ProbeMarker | None:
        """Return the probe marker a description ends with, if it carries one."""
        words = (description or "").split()
        found = _PROBE_MARKER.fullmatch(words[-1]) if words else None
        return cls(found.group(1)) if found else None

    @classmethod
    def of(cls, server: ServerInstance) -> ProbeMarker | None:
        """Return the probe marker of a server NCP listed, if it carries one."""
        return cls.parse(server.description)


def probe_owns(server: ServerInstance, run: str, numbers: Collection[str]) -> bool:
    """Return whether a probe run may remove a server: its number or its marker is that run's."""
    marker = ProbeMarker.of(server)
    return server.instance_no in numbers or (marker is not None and marker.run == run)


def describe(description: str, marker: Marker) -> str:
    """Return the description a create sends: the user's own, as written, then the marker."""
    return f"{description} {marker}" if description else str(marker)


class Ground(StrEnum):
    """On what ground a server is this rollout's, or why it is not."""

    RECORDED = "its number is recorded in this rollout's ledger"
    ADOPTED = "adopted: recorded, but fleet did not create it"
    MARKED = "it carries this rollout's create marker"
    SENT_BEFORE_MARKERS = "sent before create markers, and made while its creates went out"
    OTHER_MARKER = "it carries another rollout's create marker"
    PROBE = "it carries fleet probe's marker: a probe's server, never a rollout's"
    UNMARKED = "no create marker of this rollout, and its number is not recorded"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a rollout knows that bears on one server found under one of its names."""

    rollout_id: str | None  # the rollout's marker id (None: a ledger from before markers)
    recorded: Mapping[str, str]  # instance number -> origin (answer, lookup, lost, adopted)
    legacy: bool = False  # the row's last create went out before markers
    in_window: bool = False  # made while that row's creates went out (legacy rows only)


@dataclass(frozen=True, slots=True)
class Judgement:
    """Whether a server is this rollout's, on which ground, and whether it was made by fleet."""

    ours: bool
    ground: Ground
    marker: Marker | None = None

    @property
    def made_by_us(self) -> bool:
        """Whether fleet created it (not merely adopted it)."""
        return self.ours and self.ground != Ground.ADOPTED


def _recorded(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return s.instance_no in e.recorded and e.recorded[s.instance_no] != "adopted"


def _adopted(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return e.recorded.get(s.instance_no) == "adopted"


def _marked(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return m is not None and e.rollout_id is not None and m.rollout_id == e.rollout_id


def _probe(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return ProbeMarker.of(s) is not None


def _other_marker(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return m is not None


def _legacy(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return e.legacy and e.in_window


def _always(s: ServerInstance, e: Evidence, m: Marker | None) -> bool:
    return True


Holds = Callable[[ServerInstance, Evidence, "Marker | None"], bool]

# First match wins. A recorded number outranks any description: a user may edit it by hand.
GROUNDS: tuple[tuple[Holds, Ground, bool], ...] = (
    (_recorded, Ground.RECORDED, True),
    (_probe, Ground.PROBE, False),  # before adoption: a probe's server is never taken over
    (_adopted, Ground.ADOPTED, True),
    (_marked, Ground.MARKED, True),
    (_other_marker, Ground.OTHER_MARKER, False),  # another rollout's (or run's ledger's) create
    (_legacy, Ground.SENT_BEFORE_MARKERS, True),  # the rule before markers, for such rows only
    (_always, Ground.UNMARKED, False),
)


def judge(server: ServerInstance, evidence: Evidence) -> Judgement:
    """Return whether a server found under one of the rollout's names is the rollout's own."""
    marker = Marker.of(server)
    for holds, ground, ours in GROUNDS:
        if holds(server, evidence, marker):
            return Judgement(ours, ground, marker)
    raise AssertionError("the last rule always matches")  # pragma: no cover


def found_from(
    servers: Sequence[ServerInstance], region: str, vpc: str, rollout_id: str | None = None
) -> list[Found]:
    """Return NCP's servers as the ledger records them, in the region and VPC they were sent to.

    A server carrying the create marker of ``rollout_id`` is recorded with the run that made it.
    """
    out = []
    for s in servers:
        marker = Marker.of(s)
        run = marker.run if marker and rollout_id and marker.rollout_id == rollout_id else None
        out.append(
            Found(s.instance_no, region, s.vpc_no or vpc, s.status.value, s.create_date, s.raw, run)
        )
    return out
