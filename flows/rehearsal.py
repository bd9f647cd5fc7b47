"""Rehearsals: a local NCP simulator for one command, and a ledger that only rehearsals use.

The simulator starts empty each time, so a rehearsal forgets its rollout's earlier rehearsal
before it starts. It never touches a ledger holding real rollouts: the default rehearsal ledger
is ``.fleet/rehearsal.db``, and a ``--ledger`` given with ``--simulator`` is refused if any of its
rollouts is bound to a real endpoint.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import TypeVar

from fleet.config import LedgerLocation
from fleet.errors import ConfigError
from fleet.ledger import Ledger
from fleet.options import RunOptions
from fleet.simulator import REHEARSAL_LEDGER, SimulatorConfig, running_simulator

__all__ = ["REHEARSAL_LEDGER", "rehearsal"]

Opts = TypeVar("Opts", bound=RunOptions)


def guard(target: str, rollout: str) -> None:
    """Refuse a ledger that holds real rollouts; forget the rehearsed rollout's last rehearsal."""
    location = LedgerLocation.parse(target)
    if location.missing:
        return
    default = location.path == REHEARSAL_LEDGER
    with Ledger(location) as book:
        real = []
        for name in book.rollouts():
            binding = book.binding(name)
            if (binding is None and not default) or (binding is not None and not binding.rehearsal):
                real.append(name)
        if real:
            raise ConfigError(
                f"ledger {book.shown} holds real rollouts ({', '.join(real[:5])}): a rehearsal "
                f"never writes there. Leave out --ledger to rehearse in {REHEARSAL_LEDGER}."
            )
        book.forget(rollout, unbound_is_rehearsal=default)


@contextlib.contextmanager
def rehearsal(
    options: Opts, rollout: str, ledger: str | None = None, *, fast: bool = True
) -> Iterator[Opts]:
    """Start the local simulator with its keys exported; yield the options pointing at it.

    ``ledger`` is the one the user named, if any; else the rehearsal ledger. Never FLEET_LEDGER.
    """
    from flows.render import out

    target = ledger or str(REHEARSAL_LEDGER)
    guard(target, rollout)
    # Weather for a rehearsal: a gateway limit and a few of each fault, so the run shows its
    # retries and look-ups. Seeded, so two rehearsals behave the same.
    config = SimulatorConfig(
        access_key="sim-" + secrets.token_hex(8),
        secret_key=secrets.token_hex(20),
        rate=50.0,
        burst=10,
        latency=0.02,
        create_seconds=1.0 if fast else 5.0,
        setup_seconds=2.0 if fast else 20.0,
        fail_before=0.05,
        fail_after=0.05,
        drop_after=0.03,
        seed=7,
    )
    keys = {"NCLOUD_ACCESS_KEY": config.access_key, "NCLOUD_SECRET_KEY": config.secret_key}
    saved = {k: os.environ.get(k) for k in keys}
    with running_simulator(config) as sim:
        os.environ.update(keys)
        out.print(f"[bold]Rehearsal[/]: local NCP simulator at {sim.url} (nothing real is created)")
        try:
            yield options.model_copy(
                update={
                    "endpoint": sim.url,
                    # A URL with a password was put in FLEET_LEDGER by the command line.
                    "ledger": None if LedgerLocation.parse(target).password else target,
                    "ledger_block": None,
                    "credentials_block": None,
                    "profile": None,
                }
            )
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
