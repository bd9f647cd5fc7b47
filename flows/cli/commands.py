"""What the commands do, between reading their options and printing their outcome."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import tags

from fleet import (
    Binding,
    Change,
    ConfigError,
    Extra,
    FleetError,
    Ledger,
    LedgerLocation,
    PlannedServer,
    ProvisionOptions,
    Record,
    Refreshed,
    Resource,
    RolloutSummary,
    RunOptions,
    Size,
    Survey,
    TeardownOptions,
    TeardownReport,
    TeardownScope,
    duplicates_by_name,
    extras_of,
    not_clean,
    pages,
    plan_changes,
    read,
    refreshed,
)
from flows import planview
from flows.approval import Approval
from flows.cli import documents, export, ledgers, rehearsal, render
from flows.cli.exits import exit_code
from flows.cli.localserver import serving
from flows.cli.progress import progress_bar
from flows.cli.render import err, out, say
from flows.runtime import ledger_target, open_runtime, resolve_credentials
from flows.waves import set_stage_listener

__all__ = [
    "export_servers",
    "ledger_shown",
    "run_provision",
    "run_teardown",
    "serve_deployments",
    "show_status",
    "survey_only",
    "teardown_command",
    "teardown_plan",
    "teardown_survey",
    "terminal_approver",
    "yes_approver",
]


def _existing(location: LedgerLocation, rollout: str | None = None) -> LedgerLocation:
    """Return the location, or refuse a ledger that a command would only read and is not there."""
    if location.missing:
        advice = f" {ledgers.hint(location, rollout)}" if rollout else ""
        raise ConfigError(f"no ledger at {ledgers.shown(location)}{advice}")
    return location


def _status_ledger(options: RunOptions, rollout: str | None) -> LedgerLocation:
    """Return the ledger status reads: the one named, else where the rollout is recorded here.

    A rehearsal's rollout is in the rehearsals' ledger: found there when no ledger is named.
    """
    location = asyncio.run(ledger_target(options))
    if rollout is None or ledgers.pinned(options) or _holds(location, rollout):
        return _existing(location, rollout)
    other = ledgers.elsewhere(location, rollout)
    if other is None:
        return _existing(location, rollout)
    say(err, f"rollout {rollout!r} is not in {ledgers.shown(location)}; found in {other}")
    return LedgerLocation.parse(str(other))


def _holds(location: LedgerLocation, rollout: str) -> bool:
    if location.missing:
        return False
    with Ledger(location) as book:
        return rollout in book.rollouts()


def ledger_shown(options: RunOptions) -> str:
    """Return the ledger a command with these options uses, as shown to people."""
    return ledgers.shown(asyncio.run(ledger_target(options)))


@dataclass(frozen=True, slots=True)
class Surveyed:
    """What a dry plan found: the survey, its changes, the rollout's records, the default region."""

    found: Survey
    changes: list[Change]
    records: list[Record]
    default_region: str  # the code of the region a create without regionCode goes to ('' unread)
    protected: set[str]  # servers to replace or destroy with termination protection on


async def survey_only(
    name: str, specs: Sequence[PlannedServer], options: ProvisionOptions, *, regions: bool = False
) -> Surveyed:
    """Check references, refresh, compare with the ledger and NCP, writing nothing.

    Takes no lease; a bad reference raises PreflightError listing every one. ``regions``: read
    the default region's code too (one call), for a document that writes no region as ''.
    """
    from flows.provision import plan_rollout

    location = await ledger_target(options)
    say(err, ledgers.used(location))
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    async with open_runtime(name, options, credentials, lease=False) as rt:
        found = await plan_rollout(
            rt, specs, options, owner=None, tell=lambda report: say(out, report)
        )
        records = await rt.ledger.records(name)
        retired = await rt.ledger.retired(name)
        if retired is not None:
            say(
                out,
                f"rollout {name} is retired (torn down {retired}): provision creates nothing of "
                "it unless --revive is given; what follows is what --revive would do",
            )
        changes = plan_changes(specs, records, found)
        default = ""
        if regions and (any(not s.region for s in specs) or any(not r.region for r in records)):
            # Written as NCP's code in the plan, never '': the first region NCP lists.
            listed = await read(rt.client, Resource.REGION)
            default = listed[0].key if listed else ""
        on = await planview.protected(rt.client, found, changes)
        return Surveyed(found, changes, records, default, on)


