"""What one run did, in one frozen object: the flow returns it; CLI, artifacts and bench read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from fleet.ledger import RolloutCounts

__all__ = ["WAVE_COLUMNS", "RolloutSummary", "RunCounts", "WaveOutcome", "counts_words"]


def counts_words(c: RolloutCounts) -> str:
    """Return a rollout's counts in words: every state one of its servers is in, and the total.

    The one wording of the counts, read off the ledger's one state of each server: status, the
    last lines, the artifacts and the flow's final message all say it so.
    """
    words = f"{c.running} running, {c.failed} failed, {c.in_flight} unknown (in flight)"
    rest = [
        (c.created, "made, not running yet"),
        (c.planned, "not sent"),
        (c.stopped, "stopped"),
        (c.starting, "starting"),
        (c.resizing, "resizing"),
        (c.terminating, "being taken down"),
        (c.terminated, "terminated"),
        (c.gone, "gone out of band"),
        (c.deposed, "replaced, old server still up"),
    ]
    words += "".join(f", {n} {what}" for n, what in rest if n)
    return words + f", of {c.total}"


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What one run did with its own share of the rollout, not the rollout's totals."""

    to_do: int = 0  # servers this run set out to create or settle
    created: int = 0  # sent by this run, and created
    settled: int = 0  # left in flight by an earlier run, now known (created or failed)
    failed: int = 0  # sent by this run, and refused (or never found)
    unknown: int = 0  # of this run's servers, still in flight: a rerun settles them
    skipped: int = 0  # in the inventory, not this run's: done before, or failed before

    @property
    def not_sent(self) -> int:
        """Return how many of this run's servers it never sent (a staged rollout stopped)."""
        return max(0, self.to_do - self.created - self.settled - self.failed - self.unknown)

    @property
    def line(self) -> str:
        """Return what this run did, in one line."""
        unsent = f", {self.not_sent} not sent" if self.not_sent else ""
        return (
            f"this run: {self.created} created, {self.settled} settled, {self.failed} failed, "
            f"{self.unknown} unknown{unsent}, of {self.to_do} to do; {self.skipped} skipped "
            "(done or failed before)"
        )


@dataclass(frozen=True, slots=True)
class WaveOutcome:
    """What one stage of a rollout (the canary, a wave) did."""

    name: str
    servers: int  # in the stage
    sent: int  # of those, sent (or settled) before the stage ended
    created: int
    failed: int  # refused by NCP, or every create of it ambiguous and none found
    not_ready: int  # created, but never RUN in time (or failed, or gone)
    ready: int  # RUN with no operation under way

    @property
    def failures(self) -> int:
        """Return the failures this stage spends from the budget."""
        return self.failed + self.not_ready

    @property
    def line(self) -> str:
        """Return what the stage did, in one line (printed as the stage ends)."""
        return (
            f"{self.name}: {self.sent} sent, {self.created} created, {self.failed} failed, "
            f"{self.not_ready} not ready, {self.ready} ready, of {self.servers}"
        )

    def row(self) -> dict[str, object]:
        """Return the stage as a row of the stages table, under the labels people read."""
        counts = (self.servers, self.sent, self.created, self.failed, self.not_ready, self.ready)
        return dict(zip(WAVE_COLUMNS, (self.name, *counts), strict=True))


# The stages table's columns (the waves artifact, the approval form's summary so far).
WAVE_COLUMNS = ("stage", "servers", "sent", "created", "failed", "not ready", "ready")


