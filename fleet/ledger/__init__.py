"""The ledger: every server of every rollout, recorded before each create goes out.

A server is written ``in_flight`` (with the parameters as sent) in a committed, fully synced
transaction before its create call goes out, and its outcome as soon as it is known. So after a
crash, a kill or a power cut every server is either known created (with its instance number),
known not sent, or ``in_flight``: to be looked up, with the region and VPC it was sent to, before
anything is sent again. Every change is a compare-and-set on the row's state; a create is claimed
only under the rollout's lease, which one run holds at a time, and every other write only while
the run still holds it (fencing). Every time it keeps is on one clock, the database's; a
create's send is also stamped with NCP's own clock. After its create, each server lives one
life in one state (``fleet.states.State``): every change of it a compare-and-set, every change
that takes several calls an intent first (``lifecycle``).

Two backends with the same semantics: a SQLite file (the default, ``.fleet/ledger.db``) or a
PostgreSQL database (``postgresql://...``) that many workers share.
"""

from __future__ import annotations

from fleet.errors import ErrorKind
from fleet.states import State

from .addresses import Address
from .aio import AsyncLedger
from .ledger import DEFAULT_LEDGER, Ledger
from .lifecycle import Observed
from .model import (
    Binding,
    Extra,
    Instance,
    LeaseInfo,
    Ownership,
    PlanDelta,
    Record,
    Role,
    RolloutCounts,
)
from .outcomes import Found
from .schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_LEDGER",
    "SCHEMA_VERSION",
    "Address",
    "AsyncLedger",
    "Binding",
    "ErrorKind",
    "Extra",
    "Found",
    "Instance",
    "LeaseInfo",
    "Ledger",
    "Observed",
    "Ownership",
    "PlanDelta",
    "Record",
    "Role",
    "RolloutCounts",
    "State",
]
