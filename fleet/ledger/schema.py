"""The ledger's tables, its schema version, and the migrations from every earlier version.

Version 1 is the SQLite file of the first release: one ``servers`` table, no version stamp.
Version 2 adds regions, the parameters as sent, the instances table (every server the rollout
owns, duplicates included), rollout bindings, leases, the rates gateways allowed, and what
creates made beside their servers (public IPs, disks). Version 3 adds ownership (each rollout's
create-marker id and absence window, the run that sent each server's last create and recorded each
instance, what a replaced instance was created with, the process that holds a lease) and each
server's addresses as seen when it ran (``addresses``: private and public IP). Version 4 renamed
"aside" to ``extras``. Version 5 gives every server one life (``fleet.states.State``): the
``teardown`` columns are folded into ``state`` (servers and instances alike), each instance keeps
when NCP first showed it, when our terminate was accepted and the change under way (its intent),
each send NCP's clock, ``name_claims`` holds which rollout sends a name, and a rollout's row when
it was torn down (retired). A ledger newer than
this code is refused; an older one is migrated in one transaction on first open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

__all__ = [
    "SCHEMA_VERSION",
    "TABLE_NAMES",
    "addresses",
    "extras",
    "instances",
    "leases",
    "meta",
    "metadata",
    "migrate",
    "name_claims",
    "rates",
]

SCHEMA_VERSION = 5

metadata = sa.MetaData()

meta = sa.Table(
    "fleet_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

servers = sa.Table(
    "servers",
    metadata,
    sa.Column("rollout", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("region", sa.String(32), nullable=False, server_default=""),
    sa.Column("vpc_no", sa.String(32), nullable=False),
    sa.Column("params_hash", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("instance_no", sa.String(32)),
    sa.Column("request_id", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ambiguous_sends", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_kind", sa.String(16)),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("http_status", sa.Integer),
    sa.Column("adopted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("server_status", sa.String(16)),
    sa.Column("run_seconds", sa.Float),
    sa.Column("response", sa.Text),
    sa.Column("sent_params", sa.Text),
    sa.Column("sent_hash", sa.String(32)),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("planned_at", sa.String(40)),
    sa.Column("first_sent_at", sa.String(40)),
    sa.Column("sent_at", sa.String(40)),
    sa.Column("created_at", sa.String(40)),
    sa.Column("updated_at", sa.String(40)),
    sa.Column("terminated_at", sa.String(40)),
    sa.Column("sent_run", sa.String(16)),  # the run whose marker the last create carried
    sa.Column("sent_ncp", sa.Float),  # NCP's clock (its Date) when the last create left
)
sa.Index("servers_instance", servers.c.instance_no)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("rollout", sa.String(100), primary_key=True),
    sa.Column("instance_no", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("region", sa.String(32), nullable=False, server_default=""),
    sa.Column("vpc_no", sa.String(32), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("create_date", sa.String(40)),
    sa.Column("server_status", sa.String(16)),
    sa.Column("state", sa.String(16), nullable=False, server_default="created"),
    sa.Column("gone_reads", sa.Integer, nullable=False, server_default="0"),
    sa.Column("raw", sa.Text),
    sa.Column("found_at", sa.String(40)),
    sa.Column("terminated_at", sa.String(40)),
    sa.Column("run", sa.String(16)),  # the run that created it (its marker's), if fleet did
    sa.Column("params", sa.Text),  # what it was created with, kept once it is being replaced
    sa.Column("seen_at", sa.String(40)),  # when a read first showed it (only then can it be gone)
    sa.Column("terminate_at", sa.String(40)),  # when NCP accepted our terminate
    sa.Column("intent", sa.Text),  # the change under way: JSON (why, run, target parameters)
)
sa.Index("instances_name", instances.c.rollout, instances.c.name)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("rollout", sa.String(100), primary_key=True),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("rehearsal", sa.Integer, nullable=False, server_default="0"),
    sa.Column("bound_at", sa.String(40)),
    sa.Column("updated_at", sa.String(40)),
    sa.Column("marker", sa.String(16)),  # the rollout id its create markers carry
    sa.Column("window", sa.Float),  # seconds after a send before 'not listed' means absent
    sa.Column("retired_at", sa.String(40)),  # torn down: no run creates it again unless revived
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("rollout", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("process", sa.Text),  # host, boot, PID namespace, PID and start of the holder
)

# The call rate an account's gateway allowed, as the last run found it: where the next starts.
rates = sa.Table(
    "rates",
    metadata,
    sa.Column("endpoint", sa.Text, primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("found_at", sa.String(40), nullable=False),
)

# What a rollout's creates made beside its servers (public IPs, extra disks), found before the
# teardown stops them: billed until returned, and after its server is gone NCP no longer ties one
# to the other, so a teardown interrupted there finds them here. Version 4 renamed it from "aside",
# a word the engine used for something else.
extras = sa.Table(
    "extras",
    metadata,
    sa.Column("rollout", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("number", sa.String(32), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False, server_default=""),
    sa.Column("server", sa.String(64), nullable=False),
    sa.Column("server_no", sa.String(32), nullable=False),
    sa.Column("label", sa.Text, nullable=False, server_default=""),
    sa.Column("found_at", sa.String(40)),
    sa.Column("returned_at", sa.String(40)),
)

# Issue 19 (version 3): each server's addresses, as NCP showed them when it was seen RUN (the
# private IP of its default network interface, its public IP if any). A table of its own, keyed
# like instances: an address belongs to an instance number.
addresses = sa.Table(
    "addresses",
    metadata,
    sa.Column("rollout", sa.String(100), primary_key=True),
    sa.Column("instance_no", sa.String(32), primary_key=True),
    sa.Column("private_ip", sa.String(64)),
    sa.Column("public_ip", sa.String(64)),
    sa.Column("seen_at", sa.String(40)),
)

# Version 5: which rollout of this ledger sends a name, where (endpoint, account, region). A
# primary key, so two rollouts planning the same name at once cannot both hold it, on SQLite and
# on PostgreSQL alike; released when the rollout's server under it is gone for good.
name_claims = sa.Table(
    "name_claims",
    metadata,
    sa.Column("endpoint", sa.Text, primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("rollout", sa.String(100), nullable=False),
    sa.Column("claimed_at", sa.String(40)),
)

TABLE_NAMES = frozenset(metadata.tables)

# Columns version 2 added to version 1's servers table, as SQLite DDL (v1 existed only there).
_V2_SERVER_COLUMNS = (
    "region TEXT NOT NULL DEFAULT ''",
    "ambiguous_sends INTEGER NOT NULL DEFAULT 0",
    "sent_params TEXT",
    "sent_hash TEXT",
    "duplicates INTEGER NOT NULL DEFAULT 0",
    "first_sent_at TEXT",
)


def _v1_to_v2(conn: sa.Connection) -> None:
    for column in _V2_SERVER_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE servers ADD COLUMN {column}")
    # v1 wrote sent_at at every send; the first send's time is the best we know of it.
    conn.execute(servers.update().values(first_sent_at=servers.c.sent_at))
    for table in (instances, rollouts, leases, rates, extras, meta):
        table.create(conn, checkfirst=True)
    for index in instances.indexes:
        index.create(conn, checkfirst=True)
    old = sa.table(
        "servers", *(sa.column(n) for n in ("rollout", "instance_no", "name", "vpc_no",
                                             "adopted", "server_status", "teardown", "response",
                                             "created_at", "terminated_at"))
    )  # fmt: skip
    rows = conn.execute(sa.select(old).where(old.c.instance_no.is_not(None))).all()
    if rows:
        conn.execute(
            instances.insert(),
            [
                {
                    "rollout": r.rollout,
                    "instance_no": r.instance_no,
                    "name": r.name,
                    "region": "",
                    "vpc_no": r.vpc_no,
                    "role": "primary",
                    "origin": "adopted" if r.adopted else "answer",
                    "server_status": r.server_status,
                    "state": _life("created", r.teardown, r.server_status, None, False),
                    "raw": r.response,
                    "found_at": r.created_at,
                    "terminated_at": r.terminated_at,
                }
                for r in rows
            ],
        )


# Columns version 3 added, by table: ownership (create markers, runs) and the lease's process.
_V3_COLUMNS = (
    (servers, "sent_run"),
    (instances, "run"),
    (instances, "params"),
    (rollouts, "marker"),
    (rollouts, "window"),
    (leases, "process"),
)


def _v2_to_v3(conn: sa.Connection) -> None:
    # A ledger migrated from version 1 in the same pass made these tables whole already.
    inspector = sa.inspect(conn)
    for table, name in _V3_COLUMNS:
        if any(c["name"] == name for c in inspector.get_columns(table.name)):
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {kind}')
    # The addresses table (nothing to fill: addresses are learnt when servers run).
    addresses.create(conn, checkfirst=True)


def _v3_to_v4(conn: sa.Connection) -> None:
    # One name per idea: the public IPs and disks creates made are "extras" everywhere.
    if sa.inspect(conn).has_table("aside"):
        conn.exec_driver_sql("ALTER TABLE aside RENAME TO extras")
    else:  # a ledger migrated from version 1 in the same pass made it under its new name
        extras.create(conn, checkfirst=True)


# What version 5 adds, by table.
_V5_COLUMNS = (
    (servers, "sent_ncp"),
    (instances, "state"),
    (instances, "seen_at"),
    (instances, "terminate_at"),
    (instances, "intent"),
    (rollouts, "retired_at"),
)
# The version 4 teardown columns' states, as version 5's lives ("failed": gave up part-way,
# so the teardown is still to finish; "protected": left, and kept).
_TEARDOWN_LIFE = {
    "stopping": "terminating",
    "terminating": "terminating",
    "failed": "terminating",
    "terminated": "terminated",
}


def _life(
    state: str, teardown: str | None, status: str | None, message: str | None, replaced: bool
) -> str:
    """Return a version 4 row's (or instance's) one state in version 5."""
    if state != "created":
        return state
    if teardown == "terminated" and message and message.startswith("gone:"):
        return "gone"  # terminated out of band, as a refresh found it
    if teardown in _TEARDOWN_LIFE:
        return _TEARDOWN_LIFE[teardown]
    if replaced:
        return "deposed"
    return {"RUN": "running", "NSTOP": "stopped"}.get(status or "", "created")


def _add_columns(conn: sa.Connection, wanted: Sequence[tuple[sa.Table, str]]) -> None:
    """Add the columns a table lacks (a ledger migrated from version 1 has them already)."""
    inspector = sa.inspect(conn)
    for table, name in wanted:
        if any(c["name"] == name for c in inspector.get_columns(table.name)):
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        default = f" NOT NULL DEFAULT '{column.server_default.arg}'" if name == "state" else ""  # type: ignore[union-attr]
        conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {kind}{default}')


def _v4_to_v5(conn: sa.Connection) -> None:
    """One life per server: fold the teardown columns into the state, then drop them."""
    _add_columns(conn, _V5_COLUMNS)
    name_claims.create(conn, checkfirst=True)
    inspector = sa.inspect(conn)
    if any(c["name"] == "teardown" for c in inspector.get_columns("servers")):
        old = sa.table("servers", *(sa.column(n) for n in (
            "rollout", "name", "state", "teardown", "server_status", "error_message")))  # fmt: skip
        for r in conn.execute(sa.select(old)).all():
            life = _life(r.state, r.teardown, r.server_status, r.error_message, False)
            if life != r.state:
                conn.execute(
                    servers.update()
                    .where(servers.c.rollout == r.rollout, servers.c.name == r.name)
                    .values(state=life)
                )
        conn.exec_driver_sql("ALTER TABLE servers DROP COLUMN teardown")
    if any(c["name"] == "teardown" for c in inspector.get_columns("instances")):
        _v5_instances(conn)
        conn.exec_driver_sql("ALTER TABLE instances DROP COLUMN teardown")


def _v5_instances(conn: sa.Connection) -> None:
    """Give every version 4 instance its state (a primary's is its row's), and when it was seen."""
    old = sa.table("instances", *(sa.column(n) for n in (
        "rollout", "instance_no", "name", "role", "origin", "teardown", "server_status",
        "found_at")))  # fmt: skip
    rows = {
        (r.rollout, r.name): (r.state, r.instance_no)
        for r in conn.execute(sa.select(servers.c.rollout, servers.c.name, servers.c.state,
                                        servers.c.instance_no))
    }  # fmt: skip
    for i in conn.execute(sa.select(old)).all():
        row_state, primary = rows.get((i.rollout, i.name), ("created", None))
        if i.role == "primary" and primary == i.instance_no and i.teardown is None:
            life = row_state
        else:
            life = _life("created", i.teardown, i.server_status, None, i.role == "replaced")
        seen = i.origin != "answer" or i.server_status not in (None, "INIT")
        conn.execute(
            instances.update()
            .where(instances.c.rollout == i.rollout, instances.c.instance_no == i.instance_no)
            .values(state=life, seen_at=i.found_at if seen else None)
        )


# version -> the step that brings a ledger of that version to the next one.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
}


def migrate(conn: sa.Connection, version: int) -> None:
    """Bring a ledger from ``version`` to SCHEMA_VERSION, inside the caller's transaction."""
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](conn)
        version += 1
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
