"""What the tasks of one flow run share: one client, one limiter, one ledger, one lease.

Prefect tasks take plain data. The live objects (an HTTP pool, the limiter every request of the
account must pass, the ledger's connections and its worker thread, the lease and its heartbeat)
are opened once per flow run and looked up by the run's key, so every chunk task spends the same
rate budget instead of each bringing its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fleet import (
    DEFAULT_WINDOW,
    AdaptiveRateLimiter,
    AsyncLedger,
    Binding,
    BindingError,
    ConfigError,
    Credentials,
    LeaseHeld,
    LeaseLost,
    Ledger,
    LedgerError,
    LedgerLocation,
    Limiter,
    NcpClient,
    Ownership,
    Progress,
    ProvisionOptions,
    RunOptions,
    TeardownOptions,
    is_loopback,
    load_credentials,
    new_rollout_id,
    new_run_tag,
    resolve_endpoint,
    resolve_ledger,
)

__all__ = [
    "Runtime",
    "artifact_key",
    "build_limiter",
    "fingerprint",
    "ledger_target",
    "open_runtime",
    "resolve_credentials",
    "rollout_name",
    "runtime",
]

log = logging.getLogger(__name__)

# Engines sending at once in one run (see Runtime.sending).
SENDING_AT_ONCE = 4
ROLLOUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class Runtime:
    """The live objects of one flow run."""

    key: str
    rollout: str
    client: NcpClient
    ledger: AsyncLedger
    limiter: Limiter
    owner: str  # this run's lease token
    marker: str | None = None  # the rollout's create-marker id (None: it never sent with one)
    run: str = field(default_factory=new_run_tag)  # this run's tag in the create markers
    progress: Progress = field(default_factory=Progress)
    lookups: int = 0
    ambiguous: int = 0  # create answers of any kind that left the outcome unknown
    ready: tuple[int, int] | None = None  # (running, waited for), while waiting for RUN
    # Engines sending at once, at any size. An engine claims ahead only as many as its own pace
    # sends within the claim horizon (create/claims.py): 20 chunks sending at once claimed 1-2 per
    # commit each, so commits per create grew with the rollout (0.18 at 1,000 servers, 0.55 at
    # 5,000). An engine left only looking up gives its slot to the next (tasking.provision_in).
    sending: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SENDING_AT_ONCE))


_RUNTIMES: dict[str, Runtime] = {}


def runtime(key: str) -> Runtime:
    """Return the live objects of the flow run with this key."""
    return _RUNTIMES[key]


def rollout_name(inventories: Sequence[str]) -> str:
    """Return the default rollout name: the inventories' file names, as a lower-case slug."""
    stems = [Path(p).stem for p in inventories]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(stems).lower()).strip("-")
    return slug or "rollout"


def check_rollout_name(rollout: str) -> None:
    """Refuse a rollout name that is not a plain file name (it names files and artifacts)."""
    if not ROLLOUT_NAME.fullmatch(rollout):
        raise ConfigError(
            f"rollout name {rollout!r}: use letters, digits, '.', '_' and '-' (starting with a "
            "letter or digit)"
        )


def teardown_options(options: RunOptions) -> TeardownOptions:
    """Return a teardown's options with a run's own settings (endpoint, ledger, rate ...).

    A provisioning run's teardowns (prune, retire, rollback, finishing an earlier one) wait no
    longer than it waits for RUN (``--wait-timeout``): the operator's limit.
    """
    shared = set(TeardownOptions.model_fields) & set(type(options).model_fields)
    values = options.model_dump(include=shared)
    if isinstance(options, ProvisionOptions):
        values["time_limit"] = options.wait_timeout
    return TeardownOptions(**values)