@dataclass(frozen=True, slots=True)
class RolloutSummary:
    """The outcome of one provisioning run: the rollout's counts and what this run did."""

    rollout: str
    results: str  # the results file
    counts: RolloutCounts
    servers: int  # in the inventory
    sent: int  # servers this run set out to create
    settled: int  # servers an earlier run left in flight, settled by this one
    reconciled: int  # of those, found existing at the start
    adopted: int
    changed: int  # created before, inventory changed since (not changed on NCP)
    seconds: float  # spent creating
    api_calls: int
    throttled: int  # answers 429 (the limiter slowed down)
    unprocessed: int  # failures NCP did not process (retried)
    ambiguous: int  # answers that left a create's outcome unknown (looked up by name)
    lookups: int  # look-up calls made to settle them
    retries: int
    waited: bool = False  # whether the run waited for RUN
    waves: tuple[WaveOutcome, ...] = ()  # a staged rollout's stages, in order
    stopped: str | None = None  # why a staged rollout stopped before its last stage
    rolled_back: bool = False  # whether what it made was torn down after it stopped
    taken_back: tuple[str, ...] = ()  # what the rollback took down
    rollback_left: dict[str, str] = field(default_factory=dict)  # ... and left billed: name -> why
    rate_asked: float | None = None  # calls/s the user named; None: --rate auto
    rate_found: float | None = None  # calls/s the gateway allowed, measured between throttles
    rate_seconds: float = 0.0  # of steady sending between throttles that measure spans
    rate_final: float | None = None  # calls/s the limiter was at when creating ended
    run: RunCounts = RunCounts()  # what this run did, apart from the rollout's totals
    run_tag: str = ""  # this run's tag in its create markers: a rollback takes only what it made
    planned: dict[str, int] = field(default_factory=dict)  # action -> servers, as planned
    pending: dict[str, int] = field(default_factory=dict)  # action -> servers left for a flag
    reshaped: int = 0  # servers resized or replaced by this run
    destroyed: int = 0  # servers taken down by this run as no longer in the inventory
    drifted: dict[str, int] = field(default_factory=dict)  # gone, stopped: found by the refresh
    unchanged: dict[str, str] = field(default_factory=dict)  # name -> why not resized ... destroyed
    # Changes earlier runs began (intents): finished by this run (name -> what), or left (-> why).
    finished: dict[str, str] = field(default_factory=dict)
    unfinished: dict[str, str] = field(default_factory=dict)
    # Second live servers under names the rollout holds, not its own: said, never silent.
    twins: tuple[str, ...] = ()

    @property
    def created_per_second(self) -> float:
        """Return the rate this run created servers at, over the creating phase."""
        return round(self.run.created / self.seconds, 2) if self.seconds else 0.0

    @property
    def not_done(self) -> int:
        """Return how many servers are not done: not made, changing, or made and not running.

        Made and not running counts only when the run waited for RUN (or stopped).
        """
        c = self.counts
        left = c.not_done + c.terminating + c.deposed
        if self.waited or self.stopped:
            left += c.created + c.stopped + c.starting + c.resizing
        return max(1, left) if self.stopped else left

    @property
    def rate_line(self) -> str:
        """Return what the run learnt of the account's call rate, in one line."""
        asked = "auto" if self.rate_asked is None else f"{self.rate_asked:g}/s"
        auto = self.rate_asked is None
        if self.rate_found is not None:
            line = (
                f"call rate {asked}: the gateway allowed about {self.rate_found:.1f} calls/s, "
                f"measured over {self.rate_seconds:.1f} s of steady sending between throttles"
            )
            return line + (" (remembered for the next run)" if auto else "")
        final = "" if self.rate_final is None else f"; ended at {self.rate_final:.1f} calls/s"
        kept = "; nothing new remembered" if auto else ""
        if self.throttled:  # measured between two throttles, with calls queued all along
            return (
                f"call rate {asked}: throttled {self.throttled}x, never long enough while "
                f"sending steadily to measure{final}{kept}"
            )
        return f"call rate {asked}: never throttled{final}{kept}"

    def facts(self) -> dict[str, object]:
        """Return the summary as labelled facts, for the summary artifact (in this order)."""
        c = self.counts
        return {
            "servers in inventory": self.servers,
            "this run: to do": self.run.to_do,
            "this run: created": self.run.created,
            "this run: settled": self.run.settled,
            "this run: failed": self.run.failed,
            "this run: unknown": self.run.unknown,
            "this run: skipped (done or failed before)": self.run.skipped,
            "running": c.running,
            "made, not running yet": c.created,
            "failed": c.failed,
            "unknown (in flight)": c.in_flight,
            "not sent": c.planned,
            "stopped": c.stopped,
            "starting or resizing": c.starting + c.resizing,
            "being taken down": c.terminating,
            "terminated": c.terminated,
            "gone out of band": c.gone,
            "replaced, old server still up": c.deposed,
            "servers under one name twice (duplicates)": c.duplicates,
            "sent this run": self.sent,
            "settled from an earlier run": self.settled,
            "reconciled at start": self.reconciled,
            "adopted": self.adopted,
            **{f"planned: {action}": n for action, n in self.planned.items()},
            **{f"drift: {what}": n for what, n in self.drifted.items()},
            **{f"left for a flag: {action}": n for action, n in self.pending.items()},
            "resized or replaced": self.reshaped,
            "destroyed (not in the inventory)": self.destroyed,
            "changed in inventory since created": self.changed,
            "provisioning seconds": round(self.seconds, 2),
            "created per second": self.created_per_second,
            "API calls": self.api_calls,
            "throttled responses": self.throttled,
            "call rate asked (calls/s)": "auto" if self.rate_asked is None else self.rate_asked,
            "call rate the gateway allowed (calls/s)": (
                "not measured" if self.rate_found is None else round(self.rate_found, 1)
            ),
            "seconds of steady sending it was measured over": round(self.rate_seconds, 1),
            "unprocessed failures (retried)": self.unprocessed,
            "ambiguous answers (looked up by name)": self.ambiguous,
            "look-up calls": self.lookups,
            "retries": self.retries,
            **{
                f"{w.name}: sent, created, failed, not ready, ready": (
                    f"{w.sent}, {w.created}, {w.failed}, {w.not_ready}, {w.ready} of {w.servers}"
                )
                for w in self.waves
            },
            **({"stopped": self.stopped} if self.stopped else {}),
            **({"rolled back": "yes"} if self.rolled_back else {}),
            "results file": self.results,
        }

    def as_dict(self) -> dict[str, object]:
        """Return every field as plain data (for JSON and Prefect's result display)."""
        return asdict(self)
