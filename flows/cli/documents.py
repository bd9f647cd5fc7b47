"""The JSON documents of ``status --json``, ``plan --json`` and ``teardown --dry-run --json``.

Each command prints one document, alone on stdout (every other line goes to stderr), so that
``fleet status --json | jq`` works. Keys are snake_case; absent values are null. A command that
stops on an error prints, in its document's place, an error document
(``schemas/error.schema.json``): ``{"error": {"message", "exit_code", "problems"}}``, its exit
code unchanged; so does ``export --format json``. The shapes are JSON Schemas in ``schemas/``,
which the tests hold the output to.
"""

from __future__ import annotations

import functools
import json
import sys
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

import typer

from fleet import (
    Address,
    Binding,
    Change,
    Extra,
    LeaseInfo,
    PlannedServer,
    ProvisionOptions,
    Record,
    RolloutCounts,
    Survey,
    TeardownScope,
    TeardownTarget,
)
from flows.cli import render
from flows.cli.exits import exit_code
from flows.planview import SETTLE, Forecast

__all__ = [
    "document_mode",
    "documented",
    "error_document",
    "plan_document",
    "print_document",
    "rollouts_document",
    "servers_document",
    "teardown_document",
]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def document_mode(on: bool) -> Iterator[None]:
    """While on, stdout is the document's; an error that stops the command is printed as one.

    Every other line goes to stderr. The error document is printed unless a document was already.
    """
    if not on or render.stopped is not None:  # off, or on already (an outer command's)
        yield
        return
    render.out.file = sys.stderr
    render.stopped = said = render.StopNotice()
    _printed.clear()
    try:
        yield
    except BaseException as exc:
        code = _exit_of(exc)
        if code and not _printed:
            if not said.messages and not isinstance(exc, typer.Exit):
                said.messages.append(str(exc))
            print_document(error_document(said, code))
        raise
    finally:
        render.stopped = None
        render.out.file = None  # type: ignore[assignment]  # back to the current sys.stdout


_printed: list[bool] = []  # one entry once a document is on stdout


def _exit_of(exc: BaseException) -> int:
    """Return the exit code an exception ends the command with (0: none, a clean exit)."""
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    return exit_code(exc)


def documented(command: F) -> F:
    """Run a command in document mode when it prints a document (--json, --format json)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with document_mode(bool(kwargs.get("json_")) or kwargs.get("format_") == "json"):
            return command(*args, **kwargs)

    return typing.cast(F, wrapper)


def error_document(said: render.StopNotice, code: int) -> dict[str, Any]:
    """Return why a command stopped as one document (``schemas/error.schema.json``)."""
    return {
        "error": {
            "message": "\n".join(said.messages) or f"stopped with exit code {code}",
            "exit_code": code,
            "problems": [
                {"file": p.file, "line": p.line, "column": p.column, "message": p.message}
                for p in said.problems
            ],
        }
    }


def print_document(document: Mapping[str, Any]) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    _printed.append(True)


def _counts(c: RolloutCounts) -> dict[str, int]:
    return {**asdict(c), "total": c.total, "live": c.live}


def rollouts_document(
    ledger: str, rows: Sequence[tuple[str, RolloutCounts, Binding | None, LeaseInfo | None]]
) -> dict[str, Any]:
    """Return every rollout of a ledger with its counts, endpoint and current run."""
    return {
        "ledger": ledger,
        "rollouts": [
            {
                "rollout": name,
                "counts": _counts(c),
                "endpoint": binding.endpoint if binding else None,
                "rehearsal": binding.rehearsal if binding else None,
                "run_by": lease.holder if lease else None,
            }
            for name, c, binding, lease in rows
        ],
    }


def servers_document(
    ledger: str,
    rollout: str,
    records: Sequence[Record],
    counts: RolloutCounts,
    addresses: Mapping[str, Address],
) -> dict[str, Any]:
    """Return one rollout's servers as the ledger records them (``schemas/status.schema.json``).

    Each server's ``state`` is its one state in the ledger, which ``counts`` count; its region
    is NCP's code (null: not made yet, and sent to NCP's default region).
    """
    servers = []
    for r in records:
        seen = addresses.get(r.instance_no or "")
        servers.append(
            {
                "name": r.name,
                "region": _region(r),
                "vpc_no": r.vpc_no,
                "instance_no": r.instance_no,
                "state": r.state.value,
                "status": r.server_status.value if r.server_status else None,
                "attempts": r.attempts,
                "error_kind": r.error_kind.value if r.error_kind else None,
                "error_code": r.error_code,
                "error_message": r.error_message,
                "private_ip": seen.private_ip if seen else None,
                "public_ip": seen.public_ip if seen else None,
                "file": r.file,
                "line": r.line,
            }
        )
    return {"ledger": ledger, "rollout": rollout, "counts": _counts(counts), "servers": servers}


def _region(r: Record) -> str | None:
    """Return a server's region as NCP's code: the row's, or the one NCP gave it (None: unknown)."""
    if r.region:
        return r.region
    listed = json.loads(r.response).get("regionCode") if r.response else None
    return str(listed) if listed else None


