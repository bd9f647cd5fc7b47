"""One probe of an account, as a table of contents.

Keys and account -> an earlier probe's leftovers -> clock offset -> read rate and burst -> (with
a row) creates, then their removal -> the profile. It reads only, unless given a row: then it
creates at most two servers and removes them before it returns. Every create is recorded in the
intent file before it is sent, so a probe killed part-way leaves a record, and the next probe
(of either kind) removes what it finds from it before measuring anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet.errors import ConfigError, NcpError
from fleet.ncp.client import NcpClient
from fleet.ncp.reads import Resource, read
from fleet.options import ProbeOptions
from fleet.ownership import new_run_tag

from .account import Account, survey_account
from .cleanup import Removal, Remover
from .clock import Offset, sample_offset
from .create import CreateProbe, Findings, ProbeRow, probe_name
from .intent import Intent, clear_intent, read_intent
from .profile import FIGURES, Profile
from .rate import REST, RateFinding, RateProbe

__all__ = ["CREATE_FIGURES", "RATE_FIGURES", "ProbeResult", "Seams", "probe"]

RATE_FIGURES = ("rate_per_s", "burst", "throttle")
CREATE_FIGURES = ("list_lag_s", "boot_s", "duplicate_names", "name_filter", "description_unit")


@dataclass(frozen=True, slots=True)
class Seams:
    """What a probe takes from outside: its clocks, its sleep, and where progress goes."""

    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    tell: Callable[[str], None] = lambda line: None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A probe's profile, the figures it set out to measure, and what it could not remove."""

    profile: Profile
    attempted: tuple[str, ...]
    left: Mapping[str, str]  # instance number (or name) -> why it is still there
    account: Account

    @property
    def unmeasured(self) -> tuple[str, ...]:
        """Return the figures set out for that came back null."""
        return tuple(f for f in self.attempted if self.profile.figure(f) is None)

    @property
    def complete(self) -> bool:
        """Whether every figure set out for was measured and nothing was left behind."""
        return not self.unmeasured and not self.left


