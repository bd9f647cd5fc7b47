"""Results files and summaries: what a rollout did, one row per server, for people and scripts.

The file is plain UTF-8, without a byte order mark: a script's CSV reader, ``cut`` or ``awk`` reads
its first column as ``serverName`` (with a BOM it read U+FEFF and ``serverName``), and a
spreadsheet shows NCP's Korean messages once UTF-8 is picked on import. It is private (0600) and
written atomically. A cell that starts like a formula (``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is prefixed with ``'``, so a spreadsheet shows NCP's text instead of running it.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fleet.errors import ErrorKind
from fleet.ledger import Address, Instance, Ledger, Record, Role, RolloutCounts
from fleet.report.summary import RunCounts
from fleet.states import State

__all__ = [
    "COLUMNS",
    "as_row",
    "counts",
    "duplicates_by_name",
    "neutralise",
    "results_path",
    "run_counts",
    "tally",
    "write_results",
    "write_rollout_results",
]

# Rows read at once when a whole rollout is written or counted: the flow's memory stays the same
# at 1,000 servers and at 100,000, and no read holds more than this many records.
PAGE = 2_000
# Failures a summary shows by name (the artifact, the terminal); the results file has them all.
FIRST_FAILURES = 20

N = TypeVar("N", RolloutCounts, RunCounts)

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
    "regionCode",
    "vpcNo",
    "adopted",
    "secondsToRun",
    "duplicateInstanceNos",
    "privateIp",
    "publicIp",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def results_path(ledger_shown: str | Path, rollout: str) -> Path:
    """Return where a rollout's results file goes: beside a file ledger, else under .fleet/."""
    text = str(ledger_shown)
    folder = Path(".fleet") if "://" in text else Path(text).parent
    return folder / "results" / f"{rollout}.csv"


def neutralise(value: object) -> object:
    """Return a cell a spreadsheet will show as text, never evaluate (numbers pass as they are)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def duplicates_by_name(instances: Iterable[Instance]) -> dict[str, list[str]]:
    """Return, per server name, the numbers of the other servers found under it."""
    out: dict[str, list[str]] = defaultdict(list)
    for instance in instances:
        if instance.role == Role.DUPLICATE:
            out[instance.name].append(instance.instance_no)
    return dict(out)


def as_row(
    r: Record, duplicates: Sequence[str] = (), address: Address | None = None
) -> tuple[object, ...]:
    """Return one server's results row, in COLUMNS order (its addresses as last seen RUN)."""
    return (
        r.name,
        r.instance_no or "",
        r.state.value,
        r.server_status.value if r.server_status else "",
        r.request_id or "",
        r.attempts,
        r.error_kind.value if r.error_kind else "",
        r.error_code or "",
        r.error_message or "",
        "" if r.http_status is None else r.http_status,
        r.file,
        r.line,
        r.region,
        r.vpc_no,
        "yes" if r.adopted else "",
        "" if r.run_seconds is None else f"{r.run_seconds:.1f}",
        " ".join(duplicates),
        (address.private_ip if address else None) or "",
        (address.public_ip if address else None) or "",
    )


def write_results(
    path: str | Path,
    records: Iterable[Record],
    duplicates: Mapping[str, Sequence[str]] | None = None,
    addresses: Mapping[str, Address] | None = None,
) -> Path:
    """Write the results CSV atomically and privately, so a reader never sees half a file."""
    dups, seen = duplicates or {}, addresses or {}
    return _write_rows(path, ((r, dups.get(r.name, ())) for r in records), seen)


def counts(records: Sequence[Record]) -> RolloutCounts:
    """Count servers per state (the ledger's one state of each), and their duplicates."""
    per_state = Counter(r.state for r in records)
    return RolloutCounts(
        **{s.value: per_state[s] for s in State if s != State.DEPOSED},
        duplicates=sum(r.duplicates for r in records if r.state.live),
    )


# Before a server exists: the states a create has not made one in (yet).
_NOT_MADE = frozenset({State.PLANNED, State.IN_FLIGHT, State.FAILED})


