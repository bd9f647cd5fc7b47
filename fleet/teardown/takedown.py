"""Taking targets down: stop, then terminate, each; wait until each is gone; return its extras.

What to do with each server is ``next_action``: a pure table from what NCP says of it now. A
``Teardown`` holds one teardown's client, ledger, options and report; ``teardown`` runs one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from fleet.errors import NcpError, PermanentError
from fleet.ledger import AsyncLedger, Extra, State, TeardownState
from fleet.ncp.client import BATCH_SIZE, NcpClient, ServerInstance
from fleet.options import TeardownOptions
from fleet.ownership import found_from
from fleet.polling import Clock, Hook, Poller, Sleep, notify, read_statuses
from fleet.states import Operation, ServerStatus

from .extras import extras_of, return_extras
from .scope import LeftAlone, TeardownTarget

__all__ = ["TERMINABLE", "Action", "Teardown", "TeardownReport", "next_action", "teardown"]

log = logging.getLogger(__name__)

# Stopped, or stuck in a failure: what terminateServerInstances may be asked to remove.
TERMINABLE = frozenset(
    {
        ServerStatus.NSTOP,
        ServerStatus.FSTOP,
        ServerStatus.SD_FL,
        ServerStatus.ST_FL,
        ServerStatus.RS_FL,
    }
)


class Action(StrEnum):
    """What a teardown round does with one server."""

    WAIT = "wait"  # an operation is under way, or it is still being made: look again
    STOP = "stop"
    TERMINATE = "terminate"
    LIFT_PROTECTION = "lift-protection"
    LEAVE = "leave"  # termination protection is on and may not be lifted: left alone
    MISSING = "missing"  # not listed this round: not yet taken for gone
    GONE = "gone"  # not listed several rounds in a row: terminated


def next_action(server: ServerInstance | None, misses: int, options: TeardownOptions) -> Action:
    """Return what to do with a server, given its status now (None: not listed this round)."""
    if server is None:
        return Action.GONE if misses >= options.gone_after else Action.MISSING
    if server.operation != Operation.NULL:
        return Action.WAIT
    if server.protected:
        return Action.LIFT_PROTECTION if options.lift_protection else Action.LEAVE
    if server.status == ServerStatus.RUN:
        return Action.STOP
    if server.status in TERMINABLE:
        return Action.TERMINATE
    return Action.WAIT


@dataclass(slots=True)
class TeardownReport:
    """How a teardown ended, per server name."""

    terminated: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)  # left alone: termination protection
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    timed_out: dict[str, str] = field(default_factory=dict)  # name -> last status
    # Public IPs and extra disks of the terminated servers: returned, or still billed and why.
    returned: list[Extra] = field(default_factory=list)
    extras_left: dict[Extra, str] = field(default_factory=dict)
    # Found under the rollout's names, not provably its own (or adopted): never touched.
    left_alone: list[LeftAlone] = field(default_factory=list)


@dataclass(slots=True)
class _Round:
    """One teardown's state between rounds."""

    pending: dict[str, TeardownTarget]
    gone: set[str] = field(default_factory=set)  # instance numbers taken for terminated
    misses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)


