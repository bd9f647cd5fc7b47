"""fleet: batch server provisioning for NAVER Cloud Platform.

The library is async and knows nothing of Prefect: inventory -> plan -> rate-limited, retried,
signed client -> ledger, with a preflight of every reference through NCP's read APIs before any
create. The flows in ``flows/`` orchestrate it.
"""

from __future__ import annotations

from fleet.config import SITES, Credentials, load_credentials, resolve_endpoint
from fleet.create.engine import Progress, Provisioner
from fleet.errors import (
    AmbiguousError,
    BindingError,
    ConfigError,
    ErrorKind,
    FleetError,
    InventoryError,
    LeaseHeld,
    LeaseLost,
    LedgerConflict,
    LedgerError,
    NcpError,
    PermanentError,
    PreflightError,
    Problem,
    RetryableError,
    RolloutError,
    ThrottledError,
)
from fleet.inventory import load_inventories, validate_inventories
from fleet.ledger import DEFAULT_LEDGER, AsyncLedger, Ledger, Record
from fleet.ncp.client import CreateResult, NcpClient, RetryPolicy, ServerInstance
from fleet.ncp.ratelimit import AdaptiveRateLimiter, Limiter, Permit, RateControl
from fleet.ncp.signing import sign, signed_headers
from fleet.options import ProbeOptions, ProvisionOptions, RunOptions, TeardownOptions
from fleet.plan.preflight import PreflightReport, preflight
from fleet.plan.survey import Survey, survey
from fleet.planned import PlannedServer
from fleet.probe import ProbeResult, probe
from fleet.report.results import results_path, write_results
from fleet.report.summary import RolloutSummary
from fleet.states import Operation, ServerStatus, State
from fleet.teardown import teardown, teardown_targets
from fleet.watch.readiness import wait_running

__all__ = [
    "DEFAULT_LEDGER",
    "SITES",
    "AdaptiveRateLimiter",
    "AmbiguousError",
    "AsyncLedger",
    "BindingError",
    "ConfigError",
    "CreateResult",
    "Credentials",
    "ErrorKind",
    "FleetError",
    "InventoryError",
    "LeaseHeld",
    "LeaseLost",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "Limiter",
    "NcpClient",
    "NcpError",
    "Operation",
    "PermanentError",
    "Permit",
    "PlannedServer",
    "PreflightError",
    "PreflightReport",
    "ProbeOptions",
    "ProbeResult",
    "Problem",
    "Progress",
    "ProvisionOptions",
    "Provisioner",
    "RateControl",
    "Record",
    "RetryPolicy",
    "RetryableError",
    "RolloutError",
    "RolloutSummary",
    "RunOptions",
    "ServerInstance",
    "ServerStatus",
    "State",
    "Survey",
    "TeardownOptions",
    "ThrottledError",
    "load_credentials",
    "load_inventories",
    "preflight",
    "probe",
    "resolve_endpoint",
    "results_path",
    "sign",
    "signed_headers",
    "survey",
    "teardown",
    "teardown_targets",
    "validate_inventories",
    "wait_running",
    "write_results",
]