def _ended(state: Any) -> tuple[Any, BaseException | None]:
    """Return a flow run's result and the error it ended on, if any."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        return None, result
    return result, None


def run_provision(
    inventories: list[str], name: str, specs: Sequence[PlannedServer], options: ProvisionOptions
) -> int:
    """Run the provision-fleet flow here, with a progress bar; print the outcome; exit code."""
    from flows.provision import provision_fleet

    async def flow_run() -> Any:
        with tags(name):  # on the run from its start: the runs list filters by rollout
            return await provision_fleet(
                inventories=inventories, rollout=name, options=options, return_state=True
            )

    target = asyncio.run(ledger_target(options))
    say(err, ledgers.used(target))
    Ledger(target).close()  # unreadable, foreign or unreachable: exit 2 now, before Prefect
    names = [s.name for s in specs]
    set_stage_listener(lambda line: say(out, f"  {line}"))  # each stage's line as it ends
    try:
        with progress_bar(target, name, names, retry_failed=options.retry_failed), serving():
            state = asyncio.run(flow_run())
    finally:
        set_stage_listener(None)
    summary, error = _ended(state)
    if error is not None:
        render.failure(error)
        return exit_code(error)
    if not isinstance(summary, RolloutSummary):
        say(err, f"error: {state.message}")
        return 1
    with Ledger(target) as book:
        # Only the servers the summary names (failures), a page at a time: never every record.
        records = [r for page in pages(book, name) for r in page if not_clean(r)]
    render.run_summary(summary, records, ledgers.shown(target))
    return 0 if state.is_completed() else 1


async def live_view(options: RunOptions, rollout: str, endpoint: str) -> dict[str, Refreshed]:
    """Return what NCP says now of each server the rollout recorded (a refresh; writes nothing)."""
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    at = options.model_copy(update={"endpoint": endpoint})
    async with open_runtime(rollout, at, credentials, lease=False) as rt:
        return await refreshed(rt.client, await rt.ledger.instances(rollout))


def _refreshed(
    options: RunOptions, location: LedgerLocation, binding: Binding | None
) -> dict[str, Refreshed] | None:
    """Return what NCP holds now of a rollout's servers, read where it lives (None: nowhere)."""
    if binding is None or not binding.endpoint:
        return None
    if location.path is not None and not ledgers.pinned(options):  # the ledger found elsewhere
        options = options.model_copy(update={"ledger": str(location.path)})
    with rehearsal.reach(options, binding) as at:  # a rehearsal: at its simulator, its keys
        return asyncio.run(live_view(at, binding.rollout, binding.endpoint))


def show_status(
    options: RunOptions, rollout: str | None, *, as_json: bool = False, refresh: bool = False
) -> int:
    """Print every rollout of the ledger, or one rollout's servers; return the exit code."""
    location = _status_ledger(options, rollout)
    say(err, ledgers.used(location))
    where = ledgers.shown(location)
    with Ledger(location) as book:
        if rollout is None:
            rows = [(n, book.counts(n), book.binding(n), book.lease(n)) for n in book.rollouts()]
            if as_json:
                documents.print_document(documents.rollouts_document(where, rows))
            else:
                out.print(render.rollouts_table(book.shown, rows))
            return 0
        return _show_rollout(book, options, location, rollout, as_json=as_json, refresh=refresh)


