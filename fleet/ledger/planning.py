"""Entering an inventory into the ledger, and saying how it differs from what is recorded.

The rules, per server already in the ledger:
- its server kept, parameters unchanged: done; changed: reported, never redone here (a resize
  or a replace is a change of its own, ``changing``);
- its server ended (terminated by this rollout, or gone out of band): planned anew, a new life
  (the old instance stays in ``instances``);
- its server being taken down (an unfinished teardown or prune): left to finish first;
- a create may be out (in flight, or failed ambiguous): left as it is even if the inventory row
  changed. The engine settles it with the region and VPC it was sent to, and only then, if the
  server is surely absent, accepts the edited row;
- failed permanently: sent again when its row changed, or when the run says ``retry_failed``;
  refused for the account's limits (not the row's fault: ``ACCOUNT_LIMIT_CODES``), on every run,
  since a raised quota clears them;
- planned or failed unprocessed: the new parameters replace the old.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from fleet.errors import ACCOUNT_LIMIT_CODES, ErrorKind, RolloutError
from fleet.planned import PlannedServer
from fleet.states import State

from .model import PlanDelta
from .names import claim_names
from .schema import servers

__all__ = ["compare", "plan"]

_UNPROCESSED = (ErrorKind.RETRYABLE.value, ErrorKind.THROTTLED.value)


@dataclass
class _Sorted:
    new: list[PlannedServer] = field(default_factory=list)
    changed: list[PlannedServer] = field(default_factory=list)  # created; reported, not redone
    replanned: list[PlannedServer] = field(default_factory=list)  # parameters replaced
    retried: list[PlannedServer] = field(default_factory=list)  # failed before, planned again
    renewed: list[PlannedServer] = field(default_factory=list)  # torn down, planned again
    held: list[PlannedServer] = field(default_factory=list)  # changed, but a create may be out
    moved: list[PlannedServer] = field(default_factory=list)  # same call, new file/line/location

    def delta(self, removed: tuple[str, ...]) -> PlanDelta:
        def names(specs: list[PlannedServer]) -> tuple[str, ...]:
            return tuple(s.name for s in specs)

        return PlanDelta(
            new=names(self.new),
            changed=names(self.changed),
            replanned=names(self.replanned),
            removed=removed,
            held=names(self.held),
            retried=names(self.retried),
            renewed=names(self.renewed),
        )


def _bucket(row: Any, same: bool, moved: bool, retry_failed: bool) -> str | None:
    """Return which list of _Sorted a known server goes to (None: nothing to do)."""
    state = State(row.state)
    if state.ended:
        return "renewed"
    if state.kept:
        return "changed" if not same else "moved" if moved else None
    if state.live:
        return None  # being taken down: the intent is finished first
    if _unsettled(row):
        return None if same else "held"
    if row.state == State.FAILED and row.error_kind not in _UNPROCESSED:
        again = not same or retry_failed or row.error_code in ACCOUNT_LIMIT_CODES
        return "retried" if again else None
    return "replanned" if not same else "moved" if moved else None


def _sort(row: Any, spec: PlannedServer, retry_failed: bool, out: _Sorted) -> None:
    moved = (row.file, row.line, row.region, row.vpc_no) != _where(spec)
    bucket = _bucket(row, row.params_hash == spec.params_hash, moved, retry_failed)
    if bucket is not None:
        getattr(out, bucket).append(spec)


def _unsettled(row: Any) -> bool:
    """Whether a create of this row may be out (it must be settled before any change)."""
    return bool(
        row.state == State.IN_FLIGHT
        or (row.state == State.FAILED and row.error_kind == ErrorKind.AMBIGUOUS)
    )


def _where(spec: PlannedServer) -> tuple[str, int, str, str]:
    return spec.file, spec.line, spec.region, spec.vpc_no


def _sorted(
    conn: sa.Connection, rollout: str, specs: Sequence[PlannedServer], retry_failed: bool
) -> tuple[_Sorted, tuple[str, ...]]:
    rows = {
        row.name: row
        for row in conn.execute(
            sa.select(
                servers.c.name,
                servers.c.params_hash,
                servers.c.state,
                servers.c.error_kind,
                servers.c.error_code,
                servers.c.file,
                servers.c.line,
                servers.c.region,
                servers.c.vpc_no,
            ).where(servers.c.rollout == rollout)
        )
    }
    out = _Sorted()
    for spec in specs:
        row = rows.get(spec.name)
        if row is None:
            out.new.append(spec)
        else:
            _sort(row, spec, retry_failed, out)
    names = {spec.name for spec in specs}
    return out, tuple(sorted(n for n in rows if n not in names))


def _claimed(rollout: str, taken: Sequence[tuple[str, str]]) -> RolloutError:
    holders = sorted({holder for _, holder in taken})
    shown = ", ".join(f"{name} (claimed by rollout {holder!r})" for name, holder in taken[:10])
    more = f" and {len(taken) - 10} more" if len(taken) > 10 else ""
    return RolloutError(
        f"{len(taken)} server name(s) of rollout {rollout!r} are claimed by rollout(s) "
        f"{', '.join(map(repr, holders))} of this ledger: {shown}{more}. Two rollouts never "
        "send one name; rename them in the inventory, or tear the other rollout down first. "
        "Nothing was sent."
    )


def compare(
    conn: sa.Connection, rollout: str, specs: Sequence[PlannedServer], *, retry_failed: bool = False
) -> PlanDelta:
    """Say how an inventory differs from the ledger's record of the rollout; write nothing."""
    out, removed = _sorted(conn, rollout, specs, retry_failed)
    return out.delta(removed)


