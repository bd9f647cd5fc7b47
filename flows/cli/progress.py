"""A progress bar fed by reading the ledger, so it works whatever runs the flow.

Each update reads the rollout's counts (one grouped query), never its records: at 100,000
servers a read of every record took seconds and a few hundred MB, in the flow's own process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fleet import Ledger, LedgerError, LedgerLocation, Record, RolloutCounts, State
from flows.cli.render import err

__all__ = ["progress_bar"]


class _Share:
    """The share of a rollout one run does: inventory servers not settled before it began."""

    def __init__(self, names: Sequence[str], before: Sequence[Record], retry_failed: bool) -> None:
        # A failed server is sent again only with --retry-failed: else it is not this run's.
        done = [r for r in before if r.state.kept or (r.state == State.FAILED and not retry_failed)]
        self.total = len(set(names) - {r.name for r in done})
        # What was settled before stays so: the rollout's counts less these are this run's.
        self.created = sum(1 for r in done if r.state.kept)
        self.failed = sum(1 for r in done if r.state == State.FAILED)
        self.running = sum(1 for r in done if r.state == State.RUNNING)

    def count(self, now: RolloutCounts) -> tuple[int, int, str]:
        """Return (done, total, detail) of this run's servers, never done past total."""
        created = max(0, now.made - now.terminated - now.gone - self.created)
        failed = max(0, now.failed - self.failed)
        running = max(0, now.running - self.running)
        detail = f"{created} created, {failed} failed, {running} running (this run)"
        return min(created + failed, self.total), self.total, detail


def _watch(target: LedgerLocation, rollout: str, share: _Share, stop: threading.Event) -> None:
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
        task = bar.add_task(rollout, total=None, detail="")
        finished = False
        # Still a scan of the rollout's rows, under the write lock on SQLite: a large rollout is
        # counted less often (100,000 servers: every 5 s), so the bar never holds a claim up.
        every = max(0.5, share.total / 20_000)
        while not finished:
            finished = stop.wait(every)  # one last read after the run ends
            try:
                if book is None:
                    if target.missing:
                        continue  # the flow has not created it yet
                    book = Ledger(target)
                done, total, detail = share.count(book.counts(rollout))
            except LedgerError:
                continue  # the run reports ledger trouble itself
            bar.update(task, completed=done, total=total, detail=detail)
    if book is not None:
        book.close()


@contextmanager
def progress_bar(
    target: LedgerLocation, rollout: str, names: Sequence[str], *, retry_failed: bool = False
) -> Iterator[None]:
    """Show on stderr, while the body runs, how far this run is through its own servers."""
    stop = threading.Event()
    before: Sequence[Record] = ()
    if not target.missing:
        with Ledger(target) as book:
            before = book.records(rollout)
    share = _Share(names, before, retry_failed)
    thread = threading.Thread(target=_watch, args=(target, rollout, share, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
