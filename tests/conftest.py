"""Shared fixtures: asyncio for anyio tests, a fake clock, fake credentials."""

from __future__ import annotations

import pytest

from fleet.config import Credentials

ACCESS = "AKIAEXAMPLEACCESSKEY1"
SECRET = "EXAMPLEsecretKEY0123456789abcdefghijklmn"


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only (Prefect and uvicorn are asyncio)."""
    return "asyncio"


class FakeClock:
    """A clock that moves only when slept on: async tests run instantly and repeatably."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock."""
    return FakeClock()


@pytest.fixture
def credentials() -> Credentials:
    """The test vectors' keys."""
    return Credentials(ACCESS, SECRET, "test")


@pytest.fixture
def postgres_url() -> str:
    """A fresh PostgreSQL database (the throwaway server arrives with its own fixture)."""
    pytest.skip("PostgreSQL harness not merged yet")
