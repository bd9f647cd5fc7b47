"""Results files and summaries: what a rollout did, one row per server, for people and scripts."""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .ledger import Record

__all__ = ["COLUMNS", "as_row", "results_path", "summarize", "write_results"]

COLUMNS = (
    "serverName",
    "serverInstanceNo",
    "state",
    "serverInstanceStatus",
    "requestId",
    "attempts",
    "errorKind",
    "errorCode",
    "errorMessage",
    "httpStatus",
    "inventoryFile",
    "inventoryLine",
    "adopted",
    "secondsToRun",
    "teardown",
)


def results_path(ledger_path: str | Path, rollout: str) -> Path:
    """Return where a rollout's results file goes: beside the ledger, named after the rollout."""
    return Path(ledger_path).parent / "results" / f"{rollout}.csv"


def as_row(r: Record) -> tuple[object, ...]:
    """Return one server's results row, in COLUMNS order."""
    return (
        r.name,
        r.instance_no or "",
        r.state,
        r.server_status or "",
        r.request_id or "",
        r.attempts,
        r.error_kind or "",
        r.error_code or "",
        r.error_message or "",
        "" if r.http_status is None else r.http_status,
        r.file,
        r.line,
        "yes" if r.adopted else "",
        "" if r.run_seconds is None else f"{r.run_seconds:.1f}",
        r.teardown or "",
    )


def write_results(path: str | Path, records: Sequence[Record]) -> Path:
    """Write the results CSV atomically, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(as_row(r) for r in records)
    os.replace(tmp, path)
    return path


def summarize(records: Sequence[Record]) -> dict[str, int]:
    """Count servers per outcome: created, failed, in_flight (unknown), planned, and running."""
    counts = Counter(r.state for r in records)
    out = {state: counts.get(state, 0) for state in ("created", "failed", "in_flight", "planned")}
    out["total"] = len(records)
    out["running"] = sum(1 for r in records if r.server_status == "RUN")
    out["terminated"] = sum(1 for r in records if r.teardown == "terminated")
    return out