def run_counts(
    records: Sequence[Record], sent: Collection[str], settling: Collection[str], skipped: int
) -> RunCounts:
    """Count what one run did: its ``sent`` and ``settling`` servers' states after it."""
    created = failed = settled = unknown = 0
    for r in records:
        ours = r.name in sent or r.name in settling
        made = r.state not in _NOT_MADE
        unknown += ours and r.state == State.IN_FLIGHT
        if r.name in settling:
            settled += made or r.state == State.FAILED
        elif r.name in sent:
            created += made
            failed += r.state == State.FAILED
    return RunCounts(len(sent) + len(settling), created, settled, failed, unknown, skipped)


def pages(book: Ledger, rollout: str) -> Iterator[list[Record]]:
    """Yield a rollout's records PAGE at a time, in inventory order."""
    names = book.names(rollout)
    for i in range(0, len(names), PAGE):
        yield book.records(rollout, names[i : i + PAGE])


def write_rollout_results(path: str | Path, book: Ledger, rollout: str) -> Path:
    """Write every server of a rollout to the results file, reading the ledger a page at a time."""
    seen = book.addresses(rollout)

    def rows() -> Iterator[tuple[Record, Sequence[str]]]:
        for page in pages(book, rollout):
            dups = duplicates_by_name(
                book.instances(rollout, [r.name for r in page if r.duplicates])
            )
            yield from ((r, dups.get(r.name, ())) for r in page)

    return _write_rows(path, rows(), seen)


def _write_rows(
    path: str | Path, rows: Iterable[tuple[Record, Sequence[str]]], seen: Mapping[str, Address]
) -> Path:
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with open(fd, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(
            tuple(neutralise(v) for v in as_row(r, dups, seen.get(r.instance_no or "")))
            for r, dups in rows
        )
    os.replace(tmp, path)
    return path


@dataclass(frozen=True, slots=True)
class Tally:
    """A rollout's records counted a page at a time: all a run's summary and artifacts need."""

    counts: RolloutCounts
    run: RunCounts
    failures: tuple[Record, ...]  # the first FIRST_FAILURES not cleanly created, in order
    not_clean: int  # how many are not cleanly created (not created, or with an error)
    failed: tuple[Record, ...]  # every failed one, and every one with a status or timeout error


# States a run leaves work in: not made (yet), or a change not finished.
_UNFINISHED = _NOT_MADE | {State.STARTING, State.RESIZING, State.TERMINATING}


def not_clean(r: Record) -> bool:
    """Whether a server is one to show by name: not made, a change unfinished, or an error.

    A server a run meant to take down (terminated, pruned) is done, not a failure.
    """
    return r.state in _UNFINISHED or (r.state.kept and r.error_kind is not None)


def tally(
    book: Ledger, rollout: str, sent: Collection[str], settling: Collection[str], skipped: int
) -> Tally:
    """Count a rollout's records (and one run's share) a page at a time, keeping only failures."""
    run = RunCounts(len(sent) + len(settling), skipped=skipped)
    first: list[Record] = []
    failed: list[Record] = []
    bad = 0
    for page in pages(book, rollout):
        mine = run_counts(page, sent, settling, 0)
        run = dataclasses.replace(
            run,
            created=run.created + mine.created,
            settled=run.settled + mine.settled,
            failed=run.failed + mine.failed,
            unknown=run.unknown + mine.unknown,
        )
        for r in page:
            if not_clean(r):
                bad += 1
                if len(first) < FIRST_FAILURES:
                    first.append(r)
            if r.state == State.FAILED or r.error_kind in (ErrorKind.STATUS, ErrorKind.TIMEOUT):
                failed.append(r)
    # The rollout's counts as status shows them: one grouped read of the ledger's states.
    total = book.counts(rollout)
    return Tally(total, run, tuple(first), bad, tuple(failed))


def _plus(a: N, b: N) -> N:
    return dataclasses.replace(
        a, **{f.name: getattr(a, f.name) + getattr(b, f.name) for f in dataclasses.fields(a)}
    )
