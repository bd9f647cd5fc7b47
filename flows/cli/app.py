"""The ``fleet`` command line: validate, plan, provision, status, teardown, serve, probe, simulator.

Commands only: options are gathered into one validated options object (fleet.options), output
is in ``render``, rehearsals in ``rehearsal``, the progress bar in ``progress``, exit codes in
``exits``. Input is checked before Prefect is even imported, so a bad inventory costs
milliseconds and sends nothing. An option left out is unset (None), never 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

from fleet import (
    SKIPPED,
    FleetError,
    InventoryError,
    PlannedServer,
    ProbeOptions,
    ProvisionOptions,
    RunOptions,
    TeardownOptions,
    load_inventories,
    options_from,
    resolve_ledger,
)
from flows import planview
from flows.cli import localserver, render
from flows.cli.documents import documented
from flows.cli.exits import CHANGES_PENDING, exit_code
from flows.cli.flags import FlagsGroup, optional_values, with_options, with_parser
from flows.cli.render import err, out, say


class _Commands(FlagsGroup):
    """The commands, where ``--approve`` alone means ``--approve=canary``."""

    optional = optional_values(ProvisionOptions, TeardownOptions)


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="Batch server provisioning for NAVER Cloud Platform, on Prefect.",
)
M = TypeVar("M", bound=BaseModel)

# The options' flags come from the options models (flows/cli/flags.py): each described once, there,
# and unset unless given, so the model's default and rules apply. These are the commands' own.
Inventories = Annotated[list[Path], typer.Argument(help="Inventory CSV files.", show_default=False)]
Rollout = Annotated[
    str | None, typer.Option("--rollout", help="Rollout name (default: the inventory names).")
]
LedgerAt = Annotated[
    str | None,
    typer.Option(
        "--ledger", help="Ledger file or postgresql:// URL (default: FLEET_LEDGER, else .fleet/)."
    ),
]
LedgerBlock = Annotated[
    str | None, typer.Option(help="Prefect Secret block holding the ledger's URL.")
]
Simulator = Annotated[
    bool, typer.Option("--simulator", help="Rehearse against a local NCP simulator.")
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (messages: stderr).")
]
ProbeProfile = Annotated[Path | None, typer.Option(help="Take defaults from a probe's profile.")]
# What `fleet plan` reads: where to look and what counts as to create; nothing about sending.
PLAN_FLAGS = (
    "site", "endpoint", "profile", "credentials_block", "ledger", "ledger_block", "rebind",
    "retry_failed", "adopt_existing", "preflight", "replace", "prune",
)  # fmt: skip
# A served deployment runs unattended: no approvals to wait for, no results path of one machine.
NOT_SERVED = ("approve", "approve_patience", "results", "wait_for_lease")


def _fail(code: int, message: str) -> typer.Exit:
    render.report(message)
    return typer.Exit(code)


def _failed(exc: FleetError) -> typer.Exit:
    """Print why a command stopped (every problem a preflight found) and return its exit."""
    render.failure(exc)
    return typer.Exit(exit_code(exc))


def _preflight_flag(options: ProvisionOptions) -> None:
    if not options.preflight:
        say(err, f"warning: {SKIPPED}")


def _options(model: type[M], **values: Any) -> M:
    ledger = values.get("ledger")
    if ledger and "://" in ledger and _has_password(ledger):
        # A password never becomes a flow parameter (Prefect stores and shows those): the run,
        # in this process, reads the URL from FLEET_LEDGER instead.
        os.environ["FLEET_LEDGER"] = ledger
        values["ledger"] = None
    try:
        return options_from(model, values)
    except FleetError as exc:
        raise _fail(2, f"error: {exc}") from None


def _has_password(url: str) -> bool:
    from fleet import LedgerLocation

    try:
        return LedgerLocation.parse(url).password is not None
    except FleetError as exc:
        raise _fail(2, f"error: {exc}") from None


def _validated(paths: list[Path]) -> list[PlannedServer]:
    try:
        return load_inventories([str(p) for p in paths])
    except InventoryError as exc:
        render.problems(exc.problems)
        raise typer.Exit(2) from None


def _prefect_defaults() -> None:
    # No internet here and a slow first start of the temporary API server: quiet and patient.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _prefect_api_url() -> str | None:
    """Return the Prefect API this process would use (environment or profile), if any."""
    _prefect_defaults()
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return str(url) if url else None


R = TypeVar("R", bound=RunOptions)


@contextlib.contextmanager
def _target(options: R, rollout: str, simulator: bool, ledger: str | None) -> Iterator[R]:
    """Yield the options to run with: as given, or pointed at a rehearsal simulator.

    ``ledger`` is the --ledger the user gave, if any: a rehearsal uses it (after checking it
    holds no real rollout), else its own .fleet/rehearsal.db, never FLEET_LEDGER's.
    """
    if not simulator:
        yield options
        return
    from flows.cli.rehearsal import rehearsal

    with rehearsal(options, rollout, ledger) as rehearsed:
        yield rehearsed


def _name(rollout: str | None, inventories: list[Path]) -> str:
    from flows.runtime import check_rollout_name, rollout_name

    name = rollout or rollout_name([str(p) for p in inventories])
    try:
        check_rollout_name(name)
    except FleetError as exc:
        raise _fail(2, f"error: {exc}") from None
    return name


@app.command()
def validate(inventories: Inventories) -> None:
    """Check inventories and show what they expand to; exit 2 listing every problem."""
    specs = _validated(inventories)
    rows = len({(s.file, s.line) for s in specs})
    out.print(f"ok: {len(specs)} servers from {rows} rows in {len(inventories)} file(s)")
    out.print(render.expansion_table(specs))


@app.command()
@with_options(ProvisionOptions, only=PLAN_FLAGS)
@documented
def plan(
    inventories: Inventories,
    rollout: Rollout = None,
    simulator: Simulator = False,
    full: Annotated[bool, typer.Option("--full", help="List every name and change.")] = False,
    json_: JsonFlag = False,
    *,
    values: dict[str, Any],
) -> None:
    """Refresh, then show what provision with these flags would do; exit 3 if anything differs."""
    specs = _validated(inventories)
    name = _name(rollout, inventories)
    options = _options(ProvisionOptions, **values)
    from flows.cli.commands import ledger_shown, survey_only
    from flows.cli.documents import plan_document, print_document

    _preflight_flag(options)
    try:
        with _target(options, name, simulator, values.get("ledger")) as opts:
            seen = asyncio.run(survey_only(name, specs, opts, regions=json_))
            where = ledger_shown(opts)
    except FleetError as exc:
        raise _failed(exc) from None
    ahead = planview.forecast(seen.changes, seen.found, seen.records, options, seen.protected)
    if json_:
        region, found = seen.default_region, seen.found
        print_document(
            plan_document(where, name, specs, found, ahead, default_region=region, options=options)
        )
    else:
        out.print(render.plan_table(name, len(specs), seen.found, ahead, full=full))
        for line in planview.lines(ahead, full=full):
            say(out, line)
        if seen.found.conflicts:
            out.print("Existing names stop a rollout unless --adopt-existing is given.")
    raise typer.Exit(CHANGES_PENDING if ahead.differs else 0)


@app.command()
@with_options(ProvisionOptions)
def provision(
    inventories: Inventories,
    rollout: Rollout = None,
    yes: Annotated[bool, typer.Option("--yes", help="Approve every stage without asking.")] = False,
    simulator: Simulator = False,
    probe_profile: ProbeProfile = None,
    *,
    values: dict[str, Any],
) -> None:
    """Create the inventories' servers through the provision-fleet flow."""
    localserver.start_soon()  # boots while the inventory is read (see flows/cli/localserver.py)
    specs = _validated(inventories)
    name = _name(rollout, inventories)
    from flows.cli.probing import with_profile

    options = _options(ProvisionOptions, **with_profile(values, probe_profile, simulator=simulator))
    _preflight_flag(options)
    if simulator and options.poll_interval == ProvisionOptions().poll_interval:
        options = options.model_copy(update={"poll_interval": 1.0})  # a local simulator
    from flows.cli.commands import run_provision

    try:
        with _target(options, name, simulator, values.get("ledger")) as opts, _approver(opts, yes):
            code = run_provision([str(p) for p in inventories], name, specs, opts)
    except FleetError as exc:
        raise _failed(exc) from None
    raise typer.Exit(code)