_FRESH: dict[str, Any] = {
    "state": State.PLANNED.value,
    "error_kind": None,
    "error_code": None,
    "error_message": None,
    "http_status": None,
}
# A server planned anew after its teardown starts a new life: nothing of the old one's creation
# stays on its row (the old instance stays in the instances table, terminated).
_RENEWED: dict[str, Any] = {
    **_FRESH,
    "instance_no": None,
    "request_id": None,
    "attempts": 0,
    "ambiguous_sends": 0,
    "adopted": 0,
    "server_status": None,
    "run_seconds": None,
    "response": None,
    "sent_params": None,
    "sent_hash": None,
    "duplicates": 0,
    "first_sent_at": None,
    "sent_at": None,
    "created_at": None,
    "terminated_at": None,
}


def _located(spec: PlannedServer, now: str) -> dict[str, Any]:
    return {
        "b_name": spec.name,
        "file": spec.file,
        "line": spec.line,
        "region": spec.region,
        "vpc_no": spec.vpc_no,
        "params_hash": spec.params_hash,
        "updated_at": now,
    }


def _update(conn: sa.Connection, rollout: str, extra: dict[str, Any], rows: list[Any]) -> None:
    if not rows:
        return
    statement = (
        servers.update()
        .where(servers.c.rollout == rollout, servers.c.name == sa.bindparam("b_name"))
        .values(
            file=sa.bindparam("file"),
            line=sa.bindparam("line"),
            region=sa.bindparam("region"),
            vpc_no=sa.bindparam("vpc_no"),
            params_hash=sa.bindparam("params_hash"),
            updated_at=sa.bindparam("updated_at"),
            **extra,
        )
    )
    conn.execute(statement, rows)


def plan(
    conn: sa.Connection,
    now: str,
    rollout: str,
    specs: Sequence[PlannedServer],
    *,
    retry_failed: bool = False,
) -> PlanDelta:
    """Enter the rollout's servers (new ones as planned) and apply the rules above.

    Raises:
        RolloutError: another rollout of this ledger holds some of the names; nothing is planned.

    """
    taken = claim_names(conn, now, rollout, [(s.region, s.name) for s in specs])
    if taken:
        raise _claimed(rollout, taken)
    out, removed = _sorted(conn, rollout, specs, retry_failed)
    if out.new:
        conn.execute(
            servers.insert(),
            [
                {
                    "rollout": rollout,
                    "name": s.name,
                    "file": s.file,
                    "line": s.line,
                    "region": s.region,
                    "vpc_no": s.vpc_no,
                    "params_hash": s.params_hash,
                    "state": State.PLANNED.value,
                    "planned_at": now,
                    "updated_at": now,
                }
                for s in out.new
            ],
        )
    _update(conn, rollout, {}, [_located(s, now) for s in out.replanned + out.moved])
    _update(conn, rollout, _FRESH, [_located(s, now) for s in out.retried])
    _update(conn, rollout, {**_RENEWED, "planned_at": now}, [_located(s, now) for s in out.renewed])
    return out.delta(removed)
