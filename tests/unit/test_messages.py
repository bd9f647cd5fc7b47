"""What every command prints alike: one error prefix, one help style."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["status", "--bogus"], "error: No such option: --bogus"),
        (["nosuch"], "error: No such command 'nosuch'."),
        (["export"], "error: Missing argument"),
        (["provision", "a.csv", "--approve", "--on-failure", "maybe"], "error: Invalid value"),
    ],
)
def test_a_usage_error_says_error_lower_case_and_exits_2(args: list[str], says: str) -> None:
    """A usage error is one `error:` line after the usage, as every other error: no boxed Error."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Error" not in result.output and "╭" not in result.output
    assert result.stdout == ""


def test_the_simulators_help_looks_like_every_other_commands() -> None:
    """`fleet simulator --help` is typer's help, as `fleet status --help`, not argparse's."""
    wide = {"COLUMNS": "160"}  # no flag cut short
    simulator = runner.invoke(app, ["simulator", "--help"], prog_name="fleet", env=wide)
    status = runner.invoke(app, ["status", "--help"], prog_name="fleet", env=wide)
    assert simulator.exit_code == status.exit_code == 0
    assert "Usage: fleet simulator [OPTIONS]" in simulator.stdout
    assert "usage:" not in simulator.stdout  # argparse's
    for shown in (simulator.stdout, status.stdout):
        assert "╭─ Options ─" in shown
    words = " ".join(simulator.stdout.replace("│", " ").split())
    assert "--fail-after <float> fraction of creates answered 504 after creating" in words
    assert "--storage-outlives-server --no-storage-outlives-server" in words


def test_a_bad_simulator_setting_says_error_and_exits_2() -> None:
    """A setting the simulator refuses is one `error:` line, exit 2, nothing served."""
    result = runner.invoke(app, ["simulator", "--fail-after", "3"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: fault fractions must each be in [0, 1] and sum to at most 1"
    ]
