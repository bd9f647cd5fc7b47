"""Rehearsals: a local NCP simulator for one command, and a ledger that only rehearsals use.

The simulator starts empty each time, so a rehearsal forgets its rollout's earlier rehearsal
before it starts. It never touches a ledger holding real rollouts: the default rehearsal ledger
is ``.fleet/rehearsal.db``, and a ``--ledger`` given with ``--simulator`` is refused if any of its
rollouts is bound to a real endpoint.

While it runs, a rehearsal's simulator records where it listens and its (throwaway) keys in
``.fleet/simulators/<port>.json`` (0600), beside the rehearsals' ledger, and removes the record
when it stops. ``reach`` lets another command (``status --refresh``, ``teardown``, ``export``)
find the simulator a rehearsal rollout is bound to and use its keys; when that simulator no
longer runs, its servers went with it, and the command says so in one line (exit 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from fleet import Binding, ConfigError, Ledger, LedgerLocation, RunOptions
from fleet.simulator import REHEARSAL_LEDGER, SimulatorConfig, running_simulator

__all__ = ["REHEARSAL_LEDGER", "SIMULATORS", "reach", "rehearsal", "still_running"]

Opts = TypeVar("Opts", bound=RunOptions)

# Where a rehearsal's simulator says where it listens, while it runs: beside the rehearsals' ledger.
SIMULATORS = REHEARSAL_LEDGER.parent / "simulators"
KEYS = ("NCLOUD_ACCESS_KEY", "NCLOUD_SECRET_KEY")


def _record_path(url: str) -> Path:
    return SIMULATORS / f"{urlsplit(url).port}.json"


@contextlib.contextmanager
def _recorded(url: str, config: SimulatorConfig) -> Iterator[None]:
    """Record, while the body runs, where the simulator listens and its keys (a 0600 file)."""
    path = _record_path(url)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    keys = {"access_key": config.access_key, "secret_key": config.secret_key}
    with open(fd, "w", encoding="utf-8") as fh:
        json.dump({"url": url, "pid": os.getpid(), **keys}, fh)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _listening(url: str) -> bool:
    """Whether something accepts connections where the simulator listened."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=2):
            return True
    except OSError:
        return False


def still_running(binding: Binding | None) -> None:
    """Refuse, in one line, a rehearsal rollout whose simulator (and servers) are gone."""
    if binding is None or not binding.rehearsal or _listening(binding.endpoint):
        return
    raise ConfigError(
        f"rollout {binding.rollout!r} was rehearsed against the simulator at {binding.endpoint}, "
        "which is no longer running: its servers went with it (rehearse again with --simulator)"
    )


def _keys(binding: Binding) -> dict[str, str] | None:
    """Return the keys a rehearsal's simulator recorded, if they are the rollout's account's."""
    from flows.runtime import fingerprint

    try:
        found = json.loads(_record_path(binding.endpoint).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a simulator started on its own: its keys are the user's to export
    if found.get("url") != binding.endpoint or fingerprint(found["access_key"]) != binding.account:
        return None
    return dict(zip(KEYS, (found["access_key"], found["secret_key"]), strict=True))


@contextlib.contextmanager
def reach(options: Opts, binding: Binding | None) -> Iterator[Opts]:
    """Yield the options that reach a rehearsal rollout's simulator (the rollout's own endpoint).

    A rollout that is no rehearsal gets its options as they are, and so does a command pointed
    at another endpoint (``--endpoint``): the rollout's binding refuses it, as for any rollout.
    A rehearsal's simulator must still run (else ConfigError, one line); the keys it recorded are
    exported while the body runs, in place of any other (a profile, a Secret block), since only
    they open it.
    """
    if binding is None or not binding.rehearsal or options.endpoint not in (None, binding.endpoint):
        yield options
        return
    still_running(binding)
    keys = _keys(binding)
    at = options.model_copy(update={"endpoint": binding.endpoint})
    if keys is None:
        yield at
        return
    with _exported(keys):
        yield at.model_copy(update={"credentials_block": None, "profile": None})


@contextlib.contextmanager
def _exported(keys: Mapping[str, str]) -> Iterator[None]:
    """Put keys in this process's environment while the body runs; restore what was there."""
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
    from flows.cli.render import out

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
    keys = dict(zip(KEYS, (config.access_key, config.secret_key), strict=True))
    with running_simulator(config) as sim, _recorded(sim.url, config), _exported(keys):
        out.print(f"[bold]Rehearsal[/]: local NCP simulator at {sim.url} (nothing real is created)")
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
