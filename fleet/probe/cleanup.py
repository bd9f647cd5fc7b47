"""Removing what a probe made: stop, terminate, and wait until NCP lists none of it.

One loop over observed state (``fleet.watch.polling``): each round reads every server the probe
knows by number, looks its names up for servers whose numbers it never learnt (a create whose
answer was lost, found until its window has passed), and does what each one's status calls for,
by the decision teardowns use (``fleet.watch.steps``). A server counts as removed only by the one
rule for gone (``fleet.states.is_gone``): its termination was asked and a read then missed it, or
NCP listed it before and two reads in a row missed it. A server NCP never listed exists, unlisted:
it is waited for, and reported left if time runs out. Only servers ``probe_owns`` says are the
run's (their number came back to it, or they carry its marker) are ever touched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from fleet.errors import NcpError
from fleet.ncp.client import NcpClient
from fleet.ownership import probe_owns
from fleet.states import Operation
from fleet.watch.polling import Poller, read_statuses
from fleet.watch.steps import Look, Step, next_step

__all__ = ["Removal", "Remover"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Removal:
    """What a removal took away, and what it left (number -> why)."""

    removed: tuple[str, ...]
    left: dict[str, str]


@dataclass(slots=True)
class _Tracked:
    asked: bool = False
    absent: int = 0
    listed: bool = False
    step: Step = Step.WAIT
    why: str = "not looked at yet"


@dataclass
class Remover:
    """Removes one probe run's servers in one region (see the module's docstring)."""

    client: NcpClient
    run: str
    region: str
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    poll: float
    tell: Callable[[str], None]
    tracked: dict[str, _Tracked] = field(default_factory=dict)

    async def remove(
        self, numbers: Sequence[str], names: Sequence[str], until: float, time_limit: float
    ) -> Removal:
        """Remove the servers of these numbers and names (``until``: clock time).

        Names are looked up until ``until`` (once at least), for creates whose answer was lost.
        """
        for number in numbers:
            self.tracked.setdefault(number, _Tracked())
        said: list[str] = []
        looked = False

        async def round_() -> bool:
            nonlocal looked
            overdue = self.clock() >= until
            if names and not (overdue and looked):  # a lost create may show until ``until``
                looked = await self._look_up(names) or looked
            await self._step()
            self._progress(said)
            settled = all(t.step in (Step.GONE, Step.LEAVE) for t in self.tracked.values())
            return settled and (not names or (overdue and looked))

        poller = Poller(self.poll, time_limit, self.clock, self.sleep)
        await poller.run(round_)
        removed = tuple(n for n, t in self.tracked.items() if t.step == Step.GONE)
        left = {n: t.why for n, t in self.tracked.items() if t.step != Step.GONE}
        return Removal(removed, left)

    async def _look_up(self, names: Sequence[str]) -> bool:
        """Track every server listed under the names that this run may remove; False if failed."""
        for name in names:
            try:
                found = await self.client.find_by_name(name, region=self.region)
            except NcpError as exc:
                log.warning("look-up of %s failed, will look again: %s", name, exc)
                return False
            for server in found:
                if probe_owns(server, self.run, self.tracked):
                    self.tracked.setdefault(server.instance_no, _Tracked())
        return True

    async def _step(self) -> None:
        """Read every tracked server, decide, and stop or terminate those that call for it."""
        pending = [n for n, t in self.tracked.items() if t.step not in (Step.GONE, Step.LEAVE)]
        listed = await read_statuses(self.client, [(self.region, n) for n in pending])
        if listed is None:
            return  # the read failed: the next round reads again
        calls: dict[Step, list[str]] = {Step.STOP: [], Step.TERMINATE: []}
        for number in pending:
            tracked, server = self.tracked[number], listed.get(number)
            tracked.absent = 0 if server is not None else tracked.absent + 1
            if server is not None and Operation.TERMT in (server.operation, server.status):
                tracked.asked = True
            look = Look(server, tracked.asked, tracked.absent, tracked.listed)
            tracked.step, tracked.why = next_step(look)
            tracked.listed = tracked.listed or server is not None
            calls.get(tracked.step, []).append(number)
        await self._call(Step.STOP, calls[Step.STOP])
        await self._call(Step.TERMINATE, calls[Step.TERMINATE])

    async def _call(self, step: Step, numbers: list[str]) -> None:
        if not numbers:
            return
        try:
            if step == Step.STOP:
                await self.client.stop_servers(numbers, region=self.region)
            else:
                await self.client.terminate_servers(numbers, region=self.region)
                for number in numbers:
                    self.tracked[number].asked = True
        except NcpError as exc:  # the next round reads the status again, and decides again
            log.warning("%s of %s failed, will try again: %s", step, ", ".join(numbers), exc)

    def _progress(self, said: list[str]) -> None:
        counts: dict[str, int] = {}
        for tracked in self.tracked.values():
            counts[tracked.step.value] = counts.get(tracked.step.value, 0) + 1
        line = "removing: " + ", ".join(f"{n} {step}" for step, n in sorted(counts.items()))
        if not said or said[-1] != line:
            said.append(line)
            self.tell(line)
