"""The options every run takes: the call rate is 'auto' or a positive number, with a stated cap."""

from __future__ import annotations

import pytest

from fleet.errors import ConfigError
from fleet.options import DEFAULT_MAX_RATE, ProvisionOptions, TeardownOptions, options_from


@pytest.mark.parametrize(
    ("given", "rate"),
    [
        (None, "auto"),  # unset: the default
        ("auto", "auto"),
        (" Auto ", "auto"),
        ("50", 50.0),  # as the command line passes it
        (12.5, 12.5),
        (3, 3.0),
    ],
)
def test_the_rate_is_auto_or_a_positive_number(given: object, rate: object) -> None:
    """'auto' in any case, or a number of calls per second; unset means 'auto'."""
    options = options_from(ProvisionOptions, {"rate": given})
    assert options.rate == rate
    assert options.auto_rate == (rate == "auto")


@pytest.mark.parametrize("given", ["fast", "0", -5, "inf", "nan", True])
def test_a_rate_neither_auto_nor_positive_is_refused(given: object) -> None:
    """Anything else is a configuration error naming the option and what it takes."""
    with pytest.raises(ConfigError, match=r"--rate: .*'auto' or a positive number"):
        options_from(TeardownOptions, {"rate": given})


def test_max_rate_has_a_stated_default_and_must_be_positive() -> None:
    """--max-rate defaults to DEFAULT_MAX_RATE and refuses zero."""
    assert ProvisionOptions().max_rate == DEFAULT_MAX_RATE
    with pytest.raises(ConfigError, match="--max-rate"):
        options_from(ProvisionOptions, {"max_rate": 0})