@contextlib.contextmanager
def _approver(options: ProvisionOptions, yes: bool) -> Iterator[None]:
    """Decide approvals here when no Prefect server shows the form (the temporary one)."""
    if options.approve == "none" or _prefect_api_url():
        yield  # no approvals, or the Prefect UI (and `fleet approve`) decide them
        return
    from flows.approval import set_local_approver
    from flows.cli.commands import terminal_approver, yes_approver

    if not yes and not _interactive():
        raise _fail(2, "error: --approve needs a terminal to ask on, or --yes to approve all")
    set_local_approver(yes_approver if yes else terminal_approver)
    try:
        yield
    finally:
        set_local_approver(None)


def _interactive() -> bool:
    """Whether someone is at a terminal to answer questions."""
    return sys.stdin.isatty()


@app.command()
def server(stop: Annotated[bool, typer.Option("--stop", help="Stop it.")] = False) -> None:
    """Show (or stop) the local Prefect server that one-off commands share."""
    code, message = localserver.tell(stopping=stop)
    out.print(message)
    raise typer.Exit(code)


@app.command()
def approve(
    rollout: Annotated[str, typer.Argument(help="The rollout waiting for approval.")],
    next_wave: Annotated[
        str | None, typer.Option(help="Size of the next wave (N or N%), if not as planned.")
    ] = None,
) -> None:
    """Let a paused rollout go on with its next wave."""
    raise typer.Exit(_answer(rollout, True, next_wave))


