"""Every command with --json prints one JSON document on stdout, an error included.

Through the command line as a user runs it; each document is held to its JSON Schema in
schemas/. A stop is an error document in the output's place, its exit code the command's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from tests.support.prefect_harness import ROOT
from tests.support.schemas import conforms

runner = CliRunner()
BROKEN = str(ROOT / "inventories" / "broken.csv")


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["plan", BROKEN, "--json"], 2, "problem(s) found; nothing was sent."),
        (["status", "nosuch", "--json", "--ledger", "l.db"], 2, "no ledger at "),
        (["teardown", "--rollout", "x", "--json"], 2, "--json shows a plan: give it with --dry-"),
        (["teardown", "--rollout", "x", "--dry-run", "--json", "--ledger", "l.db"], 2, "no ledger"),
        (["export", "nosuch", "--format", "json", "--ledger", "l.db"], 2, "no ledger at "),
    ],
    ids=["invalid inventory", "status", "json without dry run", "teardown", "export"],
)
def test_an_error_is_a_json_document_on_stdout_with_the_same_exit_code(
    args: list[str], code: int, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that stops prints {"error": ...} on stdout for jq, its exit code unchanged."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    error = conforms("error", result.stdout)["error"]
    assert error["exit_code"] == code
    assert says in error["message"], error
    assert says in result.stderr  # the same words for a person, on stderr


def test_an_inventorys_every_problem_is_in_the_error_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation problems come located, one entry each, as `fleet validate` prints them."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["plan", BROKEN, "--json"])
    problems = conforms("error", result.stdout)["error"]["problems"]
    assert len(problems) >= 10
    assert {
        "file": BROKEN,
        "line": 3,
        "column": "loginKeyNmae",
        "message": "unknown column (did you mean 'loginKeyName'?)",
    } in problems
