"""Unexpected failures while sending: the server is looked up, never lost, never made twice."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from fleet.config import Credentials
from fleet.ledger import State
from fleet.ncp.client import NcpClient, RetryPolicy
from fleet.ncp.ratelimit import AdaptiveRateLimiter
from fleet.simulator import running_simulator
from tests.functional.fleetkit import (
    ACCESS,
    SECRET,
    open_ledger,
    roll_out,
    servers_by_name,
    sim_config,
    specs,
)

pytestmark = pytest.mark.anyio


class AfterSending(httpx.AsyncBaseTransport):
    """Sends every request for real, then fails the answer of one server's create."""

    def __init__(self, victim: str, error: Exception) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.victim = victim
        self.error: Exception | None = error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        form = dict(parse_qsl(request.content.decode()))
        if form.get("serverName") == self.victim and self.error is not None:
            error, self.error = self.error, None  # once
            raise error
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(
    "error",
    [
        httpx.DecodingError("answer could not be decoded"),  # an httpx error after sending
        RuntimeError("a bug in the answer's handling"),  # anything else after sending
    ],
)
async def test_an_error_after_sending_leaves_the_server_to_be_looked_up(
    tmp_path: Path, error: Exception
) -> None:
    """The server was made; the error is not taken for a refusal: it is found, once."""
    plan = specs(8)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "l.db")
        client = NcpClient(
            Credentials(ACCESS, SECRET, "test"),
            sim.url,
            limiter=AdaptiveRateLimiter(500, 10, max_in_flight=8),
            transport=AfterSending("web-004", error),
            retry=RetryPolicy(max_attempts=4, base=0.01, cap=0.05, deadline=30),
        )
        async with client:
            worker, _ = await roll_out(client, book, "odd", plan)
        state = sim.state()
    assert state["counters"]["created"] == 8
    records = {r.name: r for r in book.sync.records("odd")}
    assert all(r.state == State.CREATED for r in records.values())
    assert servers_by_name(state) == {n: [r.instance_no] for n, r in records.items()}
    assert worker.progress.created == 8 and worker.progress.failed == 0
