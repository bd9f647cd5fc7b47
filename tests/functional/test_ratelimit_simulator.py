"""The limiter against the simulator's gateway over loopback: discovery, and an overestimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.config import Credentials
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.ncp.ratelimit import AdaptiveRateLimiter
from fleet.simulator import running_simulator
from tests.support.engine import open_ledger, roll_out, specs
from tests.support.keys import SIM_ACCESS, SIM_SECRET
from tests.support.simulator import sim_config

# Rates measured in real time: run alone, after the rest (see the Makefile).
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.serial]

GATEWAY = 40.0  # calls/s the simulator's gateway allows


@pytest.mark.parametrize(
    ("rate", "discover"),
    [
        pytest.param(400, True, id="auto, up to 10x the rate"),
        pytest.param(4 * GATEWAY, False, id="told 4x the rate"),
    ],
)
async def test_the_limiter_finds_the_gateways_rate_without_hammering_it(
    tmp_path: Path, rate: float, discover: bool
) -> None:
    """Each server once, few 429s (slow start overshoots a little), the rate found within 20%."""
    built = AdaptiveRateLimiter(rate, 5, discover=discover)
    # In its own process: a simulator thread here would stall with the client and bunch calls.
    config = sim_config(rate=GATEWAY, burst=10, latency=0.02)
    with running_simulator(config, process=True) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        client = NcpClient(
            Credentials(SIM_ACCESS, SIM_SECRET, "test"),
            sim.url,
            limiter=built,
            retry=RetryPolicy(base=0.1, cap=1.0, deadline=60),
        )
        async with client:
            await roll_out(client, book, "paced", specs(200))
        state = sim.state()
    names = [s["serverName"] for s in state["servers"]]
    assert sorted(names) == sorted(s.name for s in specs(200))
    throttled = state["counters"]["by_status"].get("429", 0)
    assert throttled <= 0.15 * state["counters"]["requests"], state["counters"]  # 4x: 31% before
    assert built.found_rate == pytest.approx(GATEWAY, rel=0.2)