def artifact_key(rollout: str, what: str) -> str:
    """Return a Prefect artifact key (lower-case letters, digits, dashes) for a rollout."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{rollout}-{what}".lower()).strip("-")


def fingerprint(access_key: str) -> str:
    """Return a short fingerprint of an access key: enough to tell accounts apart."""
    return "key-" + hashlib.sha256(access_key.encode()).hexdigest()[:12]


async def ledger_target(options: RunOptions) -> LedgerLocation:
    """Return where the ledger is: the option, the Secret block, FLEET_LEDGER, .fleet/ledger.db.

    The URL in a block (or in FLEET_LEDGER) may carry the database password: it is read here,
    in the run's own process, and never becomes a parameter, a log line or an artifact.
    """
    if options.ledger or not options.ledger_block:
        return resolve_ledger(options.ledger)
    from prefect.blocks.system import Secret

    stored: Any = await Secret.aload(options.ledger_block)
    value = stored.get()
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Secret block {options.ledger_block!r} must hold the ledger's URL")
    return resolve_ledger(value)


async def resolve_credentials(block: str | None, profile: str | None = None) -> Credentials:
    """Return NCP keys from a Prefect Secret block when named, else the environment or file."""
    if not block:
        return load_credentials(profile=profile)
    from prefect.blocks.system import Secret

    stored: Any = await Secret.aload(block)
    value: Any = stored.get()
    if isinstance(value, dict):
        access, secret = value.get("access_key", ""), value.get("secret_key", "")
    elif isinstance(value, str) and ":" in value:
        access, secret = value.split(":", 1)
    else:
        access = secret = ""
    if not access or not secret:
        raise ConfigError(
            f"Secret block {block!r} must hold {{'access_key': ..., 'secret_key': ...}}"
        )
    return Credentials(access, secret, f"Prefect Secret block {block}")


def _holder() -> str:
    """Return who this run is, in words, for the lease (shown to a run it keeps out)."""
    text = f"{socket.gethostname()} pid {os.getpid()}"
    with contextlib.suppress(Exception):  # outside a flow run there is no id to add
        from prefect.runtime import flow_run

        if flow_run.id:
            text += f" flow run {flow_run.name} ({flow_run.id})"
    return text


async def _take_lease(ledger: AsyncLedger, rollout: str, owner: str, options: RunOptions) -> None:
    while True:
        try:
            await ledger.acquire(rollout, owner, _holder(), options.lease_ttl)
            return
        except LeaseHeld as held:
            if not options.wait_for_lease:
                raise
            log.warning(
                "waiting: rollout %s is run by %s since %s", rollout, held.holder, held.since
            )
            await asyncio.sleep(min(5.0, options.lease_ttl / 4))


async def _heartbeat(ledger: AsyncLedger, rollout: str, owner: str, ttl: float) -> None:
    """Renew the lease every third of its time to live, until cancelled or lost."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            await ledger.renew(rollout, owner, ttl)
        except LeaseLost as exc:
            log.error("%s; this run stops sending", exc)  # every claim now fails on its own
            return
        except LedgerError as exc:
            log.warning("lease heartbeat failed (will retry): %s", exc)


def build_limiter(options: RunOptions, known: float | None = None) -> Limiter:
    """Return the run's limiter: a named rate as its ceiling, or discovery up to max_rate."""
    rate, burst, in_flight = options.rate, options.burst, options.concurrency
    if isinstance(rate, str):  # "auto": from the rate found last time, if any
        local = AdaptiveRateLimiter(
            options.max_rate, burst, discover=True, known=known, max_in_flight=in_flight
        )
    else:
        local = AdaptiveRateLimiter(rate, burst, max_in_flight=in_flight)
    if options.shared_limit:
        from flows.shared_limit import SharedRateLimiter

        return SharedRateLimiter(options.shared_limit, local)
    return local


async def _known_rate(ledger: AsyncLedger, binding: Binding, options: RunOptions) -> float | None:
    """Return the rate a previous run found at this endpoint for this account (auto only)."""
    if not options.auto_rate:
        return None
    known = await ledger.known_rate(binding.endpoint, binding.account)
    if known is not None:
        log.info("call rate: starting near %.1f calls/s, found by an earlier run", known)
    elif options.start_rate is not None:  # none remembered: the one given (a probe's)
        known = options.start_rate
        log.info("call rate: starting near %.1f calls/s, as given", known)
    return known


