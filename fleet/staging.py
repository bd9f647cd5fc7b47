"""Staged rollouts, as plain data: a canary, waves of cumulative sizes, a failure budget.

    canary   at least one server of every inventory row (every distinct configuration), filled
             up to its size in inventory order; any failure of it stops the rollout
    waves    cumulative sizes of the whole rollout ("10%,50%,100%" or counts "5,50,200"); each
             wave is created and waited for (RUN, no operation) before the next starts; a list
             that stops short of the whole rollout gets a last wave with the rest. A wave is
             named by its place in the list (wave-01 is the first size asked, canary or not); one
             the stages before it already cover (a canary of 5 holds a first wave of 10% of 16)
             is no stage, and ``covered`` names it, for the run to say so
    budget   how many failures (refused creates, servers never ready) the waves may cost, as a
             count or a share of what was sent so far; past it nothing more is sent

Pure functions of the servers to create: the flow runs what ``plan_stages`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fleet.spec import ServerSpec

__all__ = [
    "CANARY",
    "Budget",
    "Size",
    "Stage",
    "covered",
    "parse_sizes",
    "plan_stages",
    "resize_next",
    "wave_name",
]

CANARY = "canary"


@dataclass(frozen=True, slots=True)
class Size:
    """A number of servers, or a share of them ("5" or "10%")."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, text: str, *, zero: bool = False) -> Size:
        """Read "N" or "N%" (0 only when ``zero``); raise ValueError naming the text otherwise."""
        raw = text.strip()
        number = raw.removesuffix("%").strip()
        try:
            value = float(number) if raw.endswith("%") else int(number)
        except ValueError:
            raise ValueError(f"{text!r} is not a count or a percentage") from None
        if value < 0 or (value == 0 and not zero) or (raw.endswith("%") and value > 100):
            least = "0" if zero else "above 0"
            raise ValueError(f"{text!r}: a count of {least}, or a share from 0% to 100%")
        return cls(float(value), raw.endswith("%"))

    def of(self, total: int) -> int:
        """Return the number of servers this size is, out of ``total`` (shares round up)."""
        if self.percent:
            return min(total, math.ceil(total * self.value / 100))
        return min(total, int(self.value))

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else str(int(self.value))


def parse_sizes(text: str) -> tuple[Size, ...]:
    """Read a comma-separated list of sizes, each at least the one before (for shares)."""
    sizes = tuple(Size.parse(part) for part in text.split(",") if part.strip())
    if not sizes:
        raise ValueError(f"{text!r}: no sizes")
    return sizes


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a rollout: its name (canary, wave-02 ...) and the servers it creates."""

    name: str
    specs: tuple[ServerSpec, ...]

    @property
    def canary(self) -> bool:
        """Whether this is the canary, which no failure may pass."""
        return self.name == CANARY


def _canary(work: Sequence[ServerSpec], size: Size, total: int) -> list[ServerSpec]:
    """Return one server of every row, then more in inventory order up to the size."""
    chosen: dict[str, ServerSpec] = {}
    rows: set[tuple[str, int]] = set()
    for spec in work:
        if (spec.file, spec.line) not in rows:
            rows.add((spec.file, spec.line))
            chosen[spec.name] = spec
    for spec in work:
        if len(chosen) >= size.of(total):
            break
        chosen.setdefault(spec.name, spec)
    return [spec for spec in work if spec.name in chosen]


def wave_name(place: int) -> str:
    """Return the name of the wave at this place (1 for the first) in the sizes asked."""
    return f"wave-{place:02d}"


def plan_stages(
    work: Sequence[ServerSpec], canary: Size | None, waves: Sequence[Size] = ()
) -> list[Stage]:
    """Split the servers to create into a canary and waves; one stage when neither is asked."""
    if canary is None and not waves:
        return [Stage(wave_name(1), tuple(work))]
    total = len(work)
    stages: list[Stage] = []
    left = list(work)
    if canary is not None:
        first = _canary(work, canary, total)
        taken = {s.name for s in first}
        left = [s for s in work if s.name not in taken]
        stages.append(Stage(CANARY, tuple(first)))
    sent = total - len(left)
    targets = [size.of(total) for size in waves]
    if not targets or targets[-1] < total:
        targets.append(total)  # the rest, in a last wave
    for place, target in enumerate(targets, 1):
        count = max(0, target - sent)
        if count:
            stages.append(Stage(wave_name(place), tuple(left[:count])))
            left, sent = left[count:], sent + count
    return stages


def covered(stages: Sequence[Stage], waves: Sequence[Size]) -> list[str]:
    """Return the waves asked for that are no stage: the stages before them hold their servers."""
    made = {stage.name for stage in stages}
    return [wave_name(place) for place in range(1, len(waves) + 1) if wave_name(place) not in made]


@dataclass(frozen=True, slots=True)
class Budget:
    """How many failures a rollout may cost before it stops sending: a count, or a share."""

    limit: Size | None  # None: no budget; every server is tried

    def exceeded(self, failed: int, sent: int) -> bool:
        """Whether ``failed`` failures out of ``sent`` servers are past the budget."""
        if self.limit is None:
            return False
        if self.limit.percent:
            return failed > sent * self.limit.value / 100
        return failed > self.limit.value


def resize_next(stages: Sequence[Stage], index: int, size: Size) -> list[Stage]:
    """Return the stages with stage ``index`` holding ``size`` of the servers left, the rest after.

    An approval may change the next wave's size; later waves keep their sizes, and the last one
    takes whatever is left.
    """
    rest = [spec for stage in stages[index:] for spec in stage.specs]
    total = sum(len(stage.specs) for stage in stages)
    count = size.of(total)
    out = [*stages[:index], Stage(stages[index].name, tuple(rest[:count]))]
    left = rest[count:]
    later = stages[index + 1 :]
    for position, stage in enumerate(later):
        take = len(left) if position == len(later) - 1 else len(stage.specs)
        if take and left:
            out.append(Stage(stage.name, tuple(left[:take])))
            left = left[take:]
    if left:
        places = [int(s.name.removeprefix("wave-")) for s in out if s.name.startswith("wave-")]
        out.append(Stage(wave_name(max(places, default=0) + 1), tuple(left)))
    return out
