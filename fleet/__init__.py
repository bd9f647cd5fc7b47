"""fleet: batch server provisioning for NAVER Cloud Platform.

The library is async and knows nothing of Prefect: inventory -> plan -> rate-limited, retried,
signed client -> ledger, with a preflight of every reference through NCP's read APIs before any
create. The flows in ``flows/`` orchestrate it.

This module is the library's public API: what the flows and the command line use, imported from
here (``from fleet import ...``). Everything else is private by convention, free to change; the
simulator is its own package (``fleet.simulator``).
"""

from __future__ import annotations

from fleet.config import (
    DEFAULT_LEDGER,
    SITES,
    Credentials,
    LedgerLocation,
    is_loopback,
    load_credentials,
    resolve_endpoint,
    resolve_ledger,
)
from fleet.create.engine import Progress, Provisioner
from fleet.create.stages import Stage, covered, resize_next, stages_for
from fleet.errors import (
    ACCOUNT_LIMIT_CODES,
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
    RolloutRetired,
    RunAborted,
    ThrottledError,
    is_verdict,
)
from fleet.inventory import load_inventories, validate_inventories
from fleet.ledger import (
    Address,
    AsyncLedger,
    Binding,
    Extra,
    LeaseInfo,
    Ledger,
    Ownership,
    Record,
    RolloutCounts,
)
from fleet.ledger.rows import iso
from fleet.ncp.client import CreateResult, NcpClient, RetryPolicy, ServerInstance
from fleet.ncp.ratelimit import AdaptiveRateLimiter, Limiter, Measure, Permit, RateControl
from fleet.ncp.reads import Resource, read
from fleet.ncp.signing import sign, signed_headers
from fleet.options import (
    DEFAULT_WINDOW,
    Budget,
    ProbeOptions,
    ProvisionOptions,
    RunOptions,
    Size,
    TeardownOptions,
    options_from,
    parse_sizes,
    profile_defaults,
)
from fleet.ownership import new_rollout_id, new_run_tag
from fleet.plan.changes import Action, Change, plan_changes
from fleet.plan.preflight import SKIPPED, PreflightReport, preflight
from fleet.plan.refresh import Live, Refreshed, start_stopped
from fleet.plan.survey import Survey, Twin, refreshed, survey, twins_of
from fleet.planned import PlannedServer
from fleet.probe import ProbeResult, ProbeRow, Seams, load_profile, probe, probe_row
from fleet.probe.profile import EFFECTS, FIGURES, Throttle, write_profile
from fleet.report.results import (
    FIRST_FAILURES,
    Tally,
    duplicates_by_name,
    not_clean,
    pages,
    results_path,
    tally,
    write_results,
    write_rollout_results,
)
from fleet.report.summary import WAVE_COLUMNS, RolloutSummary, WaveOutcome, counts_words
from fleet.reshape.finish import Finished, finish
from fleet.reshape.resize import Pace, Reshaped, destroy, replace, resize, retire
from fleet.states import Operation, ServerStatus, State
from fleet.teardown import (
    LeftAlone,
    TeardownReport,
    TeardownScope,
    TeardownTarget,
    extras_of,
    teardown,
    teardown_targets,
)
from fleet.watch.polling import read_statuses
from fleet.watch.readiness import WaitReport, wait_running

__all__ = [
    "ACCOUNT_LIMIT_CODES",
    "DEFAULT_LEDGER",
    "DEFAULT_WINDOW",
    "EFFECTS",
    "FIGURES",
    "FIRST_FAILURES",
    "SITES",
    "SKIPPED",
    "WAVE_COLUMNS",
    "Action",
    "AdaptiveRateLimiter",
    "Address",
    "AmbiguousError",
    "AsyncLedger",
    "Binding",
    "BindingError",
    "Budget",
    "Change",
    "ConfigError",
    "CreateResult",
    "Credentials",
    "ErrorKind",
    "Extra",
    "Finished",
    "FleetError",
    "InventoryError",
    "LeaseHeld",
    "LeaseInfo",
    "LeaseLost",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "LedgerLocation",
    "LeftAlone",
    "Limiter",
    "Live",
    "Measure",
    "NcpClient",
    "NcpError",
    "Operation",
    "Ownership",
    "Pace",
    "PermanentError",
    "Permit",
    "PlannedServer",
    "PreflightError",
    "PreflightReport",
    "ProbeOptions",
    "ProbeResult",
    "ProbeRow",
    "Problem",
    "Progress",
    "ProvisionOptions",
    "Provisioner",
    "RateControl",
    "Record",
    "Refreshed",
    "Reshaped",
    "Resource",
    "RetryPolicy",
    "RetryableError",
    "RolloutCounts",
    "RolloutError",
    "RolloutRetired",
    "RolloutSummary",
    "RunAborted",
    "RunOptions",
    "Seams",
    "ServerInstance",
    "ServerStatus",
    "Size",
    "Stage",
    "State",
    "Survey",
    "Tally",
    "TeardownOptions",
    "TeardownReport",
    "TeardownScope",
    "TeardownTarget",
    "Throttle",
    "ThrottledError",
    "Twin",
    "WaitReport",
    "WaveOutcome",
    "counts_words",
    "covered",
    "destroy",
    "duplicates_by_name",
    "extras_of",
    "finish",
    "is_loopback",
    "is_verdict",
    "iso",
    "load_credentials",
    "load_inventories",
    "load_profile",
    "new_rollout_id",
    "new_run_tag",
    "not_clean",
    "options_from",
    "pages",
    "parse_sizes",
    "plan_changes",
    "preflight",
    "probe",
    "probe_row",
    "profile_defaults",
    "read",
    "read_statuses",
    "refreshed",
    "replace",
    "resize",
    "resize_next",
    "resolve_endpoint",
    "resolve_ledger",
    "results_path",
    "retire",
    "sign",
    "signed_headers",
    "stages_for",
    "start_stopped",
    "survey",
    "tally",
    "teardown",
    "teardown_targets",
    "twins_of",
    "validate_inventories",
    "wait_running",
    "write_profile",
    "write_results",
    "write_rollout_results",
]
