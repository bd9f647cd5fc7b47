"""What every chunk task shares: its options, what it retries, how servers are passed, the engine.

A chunk task is a task run that creates some of the rollout's servers: ``provision-chunk`` of
the flow, or one stage of a staged rollout (``canary``, ``wave-02`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

from prefect import State
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from fleet import PlannedServer, Provisioner, ProvisionOptions, is_verdict
from flows.runtime import Runtime

__all__ = ["CHUNK_TASK", "engine_for", "infrastructure_only", "provision_in", "unvisited"]

T = TypeVar("T")


def infrastructure_only(task: Any, task_run: Any, state: State) -> bool:
    """Retry a chunk task only for failures that are not a verdict on the rollout."""
    # The sync form: Prefect calls this inside the event loop, where result() would hand back
    # a coroutine, and an unawaited coroutine never says no (nor yes).
    error = state.result(raise_on_failure=False, _sync=True)  # type: ignore[call-overload]
    if not isinstance(error, BaseException):
        return False
    # A database hiccup is safe to retry: the chunk's workers were all awaited, what the ledger
    # holds as created is skipped, what it holds in flight is looked up.
    return not is_verdict(error)


def unvisited(items: list[T]) -> list[T]:
    """Pass servers (or their records) to a task without Prefect visiting each one.

    Prefect walks every parameter looking for futures to wait on, twice per task run: for 2,000
    servers that held the event loop about 0.4 s in all, and there are none to find. It unwraps
    quote() first.
    """
    return cast(list[T], quote(items))


# The task options of every chunk task (with its own name): nothing cached or stored, and one
# retry, after 5 s, of a failure that is not a verdict on the rollout.
CHUNK_TASK: Final[dict[str, Any]] = {
    "cache_policy": NO_CACHE,
    "persist_result": False,
    "retries": 1,
    "retry_delay_seconds": 5,
    "retry_condition_fn": infrastructure_only,
}


def engine_for(rt: Runtime, options: ProvisionOptions) -> Provisioner:
    """Return an engine on a run's live objects: its lease, progress, and create markers."""
    return Provisioner(
        rt.client,
        rt.ledger,
        rt.rollout,
        rt.owner,
        options,
        progress=rt.progress,
        rollout_id=rt.marker,
        run=rt.run,
    )


async def provision_in(
    rt: Runtime,
    specs: Sequence[PlannedServer],
    options: ProvisionOptions,
    *,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Create (or settle) servers with an engine on the run's live objects; count its lookups.

    Per-server failures are recorded, not raised. Once ``stop()`` says so, nothing more is sent.
    The engine sends only while it holds one of the run's sending slots (``Runtime.sending``),
    and gives it up once it has nothing left to send: looking up what is unsettled (60 s, for a
    create whose answer was lost) never holds the next chunk back.
    """
    engine = engine_for(rt, options)
    held = True
    await rt.sending.acquire()

    def drained() -> None:
        nonlocal held
        if held:
            held = False
            rt.sending.release()

    try:
        await engine.provision(specs, stop=stop, drained=drained)
    finally:
        drained()
        rt.lookups += engine.lookups
        rt.ambiguous += engine.ambiguous
