"""A progress bar fed by reading the ledger, so it works whatever runs the flow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fleet.config import LedgerLocation
from fleet.errors import LedgerError
from fleet.ledger import Ledger
from flows.render import err

__all__ = ["progress_bar"]


def _watch(target: LedgerLocation, rollout: str, total: int, stop: threading.Event) -> None:
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
            try:
                if book is None:
                    if target.missing:
                        continue  # the flow has not created it yet
                    book = Ledger(target)
                c = book.counts(rollout)
            except LedgerError:
                continue  # the run reports ledger trouble itself
            detail = (
                f"{c.created} created, {c.failed} failed, {c.in_flight} in flight, "
                f"{c.running} running"
            )
            bar.update(task, completed=c.created + c.failed, detail=detail)
    if book is not None:
        book.close()


@contextmanager
def progress_bar(target: LedgerLocation, rollout: str, total: int) -> Iterator[None]:
    """Show a progress bar of a rollout on stderr while the body runs."""
    stop = threading.Event()
    thread = threading.Thread(target=_watch, args=(target, rollout, total, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
