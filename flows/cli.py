"""The ``fleet`` command line: validate, plan, provision, status, teardown, simulator, serve.

Input is checked here before Prefect is even imported, so a bad inventory costs milliseconds and
sends nothing. Exit codes: 0 all done, 1 some servers failed, 2 bad input or configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleet.config import load_credentials, resolve_endpoint
from fleet.errors import ConfigError, FleetError, InventoryError, NcpError, RolloutError
from fleet.inventory import ServerSpec, load_inventories
from fleet.ledger import DEFAULT_LEDGER, Ledger
from fleet.results import results_path, summarize

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Batch server provisioning for NAVER Cloud Platform, on Prefect.",
)
out = Console(soft_wrap=True)  # lines stay whole, for grep and logs
err = Console(stderr=True, soft_wrap=True)

REHEARSAL_LEDGER = Path(".fleet") / "rehearsal.db"

Inventories = Annotated[list[Path], typer.Argument(help="Inventory CSV files.", show_default=False)]
RolloutOpt = Annotated[
    str | None, typer.Option("--rollout", help="Rollout name (default: the inventory names).")
]
SiteOpt = Annotated[str, typer.Option("--site", help="NCP site: public, gov or fin.")]
EndpointOpt = Annotated[
    str | None,
    typer.Option("--endpoint", help="Gateway URL (overrides the site and NCLOUD_API_GW)."),
]
LedgerOpt = Annotated[Path | None, typer.Option("--ledger", help="Ledger file.")]
SimulatorOpt = Annotated[
    bool,
    typer.Option(
        "--simulator", help="Rehearse against a local NCP simulator started for this run."
    ),
]


def _fail(code: int, message: str) -> typer.Exit:
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def _validated(paths: list[Path]) -> list[ServerSpec]:
    try:
        return load_inventories([str(p) for p in paths])
    except InventoryError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise _fail(2, f"{len(exc.problems)} problem(s) found; nothing was sent.") from None


def _prefect_defaults() -> None:
    # No internet here and a slow first start of the temporary API server: quiet and patient.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _prefect_api_url() -> str | None:
    """Return the Prefect API this process would use (environment or profile), if any."""
    _prefect_defaults()
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@contextlib.contextmanager
def _rehearsal(enabled: bool, fast: bool = True) -> Iterator[str | None]:
    """Start the local simulator when asked, exporting its keys for the run; yield its URL."""
    if not enabled:
        yield None
        return
    import secrets

    from fleet.simulator import SimulatorConfig, running_simulator

    # Weather for a rehearsal: a gateway limit and a few of each fault, so the run shows its
    # retries and look-ups. Seeded, so two rehearsals behave the same.
    config = SimulatorConfig(
        access_key="sim-" + secrets.token_hex(8),
        secret_key=secrets.token_hex(20),
        rate=50.0,
        burst=10,
        latency=0.02,
        create_seconds=1.0 if fast else 5.0,
        setup_seconds=2.0 if fast else 20.0,
        fail_before=0.05,
        fail_after=0.05,
        drop_after=0.03,
        seed=7,
    )
    saved = {k: os.environ.get(k) for k in ("NCLOUD_ACCESS_KEY", "NCLOUD_SECRET_KEY")}
    with running_simulator(config) as sim:
        os.environ["NCLOUD_ACCESS_KEY"] = config.access_key
        os.environ["NCLOUD_SECRET_KEY"] = config.secret_key
        out.print(f"[bold]Rehearsal[/]: local NCP simulator at {sim.url} (nothing real is created)")
        try:
            yield sim.url
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@app.command()
def validate(inventories: Inventories) -> None:
    """Check inventories and show what they expand to; exit 2 listing every problem."""
    specs = _validated(inventories)
    rows = len({(s.file, s.line) for s in specs})
    out.print(f"ok: {len(specs)} servers from {rows} rows in {len(inventories)} file(s)")


@app.command()
def plan(
    inventories: Inventories,
    rollout: RolloutOpt = None,
    site: SiteOpt = "public",
    endpoint: EndpointOpt = None,
    ledger: LedgerOpt = None,
    simulator: SimulatorOpt = False,
) -> None:
    """Show what a rollout would create and what already exists, creating nothing."""
    from fleet.client import NcpClient
    from fleet.provisioner import Provisioner
    from flows.runtime import rollout_name

    specs = _validated(inventories)
    name = rollout or rollout_name([str(p) for p in inventories])
    ledger_path = ledger or (REHEARSAL_LEDGER if simulator else DEFAULT_LEDGER)

    async def survey(url: str | None) -> Any:
        client = NcpClient(load_credentials(), resolve_endpoint(site, url or endpoint))
        async with client:
            book = Ledger(ledger_path)
            try:
                return await Provisioner(client, book, name).preflight(specs, dry_run=True)
            finally:
                book.close()

    try:
        with _rehearsal(simulator) as url:
            pre = asyncio.run(survey(url))
    except FleetError as exc:
        raise _fail(2, f"error: {exc}") from None
    table = Table(title=f"Rollout {name}: {len(specs)} servers")
    table.add_column("what")
    table.add_column("servers", justify="right")
    table.add_column("names")
    for label, names in (
        ("to create", [s.name for s in pre.to_create]),
        ("created by an earlier run", list(pre.done)),
        ("in flight before, found", list(pre.reconciled)),
        ("exist, not this rollout's", [f"{n} ({nos})" for n, nos in pre.conflicts]),
        ("failed permanently before", list(pre.skipped_failed)),
        ("created, inventory changed since", list(pre.delta.changed)),
    ):
        shown = ", ".join(names[:6]) + (f" … +{len(names) - 6}" if len(names) > 6 else "")
        table.add_row(label, str(len(names)), shown)
    out.print(table)
    if pre.conflicts:
        out.print("Existing names stop a rollout unless --adopt-existing is given.")


def _progress_watch(ledger_path: Path, rollout: str, total: int) -> tuple[threading.Event, Any]:
    """Show a progress bar fed by reading the ledger, so it works whatever runs the flow."""
    stop = threading.Event()

    def watch() -> None:
        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        book: Ledger | None = None
        with bar:
            task = bar.add_task(rollout, total=total, detail="")
            finished = False
            while not finished:
                finished = stop.wait(0.3)  # one last read after the run ends
                if book is None:
                    if not ledger_path.exists():
                        continue  # the flow has not opened it yet
                    book = Ledger(ledger_path)
                counts = book.counts(rollout)
                done = counts.get("created", 0) + counts.get("failed", 0)
                detail = (
                    f"{counts.get('created', 0)} created, {counts.get('failed', 0)} failed, "
                    f"{counts.get('in_flight', 0)} in flight, {counts['running']} running"
                )
                bar.update(task, completed=done, detail=detail)
        if book is not None:
            book.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return stop, thread


@app.command()
def provision(
    inventories: Inventories,
    rollout: RolloutOpt = None,
    rate: Annotated[float, typer.Option(help="Calls per second (backs off on throttling).")] = 0,
    burst: Annotated[int, typer.Option(help="Calls allowed at once above the rate.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Calls in flight at most.")] = 0,
    site: SiteOpt = "public",
    endpoint: EndpointOpt = None,
    ledger: LedgerOpt = None,
    adopt_existing: Annotated[
        bool, typer.Option(help="Record existing servers with planned names as this rollout's.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait until every created server is RUN.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for RUN.")] = 1800.0,
    poll_interval: Annotated[float, typer.Option(help="Seconds between status polls.")] = 0,
    credentials_block: Annotated[
        str | None, typer.Option(help="Prefect Secret block holding the NCP keys.")
    ] = None,
    shared_limit: Annotated[
        str | None,
        typer.Option(help="Prefect global concurrency limit to share the rate with other runs."),
    ] = None,
    results: Annotated[Path | None, typer.Option(help="Results CSV path.")] = None,
    simulator: SimulatorOpt = False,
) -> None:
    """Create the inventories' servers through the provision-fleet flow."""
    specs = _validated(inventories)
    from flows.runtime import DEFAULT_BURST, DEFAULT_CONCURRENCY, DEFAULT_RATE, rollout_name

    name = rollout or rollout_name([str(p) for p in inventories])
    ledger_path = ledger or (REHEARSAL_LEDGER if simulator else DEFAULT_LEDGER)
    try:
        if not simulator:
            resolve_endpoint(site, endpoint)
            if not credentials_block:
                load_credentials()
    except ConfigError as exc:
        raise _fail(2, f"error: {exc}") from None
    if simulator:
        _forget_rehearsal(ledger_path, name)
    _prefect_defaults()
    from flows.provision import provision_fleet

    with _rehearsal(simulator) as url:
        stop, watcher = _progress_watch(ledger_path, name, len(specs))
        try:
            state = asyncio.run(
                provision_fleet(
                    inventories=[str(p) for p in inventories],
                    rollout=name,
                    rate=rate or DEFAULT_RATE,
                    burst=burst or DEFAULT_BURST,
                    concurrency=concurrency or DEFAULT_CONCURRENCY,
                    site=site,
                    endpoint=url or endpoint,
                    ledger=str(ledger_path),
                    adopt_existing=adopt_existing,
                    wait=wait,
                    wait_timeout=wait_timeout,
                    poll_interval=poll_interval or (1.0 if simulator else 10.0),
                    credentials_block=credentials_block,
                    shared_limit=shared_limit,
                    results=str(results) if results else None,
                    return_state=True,
                )
            )
        finally:
            stop.set()
            watcher.join()
    raise typer.Exit(_report(state, ledger_path, name, results))


