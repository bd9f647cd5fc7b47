"""What only a create shows, from at most two servers, the smallest a row allows.

Listing lag, time to RUN, duplicate names, the name filter, and what the description's limit
counts.

``probe_row`` keeps of the row where a server goes and what it runs, and leaves out, by
``LEFT_OUT``, whatever costs money, outlives the server or could meet the row's own servers.
Then, each create recorded in the intent file before it is sent (``intent``):

1. the first server, sent with each of ``descriptions`` in turn until NCP takes one (a refused
   create makes nothing): which it takes says what the 1000 of its limit counts;
2. its listing lag: ``getServerInstanceList`` by number and by name every ``poll`` seconds from
   its answer, until both list it;
3. the name filter: a fragment from the middle of its name, then its start;
4. a second create under the same name: refused (the code is noted) or allowed (the second
   server, and the last);
5. its time to RUN, from its answer, as the listing shows it (a server already RUN when first
   listed booted within the lag: the figure is then the lag).

An answer lost (ambiguous) stops the sequence: nothing more is sent, and the removal looks the
name up until the lag window has passed. ``cleanup`` removes what was made.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from fleet.errors import ACCOUNT_LIMIT_CODES, AmbiguousError, NcpError, PermanentError
from fleet.ncp.client import CreateResult, NcpClient, ServerInstance
from fleet.ncp.parameters import MAX_DESCRIPTION_BYTES, PROBE_NAME_PREFIX
from fleet.ownership import ProbeMarker
from fleet.planned import PlannedServer
from fleet.watch.polling import Poller

from .intent import Intent, write_intent
from .profile import DescriptionUnit, DuplicateNames, NameFilter

__all__ = [
    "LEFT_OUT",
    "CreateProbe",
    "Description",
    "Findings",
    "ProbeRow",
    "descriptions",
    "probe_name",
    "probe_row",
]

# What of a row the probe leaves out, and why (first matching prefix); the rest is sent as is.
LEFT_OUT: Final = (
    ("serverName", "the probe names its servers itself"),
    ("serverDescription", "the probe's description carries its marker"),
    ("serverCreateCount", "one server per call"),
    ("serverCreateStartNo", "one server per call"),
    ("associateWithPublicIp", "a public IP is billed until returned"),
    ("isProtectServerTermination", "the probe must terminate what it made"),
    ("feeSystemTypeCode", "hourly, NCP's default: never a month's fee"),
    ("initScriptNo", "a row's script may act beyond its server"),
    ("blockStorageMappingList.", "no extra disks"),
    ("blockDevicePartitionList.", "no partitions"),
    ("networkInterfaceList.", "only the default interface, new, in the row's subnet"),
)
_NIC = "networkInterfaceList"
_NIC_KEPT = ("networkInterfaceOrder", "subnetNo", "accessControlGroupNoList")
_PLAIN = "fleet probe server, safe to delete"
_HANGUL = "프로브"  # three characters, nine bytes of UTF-8


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """The smallest server a row allows: where it was written, its region, what is sent."""

    source: str  # FILE:LINE
    region: str  # '' : NCP's default region
    params: tuple[tuple[str, str], ...]
    left_out: tuple[str, ...]  # the row's parameters not sent, each with why


def probe_row(spec: PlannedServer) -> ProbeRow:
    """Return the probe's version of a row's server (see ``LEFT_OUT``)."""
    kept: list[tuple[str, str]] = []
    left: dict[str, str] = {}
    for key, value in spec.params:
        why = next((why for prefix, why in LEFT_OUT if key.startswith(prefix)), None)
        if why is None:
            kept.append((key, value))
        elif not key.startswith(_NIC):
            left[key.split(".")[0]] = why
    nic = _default_nic(spec.params)
    if len(nic) < sum(1 for key, _ in spec.params if key.startswith(_NIC)):
        left[_NIC] = dict(LEFT_OUT)[f"{_NIC}."]
    return ProbeRow(
        f"{spec.file}:{spec.line}",
        spec.region,
        (*kept, *nic),
        tuple(f"{key}: {why}" for key, why in left.items()),
    )


def _default_nic(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the default interface's order, subnet and ACGs, as the call's first interface."""
    index = next(
        (key.split(".")[1] for key, value in params if key.endswith(".networkInterfaceOrder")
         and key.startswith(f"{_NIC}.") and value == "0"),
        None,
    )  # fmt: skip
    if index is None:
        return [(f"{_NIC}.1.networkInterfaceOrder", "0")]
    prefix = f"{_NIC}.{index}."
    return [
        (f"{_NIC}.1.{key[len(prefix) :]}", value)
        for key, value in params
        if key.startswith(prefix) and key[len(prefix) :].startswith(_NIC_KEPT)
    ]


def probe_name(run: str) -> str:
    """Return the name of a probe run's servers (both, when NCP allows a duplicate)."""
    return f"{PROBE_NAME_PREFIX}{run}-a"


@dataclass(frozen=True, slots=True)
class Description:
    """A description to create with, and what NCP taking it says of its limit."""

    text: str
    taken: DescriptionUnit | None
    meaning: str