async def probe(
    client: NcpClient,
    options: ProbeOptions,
    row: ProbeRow | None = None,
    seams: Seams | None = None,
) -> ProbeResult:
    """Probe the account the client reaches; with a row, create and remove at most two servers.

    Raises:
        ConfigError: keys refused, an endpoint that does not answer, or an earlier probe's
            record of another endpoint while creating.
        NcpError: a read NCP failed past its retries, before anything was measured.

    """
    seams = seams or Seams()
    began = seams.clock()
    measured_at = datetime.fromtimestamp(seams.wall_clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    account = await survey_account(client)
    seams.tell(f"keys work at {client.endpoint}; regions: {', '.join(account.regions)}")
    notes = {"regions": ", ".join(account.regions), "servers": account.note}
    earlier = await _leftovers(client, options, seams, notes, creating=row is not None)
    offset = await sample_offset(
        lambda: _read_dated(client), wall_clock=seams.wall_clock, sleep=seams.sleep
    )
    rate = await _rate(client, options, seams) if options.rate_probe else None
    found, made = None, None
    if row is not None and (earlier is None or not earlier.left):
        if rate is not None:
            await seams.sleep(REST)  # the rate left the bucket empty: the creates need a token
        found, made = await _creates(client, options, row, seams)
    figures = _figures(offset, rate, found)
    notes.update(_notes(options, row, offset, rate, found))
    for figure in _attempted(options, row):  # every null figure says why
        if figures[figure] is None and figure not in notes:
            notes[figure] = f"not measured: {notes.get('create') or 'see the other notes'}"
    left = {**(earlier.left if earlier else {}), **(made.left if made else {})}
    if left:
        notes["left"] = f"not removed: {_listed(left)}; the next probe removes them"
    calls = sum(client.stats.calls.values())
    notes["probe"] = f"{calls} calls in {seams.clock() - began:.1f} s"
    profile = Profile(
        measured_at=measured_at,
        endpoint=client.endpoint,
        created=tuple(found.created) if found else (),
        removed=(*(earlier.removed if earlier else ()), *(made.removed if made else ())),
        notes={k: v for k, v in notes.items() if v},
        **figures,
    )
    return ProbeResult(profile, _attempted(options, row), left, account)


async def _read_dated(client: NcpClient) -> float | None:
    """Make one signed read; return the Date its answer carried, if any (the client's clock)."""
    before = client.ncp_clock.dated
    await read(client, Resource.REGION)
    return client.ncp_clock.last_date if client.ncp_clock.dated > before else None


async def _leftovers(
    client: NcpClient,
    options: ProbeOptions,
    seams: Seams,
    notes: dict[str, str],
    *,
    creating: bool,
) -> Removal | None:
    """Remove what an earlier probe recorded and may have left; None when it left no record."""
    intent = read_intent(options.intent)
    if intent is None:
        return None
    if intent.endpoint != client.endpoint:
        text = (
            f"{options.intent} records servers an earlier probe made at {intent.endpoint}: probe "
            "that endpoint to remove them"
        )
        if creating:
            raise ConfigError(f"{text}; nothing is created before they are")
        notes["leftovers"] = text
        return None
    known = ", ".join(intent.numbers) or "numbers unknown"
    seams.tell(f"removing what probe run {intent.run} left ({known}), from {options.intent}")
    left = max(0.0, intent.sent_at + intent.window - seams.wall_clock())
    removal = await _remove(client, options, seams, intent, left)
    notes["leftovers"] = f"removed {len(removal.removed)} servers an earlier probe left"
    return removal


async def _remove(
    client: NcpClient, options: ProbeOptions, seams: Seams, intent: Intent, window: float
) -> Removal:
    """Remove an intent's servers: one not listed yet (or lost) may show for ``window`` s more."""
    remover = Remover(
        client,
        intent.run,
        intent.region,
        seams.clock,
        seams.sleep,
        options.poll_interval,
        seams.tell,
    )
    names = intent.names if intent.unanswered else ()
    removal = await remover.remove(
        intent.numbers, names, seams.clock() + window, options.time_limit
    )
    if not removal.left:
        clear_intent(options.intent)
    return removal


async def _rate(client: NcpClient, options: ProbeOptions, seams: Seams) -> RateFinding:
    """Measure the read rate and burst (see ``rate``)."""
    seams.tell(f"measuring the read rate and burst: {options.max_reads} reads at most")

    async def read_once() -> NcpError | None:
        try:
            await client.send_once("getRegionList", [])
        except NcpError as exc:
            return exc
        return None

    probe = RateProbe(
        read_once,
        clock=seams.clock,
        sleep=seams.sleep,
        max_calls=options.max_reads,
        max_seconds=options.rate_seconds,
    )
    return await probe.run()


async def _creates(
    client: NcpClient, options: ProbeOptions, row: ProbeRow, seams: Seams
) -> tuple[Findings, Removal]:
    """Create, measure, then remove what was made (see ``create`` and ``cleanup``)."""
    run = new_run_tag()
    intent = Intent(client.endpoint, run, row.region, window=options.lag_limit)
    seams.tell(f"creating from {row.source} as {probe_name(run)} (at most two servers)")
    creator = CreateProbe(
        client,
        row,
        intent,
        Path(options.intent),
        seams.clock,
        seams.wall_clock,
        seams.sleep,
        options.poll_interval,
        options.lag_limit,
        options.time_limit,
        seams.tell,
    )
    found = await creator.run()
    final = creator.intent
    window = max(0.0, final.sent_at + final.window - seams.wall_clock())
    return found, await _remove(client, options, seams, final, window)


def _figures(
    offset: Offset | None, rate: RateFinding | None, found: Findings | None
) -> dict[str, Any]:
    """Return the profile's figures from what each step measured (None where it did not)."""
    figures: dict[str, Any] = dict.fromkeys(FIGURES)
    if offset is not None:
        figures["clock_offset_s"] = round(offset.seconds, 3)
    if rate is not None:
        figures["rate_per_s"] = round(rate.rate, 2) if rate.rate is not None else None
        figures["burst"], figures["throttle"] = rate.burst, rate.throttle
    if found is not None:
        figures["list_lag_s"] = _rounded(found.list_lag)
        figures["boot_s"] = _rounded(found.boot)
        figures["duplicate_names"] = found.duplicates
        figures["name_filter"] = found.name_filter
        figures["description_unit"] = found.unit
    return figures


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _notes(
    options: ProbeOptions,
    row: ProbeRow | None,
    offset: Offset | None,
    rate: RateFinding | None,
    found: Findings | None,
) -> dict[str, str]:
    """Return the notes: how each figure was measured, or why it is null."""
    notes: dict[str, str] = {}
    if offset is None:
        notes["clock_offset_s"] = "NCP's answers carried no Date header"
    else:
        notes["clock_offset_s"] = (
            f"NCP's clock minus this machine's, within {offset.within:.2f} s "
            f"({offset.samples} answers' Date)"
        )
    if rate is None:
        notes.update(dict.fromkeys(RATE_FIGURES, "not measured: --no-rate-probe"))
    else:
        notes.update(rate.notes)
    if found is None:
        why = (
            "not measured: needs --create ROW"
            if row is None
            else "not measured: an earlier probe's servers are not all removed; nothing created"
        )
        notes.update(dict.fromkeys(CREATE_FIGURES, why))
    else:
        notes.update(found.notes)
        if row is not None and row.left_out:
            notes["row"] = f"{row.source}, without " + "; ".join(row.left_out)
    return notes


def _attempted(options: ProbeOptions, row: ProbeRow | None) -> tuple[str, ...]:
    figures = ["clock_offset_s"]
    figures += RATE_FIGURES if options.rate_probe else ()
    figures += CREATE_FIGURES if row is not None else ()
    return tuple(figures)


def _listed(left: Mapping[str, str]) -> str:
    return "; ".join(f"{number} ({why})" for number, why in left.items())