def _forget_rehearsal(ledger_path: Path, rollout: str) -> None:
    # The simulator starts empty each time, so the rehearsal ledger's memory of it is stale.
    if ledger_path.exists():
        book = Ledger(ledger_path)
        try:
            book.forget(rollout)
        finally:
            book.close()


def _report(state: Any, ledger_path: Path, rollout: str, results: Path | None) -> int:
    """Print how the run ended; return the exit code."""
    if state.is_failed() or state.is_crashed():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, (InventoryError, ConfigError, RolloutError)):
            err.print(f"error: {exc}", markup=False, highlight=False)
            return 2
        if isinstance(exc, NcpError):
            # The run itself stopped on NCP's answer (e.g. listing the VPC before creating).
            err.print(f"error: {exc}", markup=False, highlight=False)
            return 2 if exc.status in (401, 403) else 1
    if not ledger_path.exists():
        err.print(f"error: {state.message}", markup=False)
        return 2 if state.is_failed() else 0
    book = Ledger(ledger_path)
    try:
        records = book.records(rollout)
    finally:
        book.close()
    counts = summarize(records)
    path = results or results_path(ledger_path, rollout)
    out.print(
        f"[bold]{rollout}[/]: {counts['created']} created, {counts['failed']} failed, "
        f"{counts['in_flight']} unknown (in flight), {counts['running']} running, "
        f"of {counts['total']}"
    )
    failures = [r for r in records if r.state != "created" or r.error_kind]
    for r in failures[:10]:
        out.print(
            f"  {r.name}: {r.state} {r.error_kind or ''} {r.error_code or ''} "
            f"{r.error_message or ''} (request {r.request_id or '-'})",
            markup=False,
            highlight=False,
        )
    if len(failures) > 10:
        out.print(f"  … and {len(failures) - 10} more")
    if state.is_completed():
        facts = state.result()
        out.print(
            f"creating took {facts['provisioning seconds']} s; {facts['API calls']} API calls: "
            f"{facts['throttled responses']} throttled, "
            f"{facts['unprocessed failures (retried)']} failed unprocessed (retried), "
            f"{facts['ambiguous failures (looked up by name)']} ambiguous (looked up by name), "
            f"{facts['reconciled after an earlier stop']} settled from an earlier run"
        )
    out.print(f"results: {path}\nledger:  {ledger_path}")
    if state.is_failed() or state.is_crashed():
        if not failures:
            err.print(f"error: {state.message}", markup=False)
        return 1
    return 0


