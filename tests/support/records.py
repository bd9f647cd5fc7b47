"""Ledger records made by hand, for code that reads them (results, progress, exports)."""

from __future__ import annotations

from fleet.errors import ErrorKind
from fleet.ledger import Record
from fleet.states import State


def record(name: str, message: str | None = None) -> Record:
    """A ledger record of rollout r: running as 1001, or failed with ``message``."""
    return Record(
        rollout="r",
        name=name,
        file="a.csv",
        line=2,
        region="JPN",
        vpc_no="3001",
        params_hash="h",
        state=State.FAILED if message else State.RUNNING,
        instance_no=None if message else "1001",
        request_id="rid",
        attempts=1,
        ambiguous_sends=0,
        error_kind=ErrorKind.PERMANENT if message else None,
        error_code="1413" if message else None,
        error_message=message,
        http_status=None,
        adopted=False,
        server_status=None,
        run_seconds=None,
        response=None,
        sent_params=None,
        sent_hash=None,
        duplicates=0,
        planned_at=None,
        first_sent_at=None,
        sent_at=None,
        created_at=None,
        updated_at=None,
        terminated_at=None,
    )