def _show_rollout(
    book: Ledger,
    options: RunOptions,
    location: LedgerLocation,
    rollout: str,
    *,
    as_json: bool,
    refresh: bool,
) -> int:
    """Print one rollout's servers (a table, or one JSON document); return the exit code."""
    where = ledgers.shown(location)
    records = book.records(rollout)
    if not records:
        render.report(f"error: no rollout {rollout!r} in {where} {ledgers.hint(location, rollout)}")
        return 2
    live = _refreshed(options, location, book.binding(rollout)) if refresh else None
    retired = book.retired(rollout)
    if as_json:
        document = documents.servers_document(
            where, rollout, records, book.counts(rollout), book.addresses(rollout)
        )
        document["retired_at"] = retired
        if live is not None:
            document["live"] = {n: s.live.value for n, s in sorted(live.items())}
        documents.print_document(document)
        return 0
    duplicates = duplicates_by_name(book.instances(rollout))
    out.print(render.servers_table(rollout, records, duplicates))
    say(out, render.counts_line(rollout, book.counts(rollout)))
    if retired is not None:
        say(out, f"retired: torn down {retired}; provision --revive creates it anew")
    for line in planview.live_lines(live) if live is not None else []:
        say(out, line)
    lease = book.lease(rollout)
    if lease is not None:
        say(out, f"run by {lease.holder} (lease until {render.iso(lease.expires_at)})")
    return 0


def export_servers(
    options: RunOptions,
    rollout: str,
    format_: str,
    output: Path | None,
    public: bool,
    login: export.Login,
) -> int:
    """Write a rollout's running servers as an Ansible inventory, an ssh_config or JSON."""
    location = _status_ledger(options, rollout)
    say(err, ledgers.used(location))
    with Ledger(location) as book:
        records = book.records(rollout)
        if not records:
            hint = ledgers.hint(location, rollout)
            render.report(f"error: no rollout {rollout!r} in {ledgers.shown(location)} {hint}")
            return 2
        rehearsal.still_running(book.binding(rollout))  # else its servers are gone
        hosts, not_seen = export.running_hosts(records, book.addresses(rollout))
    if format_ == "ansible":
        text = export.ansible_inventory(rollout, hosts, public=public, login=login)
    elif format_ == "ssh":
        text = export.ssh_config(rollout, hosts, public=public, login=login)
    else:
        text = export.export_json(rollout, hosts)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    where = "stdout" if output is None else str(output)
    say(err, f"{rollout}: {len(hosts)} running servers written to {where} ({format_})")
    if not_seen:
        say(
            err,
            f"{not_seen} created servers not seen RUN yet: left out. `fleet provision ... --wait` "
            "waits for them and records their status and addresses.",
        )
    return 0


async def teardown_survey(
    rollout: str, options: TeardownOptions
) -> tuple[TeardownScope, list[Extra]]:
    """Return what a teardown would take down and leave alone, and the targets' IPs and disks."""
    from flows.teardown import find_targets

    location = _existing(await ledger_target(options), rollout)
    say(err, ledgers.used(location))
    if not _holds(location, rollout):
        raise ConfigError(
            f"no rollout {rollout!r} in {ledgers.shown(location)} "
            f"{ledgers.hint(location, rollout, teardown=True)}"
        )
    credentials = await resolve_credentials(options.credentials_block, options.profile)
    async with open_runtime(rollout, options, credentials, lease=False) as rt:
        scope = await find_targets(rt, options)
        return scope, await extras_of(rt.client, rt.ledger, rt.rollout, scope.targets)


def teardown_command(rollout: str, options: TeardownOptions, *, yes: bool, as_json: bool) -> int:
    """Show what a teardown takes (``--json``: as one document), confirm, run it; exit code.

    A rehearsal's rollout is reached at its simulator, with its keys, while that runs.
    """
    location = asyncio.run(ledger_target(options))
    binding = None
    if _holds(location, rollout):
        with Ledger(location) as book:
            binding = book.binding(rollout)
    with rehearsal.reach(options, binding) as reached:
        return _teardown(rollout, reached, yes=yes, as_json=as_json)