def _change(c: Change, default_region: str, **extra: str) -> dict[str, Any]:
    """Return one change as the plan document writes it: every key, absent values null."""
    return {
        "name": c.name,
        "action": c.action.value,
        "region": c.region or default_region,
        "instance_no": c.instance_no,
        "fields": [{"field": f, "old": o, "new": n} for f, o, n in c.fields],
        "note": c.note or None,
        "resuming": c.resuming,
        **extra,
    }


def _settle(spec: PlannedServer, default_region: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "action": SETTLE,
        "region": spec.region or default_region,
        "instance_no": None,
        "fields": [],
        "note": "in flight when an earlier run stopped: looked up first, created only if absent",
        "resuming": False,
    }


def plan_document(
    ledger: str,
    rollout: str,
    specs: Sequence[PlannedServer],
    found: Survey,
    seen: Forecast,
    *,
    default_region: str,
    options: ProvisionOptions,
) -> dict[str, Any]:
    """Return what ``provision`` with these flags would do (``schemas/plan.schema.json``).

    ``changes``: one action per server the run changes: ``settle`` (a create an earlier run
    left in flight, looked up first), ``create``, ``recreate``, ``start``, ``resize``,
    ``replace``, ``destroy``, and what earlier runs began and every run finishes: ``retire``,
    ``terminate``, a ``resize`` or ``start`` with ``resuming`` (``fleet.plan.changes``); ``counts``
    has every action, zeros included.
    ``pending``: changes left for a flag not given (``flag``); ``withheld``: changes the flags
    ask for that the run would still not make (``why``). A region is always NCP's code.
    """
    return {
        "ledger": ledger,
        "rollout": rollout,
        "servers": len(specs),
        "flags": {"replace": options.replace, "prune": options.prune},
        "changes": [_settle(s, default_region) for s in seen.settle]
        + [_change(c, default_region) for c in seen.changes],
        "counts": seen.counts(),
        "pending": [_change(c, default_region, flag=flag) for c, flag in seen.pending],
        "withheld": [_change(c, default_region, why=why) for c, why in seen.withheld],
        "done": list(found.done),
        "conflicts": [{"name": n, "instance_nos": nos} for n, nos in found.conflicts],
        "failed_before": list(found.skipped_failed),
        "not_in_inventory": list(found.delta.removed),
        "changed_in_inventory": list(found.delta.changed),
    }


def _target(t: TeardownTarget) -> dict[str, Any]:
    return {
        "name": t.name,
        "instance_no": t.instance_no,
        "region": t.region or None,
        "recorded": t.recorded,
    }


def teardown_document(
    ledger: str, rollout: str, scope: TeardownScope, side: Sequence[Extra], *, lift: bool = False
) -> dict[str, Any]:
    """Return the teardown's own plan: what it takes, keeps, looks up, leaves, and returns.

    ``servers`` are exactly the instance numbers a teardown stops and terminates; ``protected``
    those termination protection keeps (unless lifted); ``pending`` the names whose create may
    have made a server NCP does not list yet: the teardown looks them up, and takes what
    carries the rollout's marker.
    """
    return {
        "ledger": ledger,
        "rollout": rollout,
        "servers": [_target(t) for t in scope.taken(lift_protection=lift)],
        "protected": [] if lift else [_target(t) for t in scope.protected],
        "pending": list(scope.pending),
        "left_alone": [
            {
                "name": a.name,
                "instance_no": a.instance_no,
                "region": a.region or None,
                "why": a.reason,
            }
            for a in scope.left
        ],
        "returned": [
            {
                "kind": r.kind,
                "number": r.number,
                "label": r.label,
                "server": r.server,
                "server_no": r.server_no,
                "region": r.region or None,
            }
            for r in side
        ],
    }
