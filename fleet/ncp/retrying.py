"""How one call is retried: only what NCP did not process, full-jitter back-off, on a budget.

Throttles have a budget of their own, larger than other errors': under load they are expected,
and the limiter slows down meanwhile. A ``Retry-After`` the gateway sends is honoured.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import tenacity

from fleet.errors import AmbiguousError, NcpError, RetryableError, ThrottledError

__all__ = ["RetryPolicy", "retryable_errors", "retrying_for"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one call is retried when NCP did not process it."""

    max_attempts: int = 6  # attempts for errors other than throttling
    max_throttled: int = 40  # throttles are expected under load; the limiter slows down meanwhile
    base: float = 0.5  # seconds: first back-off ceiling, doubled per attempt
    cap: float = 20.0  # seconds: largest back-off ceiling
    deadline: float = 600.0  # seconds: give up on one call after this long, whatever the count


def retryable_errors(*, idempotent: bool) -> tuple[type[NcpError], ...]:
    """Return the errors a call is sent again after: unprocessed, and ambiguous if idempotent."""
    return (RetryableError, AmbiguousError) if idempotent else (RetryableError,)


def retrying_for(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    started: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    on_retry: Callable[[BaseException | None], None],
) -> tenacity.AsyncRetrying:
    """Return the retrying of one call first sent at ``started`` (the policy's deadline counts)."""
    retryable = retryable_errors(idempotent=idempotent)
    throttles = 0

    def stop(state: tenacity.RetryCallState) -> bool:
        nonlocal throttles
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ThrottledError):
            throttles += 1
        others = state.attempt_number - throttles
        return (
            clock() - started >= policy.deadline
            or throttles >= policy.max_throttled
            or others >= policy.max_attempts
        )

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, NcpError) and exc.retry_after is not None:
            return min(exc.retry_after, policy.deadline)
        ceiling = min(policy.cap, policy.base * 2 ** (state.attempt_number - 1))
        return rng.uniform(0, ceiling)  # full jitter: spreads a thundering herd

    def before_sleep(state: tenacity.RetryCallState) -> None:
        on_retry(state.outcome.exception() if state.outcome else None)

    return tenacity.AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception_type(retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,  # our own exception reaches the caller, never a RetryError
    )
