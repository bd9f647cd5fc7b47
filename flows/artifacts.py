"""What a run leaves in the Prefect UI and on disk: the results table, file and summary."""

from __future__ import annotations

from collections.abc import Sequence

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from fleet.ledger import Record
from fleet.results import COLUMNS, as_row, duplicates_by_name, write_results
from fleet.summary import RolloutSummary
from flows.runtime import Runtime, artifact_key

__all__ = ["markdown_table", "publish_results"]


def markdown_table(title: str, facts: dict[str, object]) -> str:
    """Return facts as a two-column markdown table under a title."""
    lines = [f"# {title}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    return "\n".join(lines)


async def publish_results(rt: Runtime, summary: RolloutSummary, records: Sequence[Record]) -> None:
    """Write the results CSV, the results table artifact and the summary artifact.

    ``records`` are the rollout's ledger rows, as read once the creating (and waiting) ended.
    """
    duplicates = duplicates_by_name(await rt.ledger.instances(rt.rollout))
    seen = await rt.ledger.addresses(rt.rollout)
    write_results(summary.results, records, duplicates, seen)
    rows = [
        dict(
            zip(
                COLUMNS,
                as_row(r, duplicates.get(r.name, ()), seen.get(r.instance_no or "")),
                strict=True,
            )
        )
        for r in records
    ]
    await acreate_table_artifact(
        rows, key=artifact_key(rt.rollout, "results"), description=f"Servers of {rt.rollout}"
    )
    if summary.waves:
        await acreate_table_artifact(
            [w.row() for w in summary.waves],
            key=artifact_key(rt.rollout, "waves"),
            description=f"Stages of {rt.rollout}",
        )
    await acreate_markdown_artifact(
        markdown_table(f"Rollout `{rt.rollout}`", summary.facts()),
        key=artifact_key(rt.rollout, "summary"),
        description=f"Summary of {rt.rollout}",
    )
