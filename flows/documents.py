"""The JSON documents of ``status --json``, ``plan --json`` and ``teardown --dry-run --json``.

Each command prints one document, alone on stdout (every other line goes to stderr), so that
``fleet status --json | jq`` works. Keys are snake_case; absent values are null.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from fleet.changes import Change
from fleet.ledger import Address, Binding, Extra, LeaseInfo, Record, RolloutCounts
from fleet.spec import ServerSpec
from fleet.survey import Survey
from fleet.teardown import TeardownScope, TeardownTarget
from flows import render

__all__ = [
    "document_mode",
    "plan_document",
    "print_document",
    "rollouts_document",
    "servers_document",
    "teardown_document",
]


@contextmanager
def document_mode(on: bool) -> Iterator[None]:
    """While on, send everything the command prints to stderr: stdout is the document's."""
    if not on:
        yield
        return
    render.out.file = sys.stderr
    try:
        yield
    finally:
        render.out.file = None  # type: ignore[assignment]  # back to the current sys.stdout


def print_document(document: Mapping[str, Any]) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


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
    """Return one rollout's servers as the ledger records them, with their addresses."""
    servers = []
    for r in records:
        seen = addresses.get(r.instance_no or "")
        servers.append(
            {
                "name": r.name,
                "region": r.region,
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


def _settle(spec: ServerSpec) -> dict[str, Any]:
    return {"name": spec.name, "action": "settle", "region": spec.region}


def plan_document(
    ledger: str,
    rollout: str,
    specs: Sequence[ServerSpec],
    found: Survey,
    changes: Sequence[Change],
) -> dict[str, Any]:
    """Return what a run would do: ``changes``, one action per server that needs one.

    Actions: ``create``, ``recreate``, ``start``, ``resize``, ``replace``, ``destroy``
    (``fleet.changes``), and ``settle``: a create an earlier run left in flight, looked up first
    and created only if surely absent. Servers needing nothing are left out.
    """
    counts = Counter(c.action.value for c in changes)
    return {
        "ledger": ledger,
        "rollout": rollout,
        "servers": len(specs),
        "changes": [_settle(s) for s in found.unsettled] + [c.as_dict() for c in changes],
        "counts": dict(counts),
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
        "region": t.region,
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
            {"name": a.name, "instance_no": a.instance_no, "region": a.region, "why": a.reason}
            for a in scope.left
        ],
        "returned": [
            {
                "kind": r.kind,
                "number": r.number,
                "label": r.label,
                "server": r.server,
                "server_no": r.server_no,
                "region": r.region,
            }
            for r in side
        ],
    }
