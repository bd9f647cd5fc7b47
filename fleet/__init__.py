"""fleet: batch server provisioning for NAVER Cloud Platform.

The library is async and knows nothing of Prefect: inventory -> plan -> rate-limited, retried,
signed client -> ledger. The flows in ``flows/`` orchestrate it.
"""

from __future__ import annotations

from fleet.client import CreateResult, NcpClient, RetryPolicy, ServerInstance
from fleet.config import SITES, Credentials, load_credentials, resolve_endpoint
from fleet.errors import (
    AmbiguousError,
    ConfigError,
    FleetError,
    InventoryError,
    Kind,
    NcpError,
    PermanentError,
    Problem,
    RetryableError,
    RolloutError,
    ThrottledError,
)
from fleet.inventory import load_inventories, validate_inventories
from fleet.ledger import DEFAULT_LEDGER, Ledger, Record, State
from fleet.lifecycle import teardown, teardown_targets, wait_running
from fleet.provisioner import Preflight, Progress, Provisioner
from fleet.ratelimit import AdaptiveRateLimiter, Limiter
from fleet.results import results_path, summarize, write_results
from fleet.signing import sign, signed_headers
from fleet.spec import ServerSpec

__all__ = [
    "DEFAULT_LEDGER",
    "SITES",
    "AdaptiveRateLimiter",
    "AmbiguousError",
    "ConfigError",
    "CreateResult",
    "Credentials",
    "FleetError",
    "InventoryError",
    "Kind",
    "Ledger",
    "Limiter",
    "NcpClient",
    "NcpError",
    "PermanentError",
    "Preflight",
    "Problem",
    "Progress",
    "Provisioner",
    "Record",
    "RetryPolicy",
    "RetryableError",
    "RolloutError",
    "ServerInstance",
    "ServerSpec",
    "State",
    "ThrottledError",
    "load_credentials",
    "load_inventories",
    "resolve_endpoint",
    "results_path",
    "sign",
    "signed_headers",
    "summarize",
    "teardown",
    "teardown_targets",
    "validate_inventories",
    "wait_running",
    "write_results",
]
