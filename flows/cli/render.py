"""What the command line prints. Text from users and from NCP is always plain text, never markup.

NCP's messages are free text (Korean included) and may hold brackets: Rich would read
``[bold]`` or ``[/]`` in them as markup, or choke on it. Every cell built from such text goes
through ``plain``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet import (
    ACCOUNT_LIMIT_CODES,
    Binding,
    ErrorKind,
    Extra,
    LeaseInfo,
    LeftAlone,
    PlannedServer,
    PreflightError,
    Problem,
    Record,
    RolloutCounts,
    RolloutSummary,
    State,
    Survey,
    TeardownReport,
    TeardownScope,
    TeardownTarget,
    counts_words,
    iso,
    not_clean,
)
from flows.planview import SAYS, SETTLE, Forecast

__all__ = [
    "counts_line",
    "err",
    "expansion_table",
    "extras_table",
    "failure",
    "iso",
    "out",
    "plain",
    "plan_table",
    "problems",
    "report",
    "rollouts_table",
    "run_summary",
    "servers_table",
    "targets_table",
    "teardown_summary",
]

# Lines stay whole, for grep and logs; tables are not cut to 80 columns when piped.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)


def plain(value: object) -> Text:
    """Return a value as a table cell that Rich shows exactly as it is."""
    return Text("" if value is None else str(value))


def say(console: Console, message: str) -> None:
    """Print a line made of user or NCP text, with no markup and no highlighting."""
    console.print(message, markup=False, highlight=False)


@dataclass
class StopNotice:
    """Why a command stopped, as it said it on stderr: kept for a JSON document of the error."""

    messages: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# Set while a command's stdout is a JSON document (flows.cli.documents): what stopped it, if any.
stopped: StopNotice | None = None


def report(message: str) -> None:
    """Print the line a command stops on (``error: ...``); keep it for a JSON error document."""
    say(err, message)
    if stopped is not None:
        stopped.messages.append(message.removeprefix("error: "))


def problems(found: Sequence[Problem]) -> None:
    """Print inventory problems, one per line, and the count."""
    for problem in found:
        say(err, str(problem))
    if stopped is not None:
        stopped.problems += found
    report(f"{len(found)} problem(s) found; nothing was sent.")


def failure(error: BaseException) -> None:
    """Print why a command stopped: a preflight's every problem, as validation's; else the error."""
    if isinstance(error, PreflightError) and error.problems:
        problems(error.problems)
    else:
        report(f"error: {error}")


def _names(names: Sequence[str], shown: int | None = 6) -> Text:
    if shown is None:  # --full: every name
        return plain(", ".join(names))
    more = f" … +{len(names) - shown} (--full shows all)" if len(names) > shown else ""
    return plain(", ".join(names[:shown]) + more)


def expansion_table(specs: Sequence[PlannedServer]) -> Table:
    """Return what each inventory row expands to: its first and last names, count and place."""
    rows: dict[tuple[str, int], list[PlannedServer]] = {}
    for spec in specs:
        rows.setdefault((spec.file, spec.line), []).append(spec)
    table = Table(title=f"{len(specs)} servers from {len(rows)} rows")
    for column in ("row", "first", "last", "servers", "region", "vpcNo"):
        table.add_column(column, justify="right" if column == "servers" else "left")
    for (file, line), made in rows.items():
        table.add_row(
            plain(f"{file}:{line}"),
            plain(made[0].name),
            plain(made[-1].name),
            str(len(made)),
            plain(made[0].region or "default"),
            plain(made[0].vpc_no),
        )
    return table


def plan_table(
    rollout: str, total: int, found: Survey, seen: Forecast, *, full: bool = False
) -> Table:
    """Return the one summary of what a run with these flags would do, and what it found.

    Every row reads the forecast (what the run changes, leaves for a flag, or will not do) or
    the survey (what is up to date, what stops or is skipped): a server shows under one action.
    """
    table = Table(title=f"Rollout {rollout}: {total} servers")
    for column, justify in (("what", "left"), ("servers", "right"), ("names", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    touched = {c.name for c in seen.changes} | {c.name for c, _ in (*seen.pending, *seen.withheld)}
    by_action = {a: [c.name for c in seen.changes if c.action.value == a] for a in SAYS}
    by_action[SETTLE] = [s.name for s in seen.settle]
    rows: list[tuple[str, list[str]]] = [(SAYS[a], names) for a, names in by_action.items()]
    for flag in sorted({flag for _, flag in seen.pending}):
        left = [f"{c.name} ({c.action.value})" for c, f in seen.pending if f == flag]
        rows.append((f"left for {flag}", left))
    rows += [
        ("not done: " + why, [c.name for c, w in seen.withheld if w == why])
        for why in sorted({why for _, why in seen.withheld})
    ]
    rows += [
        ("up to date (created by an earlier run)", [n for n in found.done if n not in touched]),
        ("in flight before, found", list(found.reconciled)),
        ("exist, not this rollout's", [f"{n} ({nos})" for n, nos in found.conflicts]),
        ("failed permanently before (--retry-failed)", list(found.skipped_failed)),
        ("failed before, sent again", list(found.delta.retried)),
        ("torn down before, created anew", list(found.delta.renewed)),
        ("changed while in flight: settled first", list(found.delta.held)),
        ("several servers under one name", [f"{n} ({nos})" for n, nos in found.duplicates]),
    ]
    for label, names in rows:
        if names or label in ("to create", "up to date (created by an earlier run)"):
            table.add_row(label, str(len(names)), _names(names, None if full else 6))
    return table


def rollouts_table(
    shown: str, rows: Sequence[tuple[str, RolloutCounts, Binding | None, LeaseInfo | None]]
) -> Table:
    """Return the table of every rollout in a ledger."""
    table = Table(title=f"Rollouts in {shown}")
    numbers = ("running", "not running", "terminating", "terminated", "failed", "in flight",
               "planned", "of")  # fmt: skip
    for column in ("rollout", *numbers, "where", "run by"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for name, c, binding, lease in rows:
        where = "" if binding is None else binding.endpoint
        run_by = "" if lease is None else f"{lease.holder} since {iso(lease.acquired_at)}"
        counts = (
            c.running,
            c.created + c.stopped + c.starting + c.resizing,
            c.terminating,
            c.terminated + c.gone,
            c.failed,
            c.in_flight,
            c.planned,
            c.total,
        )
        table.add_row(plain(name), *map(str, counts), plain(where), plain(run_by))
    return table


def servers_table(
    rollout: str, records: Sequence[Record], duplicates: dict[str, list[str]]
) -> Table:
    """Return the table of one rollout's servers."""
    table = Table(title=f"Rollout {rollout}")
    for column in (
        "server",
        "region",
        "instance",
        "state",
        "status",
        "attempts",
        "error",
    ):
        table.add_column(column)
    for r in records:
        error = " ".join(x for x in (r.error_code, r.error_message) if x)
        number = r.instance_no or ""
        if r.name in duplicates:
            number += " (also " + " ".join(duplicates[r.name]) + ": same name)"
        table.add_row(
            plain(r.name),
            plain(r.region or "default"),
            plain(number),
            plain(r.state.value),
            plain(r.server_status or ""),
            str(r.attempts),
            plain(error),
        )
    return table