class Teardown:
    """One teardown of a rollout's targets: safe to rerun, whatever stopped the last one."""

    def __init__(
        self,
        client: NcpClient,
        ledger: AsyncLedger,
        rollout: str,
        options: TeardownOptions | None = None,
        *,
        max_errors: int = 5,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_progress: Hook | None = None,
    ) -> None:
        self.client, self.ledger, self.rollout = client, ledger, rollout
        self.options = options or TeardownOptions()
        self.max_errors = max_errors
        self._clock, self._sleep, self._on_progress = clock, sleep, on_progress
        self.report = TeardownReport()

    async def run(self, targets: Sequence[TeardownTarget]) -> TeardownReport:
        """Stop, then terminate, each target; wait until each is gone; return their extras."""
        options, report = self.options, self.report
        await self._write_down_lost(targets)
        # Before anything is stopped: a server's record is the only place that names its public IP.
        extras = await self._extras_to_return(targets)
        state = _Round({t.instance_no: t for t in targets})

        async def round_() -> bool:
            keys = ((t.region, n) for n, t in state.pending.items())
            seen = await read_statuses(self.client, keys)
            if seen is not None:
                await self._act(state, seen)
                done = len(report.terminated) + len(report.protected) + len(report.failed)
                await notify(self._on_progress, done, len(targets))
            return not state.pending

        poller = Poller(options.poll_interval, options.time_limit, self._clock, self._sleep)
        if state.pending and not await poller.run(round_):
            for number, target in state.pending.items():
                report.timed_out[target.name] = state.last.get(number, "unknown")
            message = f"not gone after {options.time_limit:.0f} s"
            await self.ledger.set_teardown(
                self.rollout, list(state.pending), TeardownState.FAILED, message=message
            )
        report.terminated = sorted(set(report.terminated))
        # Returned once their server is gone (this run, or an earlier one that stopped before it
        # returned them); the others stay with their server, for a rerun.
        taken = {t.instance_no for t in targets}
        gone = [e for e in extras if e.server_no in state.gone or e.server_no not in taken]
        await self._return_extras(gone)
        return report

    async def _write_down_lost(self, targets: Sequence[TeardownTarget]) -> None:
        """Record each lost create found by name before touching it, so its number is known."""
        by_name: dict[str, list[TeardownTarget]] = defaultdict(list)
        for t in targets:
            if not t.recorded:
                by_name[t.name].append(t)
        for name, found in by_name.items():
            region = found[0].region
            servers = await self.client.get_servers([t.instance_no for t in found], region=region)
            await self.ledger.record_created(
                self.rollout,
                name,
                found_from(servers, region, ""),
                request_id=None,
                origin="lost",
                from_states=(State.PLANNED, State.IN_FLIGHT, State.FAILED),
            )

    async def _extras_to_return(self, targets: Sequence[TeardownTarget]) -> list[Extra]:
        """Return the public IPs and extra disks to return: the targets', and any left before.

        They are written to the ledger before anything is stopped: once a server is gone, NCP
        no longer ties them to it, and a teardown stopped there finds them in the ledger.
        """
        found = await extras_of(self.client, self.ledger, self.rollout, targets)
        await self.ledger.keep_extras(self.rollout, found)
        extras = await self.ledger.extras(self.rollout)
        for extra in extras:
            log.info("to return once its server is gone: %s", extra)
        return extras

    async def _return_extras(self, extras: Sequence[Extra]) -> None:
        """Return the public IPs and extra disks of servers now gone; note what is still billed."""
        if not extras:
            return
        returned = await return_extras(
            self.client,
            extras,
            interval=self.options.poll_interval,
            time_limit=self.options.time_limit,
            clock=self._clock,
            sleep=self._sleep,
        )
        self.report.returned, self.report.extras_left = returned.returned, returned.left
        await self.ledger.extras_returned(self.rollout, returned.returned)

    async def _act(self, state: _Round, seen: dict[str, ServerInstance]) -> None:
        """Decide and do one round's actions; settled servers leave ``state.pending``."""
        report, rollout = self.report, self.rollout
        batches: dict[tuple[Action, str], list[str]] = defaultdict(list)
        for number, target in list(state.pending.items()):
            server = seen.get(number)
            state.misses[number] = 0 if server is not None else state.misses.get(number, 0) + 1
            if server is not None:
                state.last[number] = f"{server.status}/{server.operation}"
            action = next_action(server, state.misses[number], self.options)
            if action == Action.GONE:
                report.terminated.append(target.name)
                state.gone.add(number)
                await self.ledger.set_teardown(rollout, [number], TeardownState.TERMINATED)
                del state.pending[number]
            elif action == Action.LEAVE:
                report.protected.append(target.name)
                await self.ledger.set_teardown(rollout, [number], TeardownState.PROTECTED)
                del state.pending[number]
            elif action == Action.LIFT_PROTECTION:
                try:
                    await self.client.set_protection(number, False, region=target.region)
                except NcpError as exc:
                    final = isinstance(exc, PermanentError)  # NCP will refuse it again
                    await self._refused(state, number, exc, final=final)
            elif action in (Action.STOP, Action.TERMINATE):
                batches[(action, target.region)].append(number)
        for (action, region), numbers in sorted(batches.items()):
            await self._control(state, action, region, numbers)

    async def _control(
        self, state: _Round, action: Action, region: str, numbers: list[str]
    ) -> None:
        """Stop or terminate servers of a region, a batch per call."""
        call = self.client.stop_servers if action == Action.STOP else self.client.terminate_servers
        mark = TeardownState.STOPPING if action == Action.STOP else TeardownState.TERMINATING
        for i in range(0, len(numbers), BATCH_SIZE):
            batch = numbers[i : i + BATCH_SIZE]
            try:
                await call(batch, region=region)
            except NcpError as exc:
                # Whatever happened, the next round reads the status again and acts on it; only
                # repeated refusals end the attempt for these servers.
                log.warning("%s of %d servers failed: %s", action, len(batch), exc)
                for number in batch:
                    await self._refused(state, number, exc)
                continue
            await self.ledger.set_teardown(self.rollout, batch, mark)

    async def _refused(
        self, state: _Round, number: str, error: NcpError, *, final: bool = False
    ) -> None:
        """Count a refusal for one server; after too many (or a ``final`` one), give it up."""
        state.errors[number] = state.errors.get(number, 0) + 1
        target = state.pending.get(number)
        if target is None or not (final or state.errors[number] >= self.max_errors):
            return
        why = f"refused: {error}"
        self.report.failed[target.name] = why
        await self.ledger.set_teardown(self.rollout, [number], TeardownState.FAILED, message=why)
        del state.pending[number]


async def teardown(
    client: NcpClient,
    ledger: AsyncLedger,
    rollout: str,
    targets: Sequence[TeardownTarget],
    options: TeardownOptions | None = None,
    *,
    max_errors: int = 5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    on_progress: Hook | None = None,
) -> TeardownReport:
    """Stop, then terminate, each target; wait until each is gone. Safe to rerun."""
    down = Teardown(
        client,
        ledger,
        rollout,
        options,
        max_errors=max_errors,
        clock=clock,
        sleep=sleep,
        on_progress=on_progress,
    )
    return await down.run(targets)
