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

from collections.abc import Sequence
from dataclasses import dataclass

from fleet.options import ProvisionOptions, Size, parse_sizes
from fleet.planned import PlannedServer

__all__ = [
    "CANARY",
    "Stage",
    "covered",
    "plan_stages",
    "resize_next",
    "stages_for",
    "wave_name",
]

CANARY = "canary"


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a rollout: its name (canary, wave-02 ...) and the servers it creates."""

    name: str
    specs: tuple[PlannedServer, ...]

    @property
    def canary(self) -> bool:
        """Whether this is the canary, which no failure may pass."""
        return self.name == CANARY


def _canary(work: Sequence[PlannedServer], size: Size, total: int) -> list[PlannedServer]:
    """Return one server of every row, then more in inventory order up to the size."""
    chosen: dict[str, PlannedServer] = {}
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
    work: Sequence[PlannedServer], canary: Size | None, waves: Sequence[Size] = ()
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


def stages_for(options: ProvisionOptions, work: Sequence[PlannedServer]) -> list[Stage]:
    """Return a rollout's stages, as its options ask, for the servers it has to create."""
    canary = Size.parse(options.canary) if options.canary else None
    if canary is None and options.approve != "none":
        canary = Size.parse("1")  # approval comes after a canary: the smallest one
    return plan_stages(work, canary, parse_sizes(options.waves) if options.waves else ())


def covered(stages: Sequence[Stage], waves: Sequence[Size]) -> list[str]:
    """Return the waves asked for that are no stage: the stages before them hold their servers."""
    made = {stage.name for stage in stages}
    return [wave_name(place) for place in range(1, len(waves) + 1) if wave_name(place) not in made]


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
