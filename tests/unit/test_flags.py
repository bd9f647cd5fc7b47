"""Flags with an optional value: both spellings of the value, and the flag alone."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleet.options import ProvisionOptions
from flows.cli.flags import optional_values, spell_out

OPTIONAL = optional_values(ProvisionOptions)


def test_approve_is_the_flag_with_an_optional_value() -> None:
    """--approve alone is --approve=canary, and takes none, canary or waves."""
    assert OPTIONAL == {"--approve": ("canary", ("none", "canary", "waves"))}


@pytest.mark.parametrize(
    ("args", "spelt"),
    [
        (["--approve", "waves", "a.csv"], ["--approve=waves", "a.csv"]),
        (["--approve=waves", "a.csv"], ["--approve=waves", "a.csv"]),
        (["--approve", "a.csv"], ["--approve=canary", "a.csv"]),  # not a value: the next argument
        (["a.csv", "--approve"], ["a.csv", "--approve=canary"]),
        (["--approve", "--canary", "2"], ["--approve=canary", "--canary", "2"]),
        (["--", "--approve", "waves"], ["--", "--approve", "waves"]),  # after --: arguments
    ],
)
def test_the_value_is_spelt_out_with_its_flag(args: list[str], spelt: list[str]) -> None:
    """A value of the flag's own, as the next word, joins it; any other word stays an argument."""
    assert spell_out(["provision", *args], OPTIONAL) == ["provision", *spelt]


def test_the_help_says_what_the_flag_alone_means() -> None:
    """`fleet provision --help` tells what --approve alone stands for."""
    from flows.cli.app import app

    result = CliRunner().invoke(app, ["provision", "--help"])
    assert result.exit_code == 0
    words = " ".join(result.output.replace("│", " ").split())  # the help, unwrapped
    assert "Alone, it means canary; a value may follow as its own word or after =" in words


def test_the_simulators_flags_go_back_to_its_parser_as_given() -> None:
    """Flags drawn from an argparse parser return to it as argv: unset ones stay its defaults."""
    from fleet.simulator.server import build_parser, config_from_args
    from flows.cli.flags import parser_argv

    parser = build_parser()
    argv = parser_argv(
        parser, {"rate": 5.0, "storage_outlives_server": False, "seed": 7, "latency": None}
    )
    assert argv == ["--rate", "5.0", "--seed", "7", "--no-storage-outlives-server"]
    config = config_from_args(parser.parse_args(argv), env={})
    assert (config.rate, config.seed, config.storage_outlives_server) == (5.0, 7, False)
    assert config.latency == 0.0
