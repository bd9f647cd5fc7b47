"""What a run leaves for a reader of the Prefect UI: facts worth a row, and where the rest is."""

from __future__ import annotations

from fleet.ledger import RolloutCounts
from fleet.report.results import Tally
from fleet.report.summary import RolloutSummary, RunCounts
from flows.artifacts import markdown_table, results_markdown, shown_facts


def clean_run() -> RolloutSummary:
    """A run that created its 16 servers: most of its facts are zero."""
    return RolloutSummary(
        rollout="demo", results=".fleet/results/demo.csv", counts=RolloutCounts(running=16),
        servers=16, sent=16, settled=0, reconciled=0, adopted=0, changed=0, seconds=1.0,
        api_calls=31, throttled=0, unprocessed=0, ambiguous=0, lookups=0, retries=0,
        run=RunCounts(to_do=16, created=16),
    )  # fmt: skip


def test_the_summary_artifact_has_no_rows_of_zeros_but_the_main_counts() -> None:
    """Zero facts are left out, except servers, running, failed and unknown; the rest stay."""
    facts = shown_facts(clean_run().facts())
    always = ("failed", "unknown (in flight)")
    assert not [k for k, v in facts.items() if v == 0 and k not in always]
    assert (facts["failed"], facts["unknown (in flight)"], facts["running"]) == (0, 0, 16)
    assert facts["API calls"] == 31 and facts["call rate asked (calls/s)"] == "auto"
    assert len(facts) < len(clean_run().facts()) / 2
    assert markdown_table("t", facts).count("\n") == len(facts) + 3


def test_the_results_artifact_says_where_the_file_is_and_how_to_see_it_elsewhere() -> None:
    """The results file's machine and full path, and the command that reads the same anywhere."""
    tally = Tally(RolloutCounts(running=16), RunCounts(16, 16), (), 0, ())
    text = results_markdown("demo", clean_run(), tally, "/srv/fleet/ledger.db", "worker-7")
    assert "/.fleet/results/demo.csv` on `worker-7`" in text
    assert "`fleet status demo --ledger /srv/fleet/ledger.db`" in text
    assert "No server failed." in text
