"""``fleet probe`` between its flags and its output, and what ``provision`` takes from a profile.

The probe itself is the library's (``fleet.probe``); here are its keys, its client, its row (an
inventory's, read and validated as every inventory is), its table, and where the profile goes.
No Prefect: a probe is a diagnosis, not a rollout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from fleet import (
    EFFECTS,
    FIGURES,
    ConfigError,
    FleetError,
    InventoryError,
    Limiter,
    NcpClient,
    ProbeOptions,
    ProbeResult,
    ProbeRow,
    Seams,
    Throttle,
    load_inventories,
    load_profile,
    probe,
    probe_row,
    profile_defaults,
    resolve_endpoint,
    write_profile,
)
from flows.cli.documents import document_mode, print_document
from flows.cli.exits import exit_code
from flows.cli.render import err, failure, out, plain, problems, say
from flows.runtime import resolve_credentials

__all__ = ["DEFAULT_PROFILE", "load_row", "probe_command", "probe_table", "with_profile"]

# Where a probe writes its profile, and where provision looks for one, unless told otherwise.
DEFAULT_PROFILE = Path(ProbeOptions.model_fields["output"].default)


def load_row(create: str) -> ProbeRow:
    """Return the probe's server from ``FILE`` (its first row) or ``FILE:LINE``.

    Raises:
        InventoryError: the file does not validate (every problem listed).
        ConfigError: no row starts at that line.

    """
    path, _, line = create.rpartition(":")
    if not (path and line.isdigit()):
        path, line = create, ""
    specs = load_inventories([path])
    chosen = [s for s in specs if not line or s.line == int(line)]
    if not chosen:
        raise ConfigError(f"--create {create}: no row of {path} starts at line {line}")
    return probe_row(chosen[0])


async def run_probe(
    options: ProbeOptions, row: ProbeRow | None, tell: Callable[[str], None]
) -> ProbeResult:
    """Probe with the options' keys at their endpoint, through a client that paces nothing."""
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    endpoint = resolve_endpoint(options.site, options.endpoint)
    # No pacing: the probe is the one measuring the gateway's pace (its reads go on a budget).
    client = NcpClient(credentials, endpoint, limiter=Limiter())
    async with client:
        return await probe(client, options, row, Seams(tell=tell))


def probe_command(options: ProbeOptions, *, as_json: bool) -> int:
    """Probe, write the profile, print it; return 0 all measured, 1 something not (or left).

    2: keys the gateway refused, an endpoint that does not answer, an invalid row or options.
    """
    try:
        row = load_row(options.create) if options.create else None
        with document_mode(as_json):
            if row is not None:
                say(err, f"probe server from {row.source}; left out: {'; '.join(row.left_out)}")
            result = asyncio.run(run_probe(options, row, lambda line: say(err, line)))
            write_profile(result.profile, options.output)
            say(err, f"profile: {options.output}")
    except InventoryError as exc:
        problems(exc.problems)
        return 2
    except KeyboardInterrupt:
        say(err, f"interrupted: the next fleet probe removes what {options.intent} records")
        return 1
    except FleetError as exc:
        failure(exc)
        return exit_code(exc)
    if as_json:
        print_document(result.profile.document())
    else:
        out.print(probe_table(result))
        for number, why in result.left.items():
            say(out, f"left behind: {number} ({why}); the next fleet probe removes it")
    if result.unmeasured:
        say(err, f"not measured: {', '.join(result.unmeasured)} (the notes say why)")
    return 0 if result.complete else 1


def probe_table(result: ProbeResult) -> Table:
    """Return the profile as a table: each figure, what it changes, and how it was measured."""
    profile = result.profile
    table = Table(title=f"{profile.endpoint}, measured {profile.measured_at}")
    for column in ("figure", "measured", "changes", "notes"):
        table.add_column(column)
    for figure in FIGURES:
        value = profile.figure(figure)
        shown = "-" if value is None else value
        if isinstance(value, Throttle):
            shown = ", ".join(f"{k} {v}" for k, v in value.document().items())
        table.add_row(figure, plain(shown), EFFECTS[figure], plain(profile.notes.get(figure)))
    for topic in ("regions", "servers", "row", "leftovers", "left", "probe"):
        if topic in profile.notes:
            table.add_row(topic, "", "", plain(profile.notes[topic]))
    table.add_row("created", plain(", ".join(profile.created) or "-"), "", "")
    table.add_row("removed", plain(", ".join(profile.removed) or "-"), "", "")
    return table


def with_profile(values: dict[str, Any], path: Path | None, *, simulator: bool) -> dict[str, Any]:
    """Return provision's flag values with a probe profile's defaults where unset; say which.

    The profile named, else ``DEFAULT_PROFILE`` when it was measured at this run's endpoint
    (never for a rehearsal, whose simulator is new each time).
    """
    named = path is not None
    path = path or DEFAULT_PROFILE
    if not named and (simulator or not path.exists()):
        return values
    profile = load_profile(path)
    if not named:
        endpoint = resolve_endpoint(values.get("site") or "public", values.get("endpoint"))
        if profile.endpoint != endpoint:
            say(err, f"probe profile {path}: measured at {profile.endpoint}, not used here")
            return values
    taken = profile_defaults(profile.list_lag_s, profile.rate_per_s, profile.boot_s)
    used = [t for t in taken if values.get(t.option) is None]
    for t in taken:
        if t not in used:
            flag = "--" + t.option.replace("_", "-")
            say(err, f"{flag} given: the profile's {t.figure} ({t.measured:g}) is not used")
    if used:
        where = f"probe profile {path} (measured {profile.measured_at} at {profile.endpoint})"
        say(err, f"from {where}: {', '.join(str(t) for t in used)}")
    return {**values, **{t.option: t.value for t in used}}
