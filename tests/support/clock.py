"""The one fake clock of the tests, and its fixture ``clock``."""

from __future__ import annotations

import pytest


class FakeClock:
    """A clock that moves only when told: slept on (async code) or advanced by the test.

    Pass it as a ``clock`` (it is called for the time) and its ``sleep`` as a ``sleep``: the code
    under test then runs instantly and repeatably, and ``slept`` says what it waited for.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward by hand."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Note the wait and move the time past it, at once."""
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at 1000.0."""
    return FakeClock()
