"""A run's limiter: from the options, near the rate remembered, leaving what it found behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet.config import Credentials
from fleet.ledger import Ledger
from fleet.ncp.ratelimit import START_RATE, AdaptiveRateLimiter
from fleet.options import ProvisionOptions
from flows.runtime import fingerprint, open_runtime
from tests.conftest import ACCESS, SECRET

pytestmark = pytest.mark.anyio

ENDPOINT = "http://127.0.0.1:9"  # never called: these runs send nothing


def _find(limiter: AdaptiveRateLimiter, rate: float) -> None:
    """Play two throttles one second apart with ``rate`` calls let through between them."""
    control, soon = limiter.control, time.monotonic() + 1  # sent after any cut so far
    control.throttled(control.sent(soon))
    for i in range(1, int(rate)):
        control.succeeded(control.sent(soon + i / rate))
    control.throttled(control.sent(soon + 1))


@pytest.mark.parametrize(
    ("options", "start", "ceiling"),
    [
        ({}, START_RATE, 250.0),  # auto: slow start up to --max-rate
        ({"max_rate": 60}, START_RATE, 60.0),
        ({"rate": 40}, 40.0, 40.0),  # a number: where it starts and its ceiling
        ({"rate": 40, "max_rate": 10}, 40.0, 40.0),  # --max-rate is for auto only
    ],
)
async def test_the_limiter_follows_the_options(
    tmp_path: Path, options: dict[str, object], start: float, ceiling: float
) -> None:
    """Auto starts at START_RATE under --max-rate; a number is both the start and the ceiling."""
    opts = ProvisionOptions(endpoint=ENDPOINT, ledger=str(tmp_path / "l.db"), **options)
    async with open_runtime("r", opts, Credentials(ACCESS, SECRET, "t")) as rt:
        assert isinstance(rt.limiter, AdaptiveRateLimiter)
        assert rt.limiter.rate == start and rt.limiter.max_rate == ceiling


async def test_the_rate_found_is_remembered_and_the_next_run_starts_near_it(
    tmp_path: Path,
) -> None:
    """An auto run keeps what it found per endpoint and account; the next starts from it."""
    opts = ProvisionOptions(endpoint=ENDPOINT, ledger=str(tmp_path / "l.db"))
    credentials = Credentials(ACCESS, SECRET, "t")
    async with open_runtime("first", opts, credentials) as rt:
        assert isinstance(rt.limiter, AdaptiveRateLimiter)
        _find(rt.limiter, 80)
        found = rt.limiter.found_rate
    assert found is not None and found == pytest.approx(80, rel=0.05)
    with Ledger(tmp_path / "l.db") as book:
        assert book.known_rate(ENDPOINT, fingerprint(ACCESS)) == found
        assert book.known_rate(ENDPOINT, fingerprint("another-key")) is None
    async with open_runtime("second", opts, credentials) as rt:
        assert isinstance(rt.limiter, AdaptiveRateLimiter)
        assert rt.limiter.rate == pytest.approx(found)
        assert rt.limiter.control.slow_start  # a hint: climbing on from it until throttled


async def test_a_run_that_measures_nothing_keeps_the_rate_remembered(tmp_path: Path) -> None:
    """Throttles with an idle gap between them measure nothing; the earlier figure stays."""
    with Ledger(tmp_path / "l.db") as book:
        book.remember_rate(ENDPOINT, fingerprint(ACCESS), 80.0)
    opts = ProvisionOptions(endpoint=ENDPOINT, ledger=str(tmp_path / "l.db"))
    async with open_runtime("staged", opts, Credentials(ACCESS, SECRET, "t")) as rt:
        assert isinstance(rt.limiter, AdaptiveRateLimiter)
        control, soon = rt.limiter.control, time.monotonic() + 1
        control.throttled(control.sent(soon))  # a wave's first burst, throttled
        control.idle(9.5)  # waiting for the wave's servers to run
        for i in range(1, 4):  # a look now and then
            control.succeeded(control.sent(soon + 3 * i))
        control.throttled(control.sent(soon + 10))  # the next wave's burst
        assert rt.limiter.found_rate is None
    with Ledger(tmp_path / "l.db") as book:
        assert book.known_rate(ENDPOINT, fingerprint(ACCESS)) == 80.0


async def test_a_named_rate_neither_uses_nor_changes_what_is_remembered(tmp_path: Path) -> None:
    """With --rate N the run starts at N, and what it meets is not written over the memory."""
    with Ledger(tmp_path / "l.db") as book:
        book.remember_rate(ENDPOINT, fingerprint(ACCESS), 33.0)
    opts = ProvisionOptions(endpoint=ENDPOINT, ledger=str(tmp_path / "l.db"), rate=100)
    async with open_runtime("named", opts, Credentials(ACCESS, SECRET, "t")) as rt:
        assert isinstance(rt.limiter, AdaptiveRateLimiter)
        assert rt.limiter.rate == 100
        _find(rt.limiter, 50)
    with Ledger(tmp_path / "l.db") as book:
        assert book.known_rate(ENDPOINT, fingerprint(ACCESS)) == 33.0


async def test_auto_discovers_under_a_shared_limit(tmp_path: Path) -> None:
    """Under --shared-limit, auto still starts low and grows (the shared budget is its ceiling)."""
    from flows.shared_limit import SharedRateLimiter

    opts = ProvisionOptions(endpoint=ENDPOINT, ledger=str(tmp_path / "l.db"), shared_limit="acct")
    async with open_runtime("shared", opts, Credentials(ACCESS, SECRET, "t")) as rt:
        assert isinstance(rt.limiter, SharedRateLimiter)
        local = rt.limiter.local
        assert local.rate == START_RATE and local.max_rate == 250.0
        assert local.control.slow_start  # discovering, not pinned at the ceiling
