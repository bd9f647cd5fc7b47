"""What the tasks of one flow run share: one client, one rate limiter, one ledger.

Prefect tasks take plain data. The live objects (an HTTP pool, the limiter every request of the
account must pass, the SQLite connection) are opened once per flow run and looked up by the run's
key, so every chunk task spends the same rate budget instead of each bringing its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.client import NcpClient
from fleet.config import Credentials, load_credentials, resolve_endpoint
from fleet.errors import ConfigError
from fleet.ledger import Ledger
from fleet.provisioner import Progress, Provisioner
from fleet.ratelimit import AdaptiveRateLimiter, Limiter

DEFAULT_RATE = 10.0  # calls/s: NCP publishes no limit; the limiter backs off on 429 anyway
DEFAULT_BURST = 5
DEFAULT_CONCURRENCY = 16
ROLLOUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class Runtime:
    """The live objects of one flow run."""

    key: str
    rollout: str
    client: NcpClient
    ledger: Ledger
    limiter: Limiter
    provisioner: Provisioner

    @property
    def progress(self) -> Progress:
        """Return the run's running counts."""
        return self.provisioner.progress


_RUNTIMES: dict[str, Runtime] = {}


def runtime(key: str) -> Runtime:
    """Return the live objects of the flow run with this key."""
    return _RUNTIMES[key]


def rollout_name(inventories: Sequence[str]) -> str:
    """Return the default rollout name: the inventories' file names, as a lower-case slug."""
    stems = [Path(p).stem for p in inventories]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(stems).lower()).strip("-")
    return slug or "rollout"


def artifact_key(rollout: str, what: str) -> str:
    """Return a Prefect artifact key (lower-case letters, digits, dashes) for a rollout."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{rollout}-{what}".lower()).strip("-")


async def resolve_credentials(block: str | None) -> Credentials:
    """Return NCP keys from a Prefect Secret block when named, else from the environment."""
    if not block:
        return load_credentials()
    from prefect.blocks.system import Secret

    value: Any = (await Secret.aload(block)).get()
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


@asynccontextmanager
async def open_runtime(
    rollout: str,
    *,
    credentials: Credentials,
    site: str,
    endpoint: str | None,
    ledger_path: str,
    rate: float,
    burst: int,
    concurrency: int,
    request_timeout: float = 30.0,
    settle_seconds: float = 2.0,
    shared_limit: str | None = None,
) -> AsyncIterator[Runtime]:
    """Open the client, limiter and ledger for one flow run, and close them after."""
    if not ROLLOUT_NAME.fullmatch(rollout):
        # The name becomes a file name (results) and artifact keys: no paths, no spaces.
        raise ConfigError(
            f"rollout name {rollout!r}: use letters, digits, '.', '_' and '-' (starting with a "
            "letter or digit)"
        )
    if rate <= 0 or burst < 1 or concurrency < 1:
        raise ConfigError("rate must be positive; burst and concurrency at least 1")
    limiter: Limiter = AdaptiveRateLimiter(rate, burst, max_in_flight=concurrency)
    if shared_limit:
        from flows.shared_limit import SharedRateLimiter

        limiter = SharedRateLimiter(shared_limit, rate, burst, max_in_flight=concurrency)
    client = NcpClient(
        credentials,
        resolve_endpoint(site, endpoint),
        limiter=limiter,
        timeout=request_timeout,
        max_connections=concurrency,
    )
    ledger = Ledger(ledger_path)
    key = uuid.uuid4().hex
    provisioner = Provisioner(
        client, ledger, rollout, settle_seconds=settle_seconds, workers=2 * concurrency
    )
    rt = Runtime(key, rollout, client, ledger, limiter, provisioner)
    _RUNTIMES[key] = rt
    try:
        yield rt
    finally:
        del _RUNTIMES[key]
        await client.aclose()
        ledger.close()
