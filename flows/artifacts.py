"""What a run leaves in the Prefect UI and on disk: the results file, and small artifacts.

The results file has every server, written from the ledger a page at a time. The artifacts stay
small at any size: counts, the first failures by name, and where the results file is; never a
table of every server (at 20,000 servers that table was 11 MB, and the UI's to load). The file is
on the machine that ran the flow (a worker, often): the results artifact says which, and the
command that shows the same rows from anywhere the ledger is reachable. The summary artifact
leaves out what is zero (most of 40 facts, on most runs), but the rollout's main counts.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from fleet import FIRST_FAILURES, RolloutSummary, Tally, counts_words, write_rollout_results
from flows.runtime import Runtime, artifact_key

__all__ = ["markdown_table", "publish_results", "results_markdown", "shown_facts"]

MESSAGE_CHARS = 160  # of an error message, in the artifact (the results file has it whole)
# Facts of the summary artifact shown even when zero: what a reader looks for first.
ALWAYS = frozenset({"servers in inventory", "running", "failed", "unknown (in flight)"})


def shown_facts(facts: dict[str, object]) -> dict[str, object]:
    """Return the facts worth a row: none that is zero, but the main counts."""
    return {k: v for k, v in facts.items() if k in ALWAYS or not _zero(v)}


def _zero(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def markdown_table(title: str, facts: dict[str, object]) -> str:
    """Return facts as a two-column markdown table under a title."""
    lines = [f"# {title}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    return "\n".join(lines)


def _cell(value: object) -> str:
    """Return a value as one markdown table cell: no pipes or line breaks, long text cut."""
    text = " ".join(str(value or "").split()).replace("|", "/")
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def results_markdown(
    rollout: str, summary: RolloutSummary, tally: Tally, ledger: str = "", host: str = ""
) -> str:
    """Return the results artifact: counts, the first failures, and where every server is."""
    c = summary.counts
    results = Path(summary.results).absolute()
    on = f" on `{host}`" if host else ""
    lines = [
        f"# Results of `{rollout}`",
        "",
        f"{counts_words(c)} servers. {summary.run.line}.",
        "",
        f"Every server, one row each: `{results}`{on}, the machine that ran this flow. From "
        f"anywhere the ledger is reachable, `fleet status {rollout} --ledger {ledger or '...'}` "
        "shows the same servers (`--json` for a script).",
    ]
    if not tally.failures:
        lines += ["", "No server failed."]
    if tally.failures:
        shown = len(tally.failures)
        lines += [
            "",
            f"## Not cleanly created: {tally.not_clean}"
            + (f" (the first {shown})" if tally.not_clean > shown else ""),
            "",
            "| server | state | error | code | message |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(r.name)} | {r.state.value} | {r.error_kind.value if r.error_kind else ''}"
            f" | {_cell(r.error_code)} | {_cell(r.error_message)} |"
            for r in tally.failures
        ]
        if tally.not_clean > shown:
            lines += ["", f"... and {tally.not_clean - shown} more in the results file."]
    return "\n".join(lines)


async def publish_results(rt: Runtime, summary: RolloutSummary, tally: Tally) -> None:
    """Write the results file, the results and summary artifacts (and, staged, the waves')."""
    # On a thread of its own, a page of the ledger at a time: the event loop stays free.
    await asyncio.to_thread(write_rollout_results, summary.results, rt.ledger.sync, rt.rollout)
    await acreate_markdown_artifact(
        results_markdown(rt.rollout, summary, tally, rt.ledger.sync.shown, socket.gethostname()),
        key=artifact_key(rt.rollout, "results"),
        description=f"Results of {rt.rollout} (first {FIRST_FAILURES} failures at most)",
    )
    if summary.waves:
        await acreate_table_artifact(
            [w.row() for w in summary.waves],
            key=artifact_key(rt.rollout, "waves"),
            description=f"Stages of {rt.rollout}",
        )
    await acreate_markdown_artifact(
        markdown_table(f"Rollout `{rt.rollout}`", shown_facts(summary.facts())),
        key=artifact_key(rt.rollout, "summary"),
        description=f"Summary of {rt.rollout}",
    )