@app.command()
def abort(
    rollout: Annotated[str, typer.Argument(help="The rollout waiting for approval.")],
) -> None:
    """Stop a paused rollout: nothing more is sent (and, with on_failure rollback, rolled back)."""
    raise typer.Exit(_answer(rollout, False, None))


def _answer(rollout: str, go_on: bool, next_wave: str | None) -> int:
    if not _prefect_api_url():
        raise _fail(2, "error: approvals live on a Prefect server: set PREFECT_API_URL")
    if next_wave is not None:
        _options(ProvisionOptions, waves=next_wave)  # refused now if it is not a size
    from flows.approval import resume

    answered = asyncio.run(resume(rollout, go_on, next_wave))
    if not answered:
        raise _fail(1, f"no run of rollout {rollout!r} is waiting for approval")
    verb = "approved" if go_on else "aborted"
    out.print(f"{verb}: {', '.join(answered)}")
    return 0


@app.command()
@documented
def status(
    rollout_: Annotated[str | None, typer.Argument(metavar="ROLLOUT", show_default=False)] = None,
    rollout: Rollout = None,
    ledger: LedgerAt = None,
    ledger_block: LedgerBlock = None,
    simulator: Annotated[
        bool, typer.Option("--simulator", help="Read the rehearsals' ledger (--simulator runs).")
    ] = False,
    json_: JsonFlag = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="Read each recorded server from NCP too: running, stopped, gone."
        ),
    ] = False,
) -> None:
    """Show the ledger: every rollout's counts, or one rollout's servers (live with --refresh)."""
    from flows.cli.commands import show_status

    rollout = rollout or rollout_
    if simulator and ledger is None:
        from fleet.simulator import REHEARSAL_LEDGER

        ledger = str(REHEARSAL_LEDGER)
    options = _options(RunOptions, ledger=ledger, ledger_block=ledger_block)
    try:
        code = show_status(options, rollout, as_json=json_, refresh=refresh)
    except FleetError as exc:
        raise _failed(exc) from None
    raise typer.Exit(code)