def _fill(tail: str, piece: str) -> str:
    """Return the fewest ``piece`` that take a description past the limit's bytes."""
    room = MAX_DESCRIPTION_BYTES + 1 - len(f"{_PLAIN} {tail}".encode())
    return piece * math.ceil(room / len(piece.encode()))


def descriptions(marker: ProbeMarker) -> tuple[Description, ...]:
    """Return the descriptions tried in turn, each ending with the marker."""
    tail = f" {marker}"
    over_ascii = f"{_PLAIN} {_fill(tail, 'x')}{tail}"
    over_hangul = f"{_PLAIN} {_fill(tail, _HANGUL)}{tail}"
    size = f"{len(over_hangul)} characters in {len(over_hangul.encode())} bytes"
    return (
        Description(
            over_ascii,
            None,
            f"NCP took {len(over_ascii)} ASCII characters: its limit is not "
            f"{MAX_DESCRIPTION_BYTES}",
        ),
        Description(
            over_hangul,
            DescriptionUnit.CHARACTERS,
            f"NCP refused {len(over_ascii)} ASCII characters and took {size}: its limit "
            "counts characters",
        ),
        Description(
            f"{_PLAIN} {_HANGUL}{tail}",
            DescriptionUnit.BYTES,
            f"NCP refused {len(over_ascii)} ASCII characters and {size}, and took a short "
            "description holding Korean: its limit counts bytes",
        ),
        Description(
            f"{_PLAIN}{tail}",
            None,
            "NCP refused every description holding Korean, even a short one: the unit is unknown",
        ),
    )


@dataclass
class Findings:
    """What the creates measured (None: not measured), what they made, and notes."""

    created: list[str] = field(default_factory=list)
    list_lag: float | None = None
    boot: float | None = None
    duplicates: DuplicateNames | None = None
    name_filter: NameFilter | None = None
    unit: DescriptionUnit | None = None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Watch:
    """When the first server was seen, counted from its create's answer."""

    answered: float
    by_number: float | None = None
    by_name: float | None = None
    running: float | None = None
    listed: ServerInstance | None = None
    told: float = -math.inf


