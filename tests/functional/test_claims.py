"""Claims made ahead of their creates: shared commits, never a stamp that promises too much."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.create.claims import Claims, WorkQueue
from fleet.create.settle import Pending, SendClocks, Sighting, sighting_of
from fleet.errors import LedgerConflict
from fleet.ledger import AsyncLedger, Ledger, State
from fleet.ledger.rows import iso
from fleet.options import ProvisionOptions
from fleet.ownership import CLAIM_HORIZON
from fleet.plan.survey import survey
from fleet.simulator import running_simulator
from tests.support.clock import FakeClock
from tests.support.engine import OWNER, assert_each_once, client_for, engine, open_ledger, specs
from tests.support.simulator import sim_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[tuple[AsyncLedger, FakeClock]]:
    """A ledger on a clock the test moves, holding rollout 'r''s lease."""
    clock = FakeClock(start=1_800_000_000.0)
    ledger = Ledger(tmp_path / "ledger.db", clock=clock)
    ledger.acquire("r", OWNER, "test run", ttl=600)
    aio = AsyncLedger(ledger)
    yield aio, clock
    aio.close()
    ledger.close()


WARM = 3  # sends an engine claims one at a time: its pace is known from the fourth


async def paced(aio: AsyncLedger, clock: FakeClock, n: int, rate: float, gap: float) -> Setup:
    """Plan n servers; send WARM of them one by one, ``gap`` seconds apart (the engine's pace)."""
    plan = specs(n)
    aio.sync.plan("r", plan, owner=OWNER)
    queue = WorkQueue()
    for spec in plan:
        queue.put_nowait(spec)
    claims = Claims(aio, "r", OWNER, clock=clock, rate=lambda: rate)
    for _ in range(WARM):
        clock.now += gap
        await claims.claim(await claims.next(queue), queue)
    assert states(aio) == [State.IN_FLIGHT] * WARM + [State.PLANNED] * (n - WARM)  # one by one
    return claims, queue


Setup = tuple[Claims, WorkQueue]


def states(aio: AsyncLedger) -> list[State]:
    return [r.state for r in aio.sync.records("r")]


async def test_servers_due_next_are_claimed_in_one_commit(
    book: tuple[AsyncLedger, FakeClock],
) -> None:
    """At 8 calls/s, two servers are claimed at once; the second finds its claim made."""
    aio, clock = book
    claims, queue = await paced(aio, clock, 8, rate=8.0, gap=0.125)
    assert await claims.claim(await claims.next(queue), queue) == 1
    assert states(aio) == [State.IN_FLIGHT] * 5 + [State.PLANNED] * 3
    clock.now += 0.5  # within the horizon: sent on the claim made ahead, stamp unchanged
    assert await claims.claim(await claims.next(queue), queue) == 1
    assert states(aio) == [State.IN_FLIGHT] * 5 + [State.PLANNED] * 3  # nothing claimed anew
    assert aio.sync.record("r", "web-005").sent_at == iso(clock.now - 0.5)  # type: ignore[union-attr]


async def test_an_engine_claims_ahead_only_what_it_sends_itself(
    book: tuple[AsyncLedger, FakeClock],
) -> None:
    """Sharing the limiter's 8/s with others (a flow's chunks), at 4/s it claims one at a time."""
    aio, clock = book
    claims, queue = await paced(aio, clock, 8, rate=8.0, gap=0.25)
    await claims.claim(await claims.next(queue), queue)
    assert states(aio) == [State.IN_FLIGHT] * 4 + [State.PLANNED] * 4  # web-004 alone


async def test_a_server_claimed_ahead_but_sent_late_is_stamped_again(
    book: tuple[AsyncLedger, FakeClock],
) -> None:
    """A claim must not promise a send time it missed: the stamp moves before the create goes."""
    aio, clock = book
    claims, queue = await paced(aio, clock, 6, rate=8.0, gap=0.125)
    await claims.claim(await claims.next(queue), queue)
    clock.now += CLAIM_HORIZON + 1  # the limiter slowed down: web-005 leaves late
    assert await claims.claim(await claims.next(queue), queue) == 1
    row = aio.sync.record("r", "web-005")
    assert row is not None and row.sent_at == iso(clock.now)


async def test_a_server_that_may_not_be_sent_fails_only_when_its_turn_comes(
    book: tuple[AsyncLedger, FakeClock],
) -> None:
    """Claimed ahead beside a conflicting server: the first goes, the other fails on its turn."""
    aio, clock = book
    claims, queue = await paced(aio, clock, 6, rate=8.0, gap=0.125)
    aio.sync.claim("r", specs(6)[4], OWNER)  # someone sent web-005 already
    assert await claims.claim(await claims.next(queue), queue) == 1
    with pytest.raises(LedgerConflict, match="web-005"):
        await claims.claim(await claims.next(queue), queue)


async def test_a_stopped_run_leaves_what_it_claimed_ahead_sendable(tmp_path: Path) -> None:
    """Servers claimed ahead but never sent are planned again, not left in flight to look up."""
    plan = specs(40)
    with running_simulator(sim_config()) as sim:
        book = open_ledger(tmp_path / "ledger.db")
        async with client_for(sim.url, rate=100, burst=5, concurrency=4) as client:
            worker = engine(client, book, "r", ProvisionOptions(concurrency=4, settle=0.3))
            found = await survey(client, book, "r", plan, owner=OWNER)
            records = await worker.provision(found.work, stop=lambda: worker.progress.created >= 10)
            states = Counter(r.state for r in records)
            assert states[State.IN_FLIGHT] == 0
            assert states[State.CREATED] >= 10 and states[State.PLANNED] > 0
            assert all(r.attempts == 0 for r in records if r.state == State.PLANNED)
            created = sim.state()["counters"]["by_action"]["createServerInstances"]
            assert created == states[State.CREATED]
            # The rerun sends the rest, each once.
            again = await survey(client, book, "r", plan, owner=OWNER)
            assert not again.unsettled
            await worker.provision(again.work)
        assert_each_once(sim.state(), book.sync.records("r"), n=40, exact=True)
    book.close()
    book.sync.close()


async def test_a_rerun_trusts_absence_only_a_window_after_the_latest_send_a_claim_allows(
    book: tuple[AsyncLedger, FakeClock],
) -> None:
    """A claim made ahead was sent up to the horizon after its stamp: the window runs from there."""
    aio, clock = book
    (spec,) = specs(1)
    aio.sync.plan("r", [spec], owner=OWNER)
    aio.sync.claim("r", spec, OWNER)
    record = aio.sync.record("r", spec.name)
    assert record is not None
    pending = Pending.from_record(spec, record, clock.now, SendClocks(None, clock.now))
    stamped = clock.now
    assert pending.sent_at == stamped + CLAIM_HORIZON
    window = 60.0
    assert sighting_of(False, stamped + window, pending.sent_at, window, 0, 10) is Sighting.WAIT
    late = stamped + window + CLAIM_HORIZON
    assert sighting_of(False, late, pending.sent_at, window, 0, 10) is Sighting.ABSENT