async def _remember_rate(rt: Runtime, binding: Binding, options: RunOptions) -> None:
    """Keep the rate this run found (auto only), for the next run against this gateway.

    Only a rate measured over steady sending is kept: a run that never sent long enough at the
    gateway's limit (a small or staged one) leaves the earlier figure as it was.
    """
    measure = rt.limiter.measure
    if not options.auto_rate:
        return
    if measure is None:
        log.info("call rate: nothing measured over steady sending; the remembered rate is kept")
        return
    log.info(
        "call rate: the gateway allowed about %.1f calls/s over %.1f s of steady sending; "
        "remembered",
        measure.rate,
        measure.seconds,
    )
    with contextlib.suppress(LedgerError):  # a lost ledger is reported by the run itself
        await rt.ledger.remember_rate(binding.endpoint, binding.account, measure.rate)


async def _check_binding(
    ledger: AsyncLedger, wanted: Binding, *, write: bool, rebind: bool
) -> None:
    """Bind the rollout (when writing), or check a read-only run looks where it lives."""
    if write:
        await ledger.bind(wanted, rebind=rebind)
        return
    bound = await ledger.binding(wanted.rollout)
    if (
        bound is not None
        and bound.endpoint  # '' : made by an engine run on its own, never bound
        and not rebind
        and (bound.endpoint, bound.account)
        != (
            wanted.endpoint,
            wanted.account,
        )
    ):
        raise BindingError(
            f"rollout {wanted.rollout!r} lives at {bound.endpoint} with account key "
            f"{bound.account}, not {wanted.endpoint} with {wanted.account}: nothing there "
            "would be this rollout's. Pass --rebind if the rollout really moved."
        )


async def _ownership(
    ledger: AsyncLedger, rollout: str, options: RunOptions, *, write: bool
) -> Ownership:
    """Return the rollout's marker id and window; a provisioning run keeps its own window."""
    if write and isinstance(options, ProvisionOptions):
        return await ledger.ownership(rollout, window=options.settle, new_marker=new_rollout_id())
    return await ledger.ownership(rollout, window=DEFAULT_WINDOW)


async def _runtime(
    ledger: AsyncLedger,
    binding: Binding,
    owner: str,
    options: RunOptions,
    credentials: Credentials,
    *,
    write: bool,
) -> Runtime:
    """Return a run's live objects: its rollout's ownership, its limiter and client."""
    own = await _ownership(ledger, binding.rollout, options, write=write)
    limiter = build_limiter(options, await _known_rate(ledger, binding, options))
    client = NcpClient(
        credentials,
        binding.endpoint,
        limiter=limiter,
        timeout=options.request_timeout,
        max_connections=options.concurrency,
    )
    return Runtime(
        uuid.uuid4().hex,
        binding.rollout,
        client,
        ledger,
        limiter,
        owner,
        marker=own.marker,
    )


@asynccontextmanager
async def open_runtime(
    rollout: str, options: RunOptions, credentials: Credentials, *, lease: bool = True
) -> AsyncIterator[Runtime]:
    """Open the ledger, take the rollout's lease, check its binding, open the client.

    ``lease=False`` is for runs that change nothing (a dry plan): no lease, no binding written.

    Raises:
        ConfigError: a bad rollout name or endpoint.
        LedgerError: the ledger cannot be opened.
        LeaseHeld: another run holds the rollout (unless waiting for it).
        BindingError: the rollout lives at another endpoint or in another account.

    """
    check_rollout_name(rollout)
    endpoint = resolve_endpoint(options.site, options.endpoint)
    ledger = AsyncLedger(Ledger(await ledger_target(options)))
    owner = uuid.uuid4().hex
    beat: asyncio.Task[None] | None = None
    rt: Runtime | None = None
    try:
        if lease:
            await _take_lease(ledger, rollout, owner, options)
            beat = asyncio.create_task(_heartbeat(ledger, rollout, owner, options.lease_ttl))
        rehearsal = is_loopback(urlsplit(endpoint).hostname or "")
        binding = Binding(rollout, endpoint, fingerprint(credentials.access_key), rehearsal)
        await _check_binding(ledger, binding, write=lease, rebind=options.rebind)
        rt = await _runtime(ledger, binding, owner, options, credentials, write=lease)
        _RUNTIMES[rt.key] = rt
        yield rt
        if lease:
            await _remember_rate(rt, binding, options)
    finally:
        if rt is not None:
            del _RUNTIMES[rt.key]
            await rt.client.aclose()
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        if lease:
            with contextlib.suppress(LedgerError):
                await ledger.release(rollout, owner)
        ledger.close()
        ledger.sync.close()