@dataclass
class CreateProbe:
    """One probe's creates (see the module's docstring)."""

    client: NcpClient
    row: ProbeRow
    intent: Intent
    intent_path: Path
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    poll: float
    lag_limit: float
    time_limit: float
    tell: Callable[[str], None]
    found: Findings = field(default_factory=Findings)

    @property
    def name(self) -> str:
        """Return the name of this run's servers."""
        return probe_name(self.intent.run)

    async def run(self) -> Findings:
        """Create, measure and leave the servers for the removal; return what was found."""
        began, found = self.clock(), self.found
        first = await self._first()
        if first is None:
            return found
        server, answered = first
        watch = _Watch(answered)
        await self._watch(server.instance_no, watch, _listed_both, self.lag_limit)
        self._lag(watch)
        if watch.by_number is None:
            return found  # never listed: nothing more to learn from it
        if watch.by_name is not None:
            found.name_filter, found.notes["name_filter"] = await self._filter()
        await self._duplicate()
        left = max(0.0, self.time_limit - (self.clock() - began))
        await self._watch(server.instance_no, watch, _running, left)
        self._boot(watch)
        return found

    async def _send(self, description: str) -> CreateResult:
        """Record the create, send it, record its answer; an ambiguous one stays unanswered."""
        self.intent = self.intent.sending(self.name, self.wall_clock())
        write_intent(self.intent_path, self.intent)
        params = [
            *self.row.params,
            ("serverCreateCount", "1"),
            ("serverName", self.name),
            ("serverDescription", description),
        ]
        try:
            result = await self.client.create_server(params)
        except AmbiguousError:  # it may have been made: the intent stays unanswered
            raise
        except NcpError:  # refused, or never processed: nothing was made
            self.intent = self.intent.answered()
            write_intent(self.intent_path, self.intent)
            raise
        numbers = tuple(s.instance_no for s in result.servers)
        self.intent = self.intent.answered(numbers)
        write_intent(self.intent_path, self.intent)
        self.found.created += numbers
        self.tell(f"created {', '.join(numbers)} ({self.name}) in region {self.row.region or '-'}")
        return result

    async def _first(self) -> tuple[ServerInstance, float] | None:
        """Create the first server, trying each description; return it and when it answered."""
        refusals: list[str] = []
        notes = self.found.notes
        for description in descriptions(ProbeMarker(self.intent.run)):
            try:
                result = await self._send(description.text)
            except PermanentError as exc:
                if exc.code in ACCOUNT_LIMIT_CODES:  # no description will pass it
                    notes["create"] = f"the account's limit refused the create: {exc}"
                    return None
                refusals.append(f"{exc.code or exc.status}: {exc.message}")
                continue
            except NcpError as exc:
                notes["create"] = f"the create failed, nothing more was sent: {exc}"
                return None
            answered = self.clock()
            if not result.servers:
                notes["create"] = "NCP answered the create with no server in it"
                return None
            self.found.unit = description.taken
            seen = f" (refused: {'; '.join(refusals)})" if refusals else ""
            notes["description_unit"] = description.meaning + seen
            return result.servers[0], answered
        notes["create"] = f"NCP refused every create from {self.row.source}: {refusals[-1]}"
        return None

    async def _watch(
        self, number: str, watch: _Watch, done: Callable[[_Watch], bool], limit: float
    ) -> None:
        """Read the server by number (and by name until listed so) until ``done`` or ``limit``."""

        async def round_() -> bool:
            at = self.clock() - watch.answered
            try:
                listed = await self.client.get_servers([number], region=self.row.region)
                named = [] if watch.by_name is not None else await self._named()
            except NcpError as exc:
                self.tell(f"a listing failed, looking again: {exc}")
                return False
            if listed and watch.by_number is None:
                watch.by_number, watch.listed = at, listed[0]
                self.tell(f"listed by number after {at:.1f} s")
            if named and watch.by_name is None:
                watch.by_name = at
                self.tell(f"listed by name after {at:.1f} s")
            if listed and listed[0].ready and watch.running is None:
                watch.running = at
                self.tell(f"RUN after {at:.1f} s")
            if self.clock() - watch.told >= 10.0:
                watch.told = self.clock()
                self.tell(f"waiting for {self.name}: {at:.0f} s since its create's answer")
            return done(watch)

        await Poller(self.poll, limit, self.clock, self.sleep).run(round_)

    async def _named(self) -> list[ServerInstance]:
        return await self.client.find_by_name(self.name, region=self.row.region)

    def _lag(self, watch: _Watch) -> None:
        found, notes = self.found, self.found.notes
        if watch.by_number is None or watch.by_name is None:
            notes["list_lag_s"] = (
                f"not listed {'by name' if watch.by_number is not None else 'at all'} within "
                f"{self.lag_limit:g} s"
            )
            return
        found.list_lag = max(watch.by_number, watch.by_name)
        notes["list_lag_s"] = (
            f"by number {watch.by_number:.1f} s, by name {watch.by_name:.1f} s (the later is "
            f"given); polled every {self.poll:g} s"
        )
        if watch.listed is not None:
            notes["description_round_trip"] = self._round_trip(watch.listed)

    def _round_trip(self, listed: ServerInstance) -> str:
        words = listed.description.split()
        if words and words[-1] == str(ProbeMarker(self.intent.run)):
            return f"listed back whole ({len(listed.description.encode())} bytes)"
        return (
            f"listed back changed: {len(listed.description)} characters, "
            f"{len(listed.description.encode())} bytes, the marker "
            f"{'kept' if str(ProbeMarker(self.intent.run)) in listed.description else 'lost'}"
        )

    def _boot(self, watch: _Watch) -> None:
        notes = self.found.notes
        if watch.running is None:
            notes["boot_s"] = "not RUN within the time limit"
            return
        self.found.boot = watch.running
        if watch.by_number is not None and watch.running <= watch.by_number:
            notes["boot_s"] = "already RUN when first listed: it booted within the listing lag"

    async def _lists(self, fragment: str) -> bool:
        found = await self.client.list_servers(region=self.row.region, name=fragment)
        return any(server.name == self.name for server in found)

    async def _filter(self) -> tuple[NameFilter | None, str]:
        """Return how serverName matches: a fragment from the middle of the name, then its start."""
        middle, start = self.name[len("fleet") : -2], self.name[:-2]
        try:
            if await self._lists(middle):
                return NameFilter.SUBSTRING, f"serverName={middle} listed {self.name}"
            if await self._lists(start):
                return None, (
                    f"serverName={start} listed {self.name} but {middle} did not: a prefix "
                    "match, neither exact nor substring"
                )
        except NcpError as exc:
            return None, f"the look-up failed: {exc}"
        return NameFilter.EXACT, f"serverName={middle} and ={start} listed nothing"

    async def _duplicate(self) -> None:
        """Send a second create under the first one's name; note what NCP does with it."""
        found, notes = self.found, self.found.notes
        try:
            result = await self._send(f"{_PLAIN} {ProbeMarker(self.intent.run)}")
        except PermanentError as exc:
            if exc.code in ACCOUNT_LIMIT_CODES:
                notes["duplicate_names"] = f"the account's limit refused it first: {exc}"
                return
            found.duplicates = DuplicateNames.REFUSED
            notes["duplicate_names"] = f"refused: HTTP {exc.status}, code {exc.code}: {exc.message}"
            return
        except NcpError as exc:
            notes["duplicate_names"] = f"the second create failed, nothing more was sent: {exc}"
            return
        found.duplicates = DuplicateNames.ALLOWED
        numbers = ", ".join(s.instance_no for s in result.servers)
        notes["duplicate_names"] = f"a second server was made under the same name: {numbers}"


def _listed_both(watch: _Watch) -> bool:
    return watch.by_number is not None and watch.by_name is not None


def _running(watch: _Watch) -> bool:
    return watch.running is not None
