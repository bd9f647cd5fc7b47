"""Exit codes of the command line, from one table of error types (first match wins).

0  every server done (created; and running, when waiting)
1  the run went ahead, and some servers failed, are unknown, or it stopped part-way
2  nothing was sent: bad input or configuration, an unreachable or foreign ledger, another
   run holding the rollout, another endpoint or account, keys NCP refuses
3  ``fleet plan`` only: the rollout differs from its inventory (a run would change something)
"""

from __future__ import annotations

from collections.abc import Callable

from fleet import (
    ConfigError,
    FleetError,
    InventoryError,
    LeaseLost,
    LedgerError,
    NcpError,
    RolloutError,
    RunAborted,
)

__all__ = ["CHANGES_PENDING", "EXIT_CODES", "exit_code"]

# Not 2, which means bad input: a plan that found changes to make ran as it should.
CHANGES_PENDING = 3

_Rule = tuple[type[BaseException], Callable[[BaseException], bool] | None, int]


def _refused_keys(error: BaseException) -> bool:
    return isinstance(error, NcpError) and error.status in (401, 403)


EXIT_CODES: tuple[_Rule, ...] = (
    (RunAborted, None, 1),  # stopped part-way: what it did is recorded, a rerun finishes it
    (LeaseLost, None, 1),  # another run took the rollout over mid-way: this one stopped
    (InventoryError, None, 2),
    (ConfigError, None, 2),
    (RolloutError, None, 2),  # a name someone else owns, another run's lease, another endpoint
    (LedgerError, None, 2),  # unreadable, foreign, unreachable, newer: before anything was sent
    (NcpError, _refused_keys, 2),  # the gateway refused the keys: nothing could be sent
    (FleetError, None, 1),  # any other of NCP's answers stopped the run
)


def exit_code(error: BaseException) -> int:
    """Return the exit code for an error that ended a command."""
    for kind, applies, code in EXIT_CODES:
        if isinstance(error, kind) and (applies is None or applies(error)):
            return code
    return 1