def _teardown(rollout: str, options: TeardownOptions, *, yes: bool, as_json: bool) -> int:
    if as_json:
        if not options.dry_run:
            raise ConfigError("--json shows a plan: give it with --dry-run")
        return teardown_plan(rollout, options)
    scope, side = asyncio.run(teardown_survey(rollout, options))
    taken = scope.taken(lift_protection=options.lift_protection)
    if not render.teardown_plan(rollout, scope, side) or options.dry_run:
        return 0
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("not a terminal; pass --yes to confirm the teardown")
        import typer

        if not typer.confirm(f"Terminate these {len(taken)} servers?", default=False):
            say(err, "nothing done")
            return 1
    return run_teardown(rollout, options, scope)


def teardown_plan(rollout: str, options: TeardownOptions) -> int:
    """Print what a teardown would take down as one JSON document (``--dry-run --json``)."""
    from flows.cli.documents import document_mode, print_document, teardown_document

    with document_mode(True):
        scope, side = asyncio.run(teardown_survey(rollout, options))
    lift = options.lift_protection
    print_document(teardown_document(ledger_shown(options), rollout, scope, side, lift=lift))
    return 0


def run_teardown(rollout: str, options: TeardownOptions, plan: TeardownScope | None) -> int:
    """Run the teardown-fleet flow here on the plan printed; print the outcome; exit code."""
    from flows.teardown import teardown_fleet

    async def flow_run() -> Any:
        with tags(rollout):  # on the run from its start: the runs list filters by rollout
            return await teardown_fleet(
                rollout=rollout, options=options, plan=plan, return_state=True
            )

    with serving():
        state = asyncio.run(flow_run())
    report, error = _ended(state)
    if isinstance(error, FleetError):
        say(err, f"error: {error}")
        return exit_code(error)
    report = report if isinstance(report, TeardownReport) else getattr(state, "data", None)
    if isinstance(report, TeardownReport):
        render.teardown_summary(rollout, report)
    elif error is not None:
        say(err, f"error: {error}")
        return exit_code(error)
    return 0 if state.is_completed() else 1


def serve_deployments(
    inventories: list[str],
    rollout: str,
    options: ProvisionOptions,
    *,
    name: str,
    cron: str,
    timezone: str,
) -> None:
    """Serve provision-fleet on a cron and teardown-fleet on demand, one run of each at a time."""
    from prefect import serve
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import RunnerDeployment

    from flows.provision import provision_fleet
    from flows.teardown import teardown_fleet

    common = options.model_dump(
        include={"site", "endpoint", "ledger", "credentials_block", "shared_limit", "profile"},
        exclude_none=True,
    )
    provision: RunnerDeployment = provision_fleet.to_deployment(  # type: ignore[assignment]
        name=name,
        schedules=[CronSchedule(cron=cron, timezone=timezone)],
        # One run at a time: a slow 03:00 rollout must not meet the 03:00 of the next day.
        concurrency_limit=1,
        tags=[rollout],
        parameters={
            "inventories": inventories,
            "rollout": rollout,
            "options": options.model_dump(exclude_defaults=True),
        },
    )
    take_down: RunnerDeployment = teardown_fleet.to_deployment(  # type: ignore[assignment]
        name=name,
        concurrency_limit=1,
        tags=[rollout],
        parameters={"rollout": rollout, "options": common},
    )
    serve(provision, take_down)


def terminal_approver(rollout: str, summary: str) -> Approval:
    """Ask on the terminal whether a paused rollout goes on (and with what next wave)."""
    import typer

    say(out, summary)
    while True:
        answer = typer.prompt(
            f"{rollout}: go on? yes, no (abort), or the next wave's size (N or N%)", default="no"
        ).strip()
        if answer.lower() in ("y", "yes"):
            return Approval(approve=True)
        if answer.lower() in ("n", "no"):
            return Approval(approve=False)
        try:
            Size.parse(answer)
        except ValueError as exc:
            say(err, f"{exc}: answer yes, no, or a size")
            continue
        return Approval(approve=True, next_wave=answer)


def yes_approver(rollout: str, summary: str) -> Approval:
    """Approve every stage (--yes)."""
    say(out, f"{rollout}: approved with --yes")
    return Approval(approve=True)