def counts_line(rollout: str, c: RolloutCounts) -> str:
    """Return one line of a rollout's counts: every state one of its servers is in."""
    line = f"{rollout}: {counts_words(c)}"
    if c.duplicates:
        line += f"; {c.duplicates} extra server(s) under names already used (see results)"
    return line


def converge_lines(summary: RolloutSummary, records: Sequence[Record]) -> list[str]:
    """Return what a run found drifted, left for a flag, and which refusals clear by themselves."""
    lines = []
    gone, stopped = summary.drifted.get("gone", 0), summary.drifted.get("stopped", 0)
    if gone or stopped:
        lines.append(f"drift: {gone} gone out of band (created again), {stopped} stopped (started)")
    if summary.reshaped or summary.destroyed:
        lines.append(
            f"changed: {summary.reshaped} resized or replaced, {summary.destroyed} destroyed"
        )
    lines += [f"  not changed: {name}: {why}" for name, why in summary.unchanged.items()]
    if summary.pending:
        flags = {"resize": "--replace", "replace": "--replace", "destroy": "--prune"}
        left = ", ".join(f"{n} to {a} ({flags.get(a, '')})" for a, n in summary.pending.items())
        lines.append(f"left for a flag: {left}")
    failed = [r for r in records if r.state == State.FAILED and r.error_kind == ErrorKind.PERMANENT]
    account = sum(1 for r in failed if r.error_code in ACCOUNT_LIMIT_CODES)
    if failed:
        lines.append(
            f"refused: {account} for the account's limits (sent again on the next run), "
            f"{len(failed) - account} for the row itself (sent again when the row changes, or "
            "with --retry-failed)"
        )
    return lines


def run_summary(summary: RolloutSummary, records: Sequence[Record], ledger: str) -> None:
    """Print how a run ended: what the API did, failures, then this run's work and the rollout's."""
    say(
        out,
        f"creating took {summary.seconds:.2f} s; {summary.api_calls} API calls: "
        f"{summary.throttled} throttled, {summary.unprocessed} failed unprocessed (retried), "
        f"{summary.ambiguous} ambiguous (looked up by name, {summary.lookups} look-ups), "
        f"{summary.settled} settled from an earlier run",
    )
    # Each stage's line was printed as the stage ended (flows.waves.set_stage_listener).
    for line in _stage_lines(summary):
        say(out, line)
    say(out, summary.rate_line)
    failures = [r for r in records if not_clean(r)]
    for r in failures[:10]:
        say(
            out,
            f"  {r.name}: {r.state.value} {r.error_kind or ''} {r.error_code or ''} "
            f"{r.error_message or ''} (request {r.request_id or '-'})",
        )
    if len(failures) > 10:
        say(out, f"  … and {len(failures) - 10} more")
    for line in [*converge_lines(summary, records), *_change_lines(summary)]:
        say(out, line)
    say(out, f"results: {summary.results}\nledger:  {ledger}")
    say(out, summary.run.line)
    say(out, counts_line(f"rollout {summary.rollout}", summary.counts))