@app.command()
def status(
    rollout: RolloutOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Show the ledger: every rollout's counts, or one rollout's servers."""
    path = ledger or DEFAULT_LEDGER
    if not path.exists():
        raise _fail(2, f"error: no ledger at {path}")
    book = Ledger(path)
    try:
        if rollout is None:
            table = Table(title=f"Rollouts in {path}")
            states = ("planned", "in_flight", "created", "failed")
            table.add_column("rollout")
            for state in states:
                table.add_column(state, justify="right")
            for name, counts in book.rollouts():
                table.add_row(name, *(str(counts.get(s, 0)) for s in states))
            out.print(table)
            return
        records = book.records(rollout)
    finally:
        book.close()
    if not records:
        raise _fail(2, f"error: no rollout {rollout!r} in {path}")
    table = Table(title=f"Rollout {rollout}")
    for col in ("server", "instance", "state", "status", "attempts", "error", "teardown"):
        table.add_column(col)
    for r in records:
        error = " ".join(x for x in (r.error_code, r.error_message) if x)
        table.add_row(
            r.name,
            r.instance_no or "",
            r.state,
            r.server_status or "",
            str(r.attempts),
            error,
            r.teardown or "",
        )
    out.print(table)
    out.print(summarize(records))


@app.command()
def teardown(
    rollout: Annotated[str, typer.Option("--rollout", help="The rollout to take down.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option(help="List what would go; change nothing.")] = False,
    lift_protection: Annotated[
        bool, typer.Option(help="Turn termination protection off first, where it is on.")
    ] = False,
    site: SiteOpt = "public",
    endpoint: EndpointOpt = None,
    ledger: LedgerOpt = None,
    rate: Annotated[float, typer.Option(help="Calls per second.")] = 0,
    time_limit: Annotated[float, typer.Option(help="Seconds to wait for servers to go.")] = 1800,
    poll_interval: Annotated[float, typer.Option(help="Seconds between status polls.")] = 10,
    credentials_block: Annotated[
        str | None, typer.Option(help="Prefect Secret block holding the NCP keys.")
    ] = None,
) -> None:
    """Stop and terminate every server a rollout created (and any lost create found by name)."""
    from fleet.client import NcpClient
    from fleet.lifecycle import teardown_targets

    ledger_path = ledger or DEFAULT_LEDGER
    if not ledger_path.exists():
        raise _fail(2, f"error: no ledger at {ledger_path}")

    async def survey() -> list[Any]:
        from flows.runtime import resolve_credentials

        creds = await resolve_credentials(credentials_block)
        async with NcpClient(creds, resolve_endpoint(site, endpoint)) as client:
            book = Ledger(ledger_path)
            try:
                return await teardown_targets(client, book, rollout)
            finally:
                book.close()

    try:
        targets = asyncio.run(survey())
    except FleetError as exc:
        raise _fail(2, f"error: {exc}") from None
    if not targets:
        out.print(f"rollout {rollout}: nothing to take down")
        return
    table = Table(title=f"Rollout {rollout}: {len(targets)} servers to stop and terminate")
    table.add_column("server")
    table.add_column("instance")
    table.add_column("in ledger")
    for t in targets:
        table.add_row(t.name, t.instance_no, "yes" if t.recorded else "no: lost create")
    out.print(table)
    if dry_run:
        return
    if not yes:
        if not sys.stdin.isatty():
            raise _fail(2, "error: not a terminal; pass --yes to confirm the teardown")
        if not typer.confirm(f"Terminate these {len(targets)} servers?", default=False):
            raise _fail(1, "nothing done")
    _prefect_defaults()
    from flows.runtime import DEFAULT_RATE
    from flows.teardown import teardown_fleet

    state = asyncio.run(
        teardown_fleet(
            rollout=rollout,
            site=site,
            endpoint=endpoint,
            ledger=str(ledger_path),
            rate=rate or DEFAULT_RATE,
            lift_protection=lift_protection,
            time_limit=time_limit,
            poll_interval=poll_interval,
            credentials_block=credentials_block,
            return_state=True,
        )
    )
    if state.is_completed():
        out.print(f"{rollout}: {state.result()}")
        raise typer.Exit(0)
    err.print(f"error: {state.message}", markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def serve(
    inventories: Inventories,
    cron: Annotated[str, typer.Option(help="When to roll out (cron, in --timezone).")],
    timezone: Annotated[str, typer.Option(help="Time zone of the schedule.")] = "Asia/Seoul",
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
    rollout: RolloutOpt = None,
    rate: Annotated[float, typer.Option(help="Calls per second.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Calls in flight at most.")] = 0,
    site: SiteOpt = "public",
    endpoint: EndpointOpt = None,
    ledger: LedgerOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait until every server is RUN.")] = False,
    credentials_block: Annotated[
        str | None, typer.Option(help="Prefect Secret block holding the NCP keys.")
    ] = None,
    shared_limit: Annotated[
        str | None, typer.Option(help="Prefect global limit shared with other runs.")
    ] = None,
) -> None:
    """Serve provision-fleet on a schedule, and teardown-fleet on demand, from this process."""
    specs = _validated(inventories)
    del specs  # validated now so a bad inventory fails here, not at 3 a.m.
    if not _prefect_api_url():
        raise _fail(
            2,
            "error: schedules need a Prefect server: run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
        )
    from prefect import serve as prefect_serve
    from prefect.client.schemas.schedules import CronSchedule

    from flows.provision import provision_fleet
    from flows.runtime import DEFAULT_CONCURRENCY, DEFAULT_RATE, rollout_name
    from flows.teardown import teardown_fleet

    paths = [str(p.resolve()) for p in inventories]
    name_ = rollout or rollout_name(paths)
    common: dict[str, Any] = {
        "site": site,
        "endpoint": endpoint,
        "ledger": str((ledger or DEFAULT_LEDGER).resolve()),
        "credentials_block": credentials_block,
        "shared_limit": shared_limit,
    }
    provision_deployment = provision_fleet.to_deployment(
        name=name,
        schedules=[CronSchedule(cron=cron, timezone=timezone)],
        parameters={
            "inventories": paths,
            "rollout": name_,
            "rate": rate or DEFAULT_RATE,
            "concurrency": concurrency or DEFAULT_CONCURRENCY,
            "wait": wait,
            **common,
        },
    )
    teardown_deployment = teardown_fleet.to_deployment(
        name=name, parameters={"rollout": name_, **common}
    )
    out.print(
        f"serving provision-fleet/{name} ({cron}, {timezone}) and teardown-fleet/{name}; "
        "Ctrl-C stops (and pauses the schedule)"
    )
    prefect_serve(provision_deployment, teardown_deployment)


@app.command("shared-limit")
def shared_limit_cmd(
    name: Annotated[str, typer.Argument(help="Limit name, e.g. the account's.")],
    rate: Annotated[float, typer.Option(help="Calls per second shared by every run.")],
    burst: Annotated[int, typer.Option(help="Calls that may go at once.")] = 20,
) -> None:
    """Create or update the Prefect global limit that rollouts share with --shared-limit."""
    if not _prefect_api_url():
        raise _fail(2, "error: a shared limit lives on a Prefect server: set PREFECT_API_URL")
    from prefect.client.orchestration import get_client

    async def upsert() -> None:
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name(
                name, limit=burst, slot_decay_per_second=rate
            )

    asyncio.run(upsert())
    out.print(f"global limit {name}: {rate}/s, burst {burst}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def simulator(ctx: typer.Context) -> None:
    """Run the local NCP simulator (all flags: fleet simulator --help)."""
    from fleet.simulator.__main__ import main as simulator_main

    raise typer.Exit(simulator_main(list(ctx.args)))


def main() -> None:
    """Run the command line."""
    try:
        app()
    except FleetError as exc:  # anything not caught closer to its cause
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)