@app.command()
@with_options(TeardownOptions)
@documented
def teardown(
    rollout: Annotated[str, typer.Option("--rollout", help="The rollout to take down.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_: JsonFlag = False,
    simulator: Annotated[
        bool, typer.Option("--simulator", help="A rehearsal's rollout, while its simulator runs.")
    ] = False,
    *,
    values: dict[str, Any],
) -> None:
    """Stop and terminate every server a rollout created (and its lost creates, found by name)."""
    if simulator and values.get("ledger") is None:
        from fleet.simulator import REHEARSAL_LEDGER

        values["ledger"] = str(REHEARSAL_LEDGER)
    options = _options(TeardownOptions, **values)
    from flows.cli.commands import teardown_command

    try:
        code = teardown_command(rollout, options, yes=yes, as_json=json_)
    except FleetError as exc:
        raise _failed(exc) from None
    raise typer.Exit(code)


@app.command()
@with_options(ProvisionOptions, skip=NOT_SERVED)
def serve(
    inventories: Inventories,
    cron: Annotated[str, typer.Option(help="When to roll out (cron, in --timezone).")],
    timezone: Annotated[str, typer.Option(help="Time zone of the schedule.")] = "Asia/Seoul",
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
    rollout: Rollout = None,
    *,
    values: dict[str, Any],
) -> None:
    """Serve provision-fleet on a schedule, and teardown-fleet on demand, from this process."""
    _validated(inventories)  # now, so a bad inventory fails here and not at 3 a.m.
    rollout_ = _name(rollout, inventories)
    if values.get("ledger") is None and "://" not in (os.environ.get("FLEET_LEDGER") or ""):
        # Runs start wherever the served process is; the ledger must not depend on it.
        at = resolve_ledger(None).path  # FLEET_LEDGER's file, else the default one
        if at is not None:
            values["ledger"] = str(at.resolve())
    options = _options(ProvisionOptions, **values)
    if not _prefect_api_url():
        raise _fail(
            2,
            "error: schedules need a Prefect server: run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
        )
    from flows.cli.commands import serve_deployments

    paths = [str(p.resolve()) for p in inventories]
    from flows.cli.ledgers import shown

    block = options.ledger_block if not options.ledger else None
    where = f"Prefect Secret block {block}" if block else shown(resolve_ledger(options.ledger))
    say(err, f"ledger: {where}")
    out.print(
        f"serving provision-fleet/{name} ({cron}, {timezone}) and teardown-fleet/{name}, one run "
        "of each at a time; Ctrl-C stops (and pauses the schedule)"
    )
    serve_deployments(paths, rollout_, options, name=name, cron=cron, timezone=timezone)


@app.command()
@documented
def export(
    rollout: Annotated[str, typer.Argument(help="The rollout whose running servers to write.")],
    format_: Annotated[
        str, typer.Option("--format", help="ansible (YAML inventory), ssh (ssh_config) or json.")
    ] = "ansible",
    output: Annotated[
        Path | None, typer.Option("--output", help="File to write (default: stdout).")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Connect by public IP where a server has one.")
    ] = False,
    user: Annotated[
        str | None, typer.Option(help="User to log in as (ssh and ansible; default: root).")
    ] = None,
    identity_file: Annotated[
        str | None,
        typer.Option(
            help="Private key file to log in with; {key} stands for the row's loginKeyName "
            "(default: ~/.ssh/{key}.pem)."
        ),
    ] = None,
    ledger: LedgerAt = None,
    ledger_block: LedgerBlock = None,
) -> None:
    """Write a rollout's running servers for Ansible, SSH or another tool."""
    from flows.cli.commands import export_servers
    from flows.cli.export import FORMATS, Login

    if format_ not in FORMATS:
        raise _fail(2, f"error: --format {format_!r}: use one of {', '.join(FORMATS)}")
    options = _options(RunOptions, ledger=ledger, ledger_block=ledger_block)
    try:
        login = Login(**{k: v for k, v in (("user", user), ("identity", identity_file)) if v})
        raise typer.Exit(export_servers(options, rollout, format_, output, public, login))
    except FleetError as exc:
        raise _failed(exc) from None


@app.command("shared-limit")
def shared_limit_cmd(
    name: Annotated[str, typer.Argument(help="Limit name, e.g. the account's.")],
    rate: Annotated[float, typer.Option(help="Calls per second shared by every run.")],
    burst: Annotated[int, typer.Option(help="Calls that may go at once.")] = 20,
) -> None:
    """Create or update the Prefect global limit that rollouts share with --shared-limit."""
    if not _prefect_api_url():
        raise _fail(2, "error: a shared limit lives on a Prefect server: set PREFECT_API_URL")
    from flows.shared_limit import upsert_limit

    asyncio.run(upsert_limit(name, rate, burst))
    out.print(f"global limit {name}: {rate}/s, burst {burst}")


@app.command()
@with_options(ProbeOptions)
def probe(json_: JsonFlag = False, *, values: dict[str, Any]) -> None:
    """Measure the account (keys, clock, read rate); with --create, what only creates show."""
    from flows.cli.probing import probe_command

    raise typer.Exit(probe_command(_options(ProbeOptions, **values), as_json=json_))


def _simulator_parser() -> Any:  # an argparse.ArgumentParser: the simulator's own flags
    from fleet.simulator.server import build_parser

    return build_parser()


@app.command("simulator")
@with_parser(_simulator_parser())
def simulator(*, argv: list[str]) -> None:
    """Run the local NCP simulator on loopback; print its URL, keys and the export line."""
    from fleet.simulator.server import run

    try:
        raise typer.Exit(run(_simulator_parser().parse_args(argv), argv))
    except ValueError as exc:
        raise _fail(2, f"error: {exc}") from None


def main() -> None:
    """Run the command line."""
    _prefect_defaults()
    try:
        app()
    except FleetError as exc:  # anything not caught closer to its cause
        say(err, f"error: {exc}")
        sys.exit(exit_code(exc))