def _stage_lines(summary: RolloutSummary) -> list[str]:
    """Return why a staged run stopped, and what its rollback took back and left."""
    lines = []
    if summary.stopped:
        lines.append(f"stopped: {summary.stopped}")
    if summary.taken_back or summary.rollback_left:
        took = ", ".join(summary.taken_back[:10])
        n = len(summary.taken_back)
        line = f"rollback: took back {n} server{'' if n == 1 else 's'} this run made"
        line += f": {took}" if took else ""
        left = len(summary.rollback_left)
        lines.append(line + (f"; left {left}, still billed" if left else ""))
        lines += [f"  {n}: left by the rollback: {why}" for n, why in summary.rollback_left.items()]
    return lines


def _change_lines(summary: RolloutSummary) -> list[str]:
    """Return what this run finished of earlier runs' changes, what it left, and any twins."""
    return [
        *(f"  {name}: {what} (an earlier run began it)" for name, what in summary.finished.items()),
        *(f"  {name}: not finished yet: {why}" for name, why in summary.unfinished.items()),
        *(f"  {twin}" for twin in summary.twins),
    ]


def targets_table(rollout: str, targets: Sequence[TeardownTarget]) -> Table:
    """Return the table of what a teardown takes down (and what protection keeps)."""
    taken = [t for t in targets if not t.protected]
    table = Table(title=f"Rollout {rollout}: {len(taken)} servers to stop and terminate")
    for column in ("server", "region", "instance", "in ledger"):
        table.add_column(column, no_wrap=True)
    for t in targets:
        recorded = "yes" if t.recorded else "no: lost create, with our marker"
        table.add_row(
            plain(t.name),
            plain(t.region or "default"),
            plain(t.instance_no),
            recorded + ("; protected: left" if t.protected else ""),
        )
    return table


def left_table(rollout: str, left: Sequence[LeftAlone]) -> Table:
    """Return the table of servers under the rollout's names that a teardown leaves alone."""
    table = Table(title=f"Rollout {rollout}: {len(left)} servers not this rollout's: left alone")
    for column in ("server", "region", "instance", "why"):
        table.add_column(column)
    for item in left:
        table.add_row(
            plain(item.name), plain(item.region or "default"), plain(item.instance_no), item.reason
        )
    return table


def extras_table(rollout: str, side: Sequence[Extra]) -> Table:
    """Return the table of the public IPs and extra disks a teardown returns after the servers."""
    table = Table(title=f"Rollout {rollout}: {len(side)} public IPs and disks to return")
    for column in ("kind", "number", "address or name", "made with", "region"):
        table.add_column(column)
    for r in side:
        table.add_row(
            r.kind,
            plain(r.number),
            plain(r.label),
            plain(r.server),
            plain(r.region or "default"),
        )
    return table


def teardown_plan(rollout: str, scope: TeardownScope, side: Sequence[Extra]) -> bool:
    """Print a teardown's plan (the dry run's, and the teardown's own); False: nothing to do."""
    if scope.left:
        out.print(left_table(rollout, scope.left))
    for name in scope.pending:
        say(
            out,
            f"{name}: a create may have made it, and NCP does not list it yet: looked up first, "
            "and taken if it carries this rollout's marker",
        )
    if not scope.targets and not scope.pending:
        out.print(f"rollout {rollout}: nothing to take down")
        return False
    if scope.targets:
        out.print(targets_table(rollout, scope.targets))
    if side:
        out.print(extras_table(rollout, side))
    return True


def teardown_summary(rollout: str, report: TeardownReport) -> None:
    """Print how a teardown ended: what it took, and what it left on NCP (still billed)."""
    say(
        out,
        f"{rollout}: {len(report.terminated)} terminated, {len(report.protected)} protected, "
        f"{len(report.left_live)} not taken down (still billed), "
        f"{len(report.unsettled)} creates still unknown; "
        f"{len(report.returned)} public IPs and disks returned; "
        f"{len(report.left_alone)} left alone (not this rollout's)",
    )
    for alone in report.left_alone:
        say(out, f"  left alone: {alone.name} ({alone.instance_no}): {alone.reason}")
    for name in report.found:
        say(out, f"  {name}: its create's server was found by its marker, and taken down")
    for name, why in [*report.left_live.items(), *report.unsettled.items()]:
        say(out, f"  {name}: {why}")
    if report.left_live or report.unsettled:
        say(out, "  run the teardown again to finish: the ledger keeps what is still to go")
    for resource, why in report.extras_left.items():
        say(out, f"  still billed: {resource}: {why}")
