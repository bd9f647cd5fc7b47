"""Staged rollouts as data: sizes, the canary's choice, waves, the failure budget."""

from __future__ import annotations

import pytest

from fleet.create.stages import covered, plan_stages, resize_next
from fleet.options import Budget, Size, parse_sizes
from fleet.planned import PlannedServer


def rows(*counts: int) -> list[PlannedServer]:
    """Servers of inventory rows: row i makes counts[i] servers named r<i>-NNN."""
    out = []
    for row, count in enumerate(counts):
        for n in range(1, count + 1):
            name = f"r{row}-{n:03d}"
            out.append(PlannedServer(name, "inv.csv", row + 2, (("serverName", name),)))
    return out


@pytest.mark.parametrize(
    ("text", "total", "servers"),
    [("5", 100, 5), ("10%", 100, 10), ("10%", 7, 1), ("33.3%", 10, 4), ("500", 20, 20)],
)
def test_a_size_is_a_count_or_a_share_rounded_up(text: str, total: int, servers: int) -> None:
    """A share of a rollout rounds up, so 10% of 7 servers is 1, never 0."""
    assert Size.parse(text).of(total) == servers


@pytest.mark.parametrize("text", ["0", "-1", "101%", "ten", "", "5%%"])
def test_a_bad_size_is_refused_naming_it(text: str) -> None:
    """Sizes are positive counts or shares up to 100%."""
    with pytest.raises(ValueError, match=r"count|share|sizes"):
        parse_sizes(text)


def test_the_canary_holds_every_row_then_fills_up_in_inventory_order() -> None:
    """At least one server of each distinct configuration, up to the size asked."""
    work = rows(5, 3, 1)
    (canary, *_) = plan_stages(work, Size.parse("5"), ())
    assert [s.name for s in canary.specs] == ["r0-001", "r0-002", "r0-003", "r1-001", "r2-001"]
    (small, *_) = plan_stages(work, Size.parse("1"), ())  # smaller than the rows: one per row
    assert [s.name for s in small.specs] == ["r0-001", "r1-001", "r2-001"]


def test_waves_are_cumulative_and_the_rest_comes_last() -> None:
    """10%,50% of 100 servers after a canary of 5: waves up to 10, up to 50, then the rest."""
    stages = plan_stages(rows(100), Size.parse("5"), parse_sizes("10%,50%"))
    assert [(s.name, len(s.specs)) for s in stages] == [
        ("canary", 5),
        ("wave-01", 5),  # named as asked: the first size given, after the canary
        ("wave-02", 40),
        ("wave-03", 50),
    ]
    names = [s.name for stage in stages for s in stage.specs]
    assert len(names) == len(set(names)) == 100


@pytest.mark.parametrize(
    ("canary", "waves", "stages", "skipped"),
    [
        ("10", "5%,100%", [("canary", 10), ("wave-02", 90)], ["wave-01"]),
        # The case, on the demo's 16 servers: 10% is 2, within the canary's 5.
        ("5", "10%,50%,100%", [("canary", 5), ("wave-02", 3), ("wave-03", 8)], ["wave-01"]),
        (None, "50%,50%,100%", [("wave-01", 8), ("wave-03", 8)], ["wave-02"]),
        ("1", "50%,100%", [("canary", 1), ("wave-01", 7), ("wave-02", 8)], []),
    ],
)
def test_a_wave_the_stages_before_it_cover_is_named_not_silently_dropped(
    canary: str | None, waves: str, stages: list[tuple[str, int]], skipped: list[str]
) -> None:
    """Waves keep the names asked; one with nothing left to send is no stage, and is named."""
    sizes = parse_sizes(waves)
    first = Size.parse(canary) if canary else None
    planned = plan_stages(rows(100 if canary == "10" else 16), first, sizes)
    assert [(s.name, len(s.specs)) for s in planned] == stages
    assert covered(planned, sizes) == skipped


def test_without_a_canary_or_waves_there_is_one_stage() -> None:
    """The default rollout is one wave of everything, as before staging existed."""
    assert [len(s.specs) for s in plan_stages(rows(7), None, ())] == [7]


@pytest.mark.parametrize(
    ("limit", "failed", "sent", "exceeded"),
    [
        (None, 50, 50, False),  # no budget: everything is tried
        ("0", 0, 10, False),
        ("0", 1, 10, True),  # not one failure allowed
        ("2", 2, 10, False),
        ("2", 3, 10, True),
        ("10%", 1, 10, False),
        ("10%", 2, 10, True),  # 2 of 10 sent is past 10%
        ("10%", 2, 30, False),  # the share is of what was sent so far
    ],
)
def test_the_budget_counts_failures_against_what_was_sent(
    limit: str | None, failed: int, sent: int, exceeded: bool
) -> None:
    """Past the budget, nothing more is sent."""
    budget = Budget(None if limit is None else Size.parse(limit, zero=True))
    assert budget.exceeded(failed, sent) is exceeded


def test_an_approval_may_resize_the_next_wave() -> None:
    """The next wave takes the new size of the rollout; later waves keep theirs; none is lost."""
    stages = plan_stages(rows(100), Size.parse("5"), parse_sizes("10%,50%"))
    bigger = resize_next(stages, 1, Size.parse("20%"))
    assert [(s.name, len(s.specs)) for s in bigger] == [
        ("canary", 5),
        ("wave-01", 20),
        ("wave-02", 40),
        ("wave-03", 35),
    ]
    everything = resize_next(stages, 1, Size.parse("100%"))
    assert [(s.name, len(s.specs)) for s in everything] == [("canary", 5), ("wave-01", 95)]
    smaller = resize_next(plan_stages(rows(10), Size.parse("1"), ()), 1, Size.parse("2"))
    assert [(s.name, len(s.specs)) for s in smaller] == [
        ("canary", 1),
        ("wave-01", 2),
        ("wave-02", 7),  # the rest, named after the last wave
    ]
    names = [s.name for stage in bigger for s in stage.specs]
    assert len(names) == len(set(names)) == 100
