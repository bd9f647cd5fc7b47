"""A progress bar fed by reading the ledger, so it works whatever runs the flow."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fleet.config import LedgerLocation
from fleet.errors import LedgerError
from fleet.ledger import Ledger, Record
from fleet.states import ServerStatus, State
from flows.render import err

__all__ = ["progress_bar"]


class _Share:
    """The share of a rollout one run does: inventory servers not settled before it began."""

    def __init__(self, names: Sequence[str], before: Sequence[Record], retry_failed: bool) -> None:
        # A failed server is sent again only with --retry-failed: else it is not this run's.
        settled = (State.CREATED,) if retry_failed else (State.CREATED, State.FAILED)
        self.names = set(names)
        self.before = {r.name for r in before if r.state in settled}

    def count(self, records: Sequence[Record]) -> tuple[int, int, str]:
        """Return (done, total, detail) of this run's servers, never done past total."""
        mine = [r for r in records if r.name in self.names and r.name not in self.before]
        total = len(self.names - self.before)
        created = sum(1 for r in mine if r.state == State.CREATED)
        failed = sum(1 for r in mine if r.state == State.FAILED)
        running = sum(1 for r in mine if r.server_status == ServerStatus.RUN)
        detail = f"{created} created, {failed} failed, {running} running (this run)"
        return min(created + failed, total), total, detail


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
        # Each read is every record of the rollout, in the flow's own process: a large rollout
        # is read less often (10,000 servers: every 5 s), so the bar never slows the run.
        every = max(0.5, len(share.names) / 2000)
        while not finished:
            finished = stop.wait(every)  # one last read after the run ends
            try:
                if book is None:
                    if target.missing:
                        continue  # the flow has not created it yet
                    book = Ledger(target)
                done, total, detail = share.count(book.records(rollout))
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
