"""Where the shared fixtures are registered: pytest reads ``pytest_plugins`` in this file only."""

from __future__ import annotations

import pytest

# The helpers' own asserts (assert_each_once, body_of...) explain their failures as a test's do.
pytest.register_assert_rewrite("tests.support")

# Each module's fixtures become available to every test: see tests/README.md for what they are.
pytest_plugins = [
    "tests.support.clock",
    "tests.support.inventory",
    "tests.support.postgres",
    "tests.support.prefect_harness",
    "tests.support.simulator",
]


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only (Prefect and uvicorn are asyncio)."""
    return "asyncio"
