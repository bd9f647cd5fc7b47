"""The servers of one simulated account and the Server API actions on them (pure, no I/O).

Every server's lifecycle is computed lazily from an injected monotonic clock:
INIT -> CREAT (op SETUP) -> RUN; RUN (op SHTDN) -> NSTOP; NSTOP (op START) -> RUN;
NSTOP (op CHNG) -> NSTOP with a new spec (``resizing``); NSTOP (op TERMT) -> gone. Every server
belongs to one region (and a zone of it), and every action acts on one region: the call's
``regionCode``, else the first region.

A server exists from its commit (at once, or ``late_commit_seconds`` after the call for a
``late_commit`` fault) but reads see it only ``list_lag`` (+ up to ``list_lag_jitter``) seconds
later: until then getServerInstanceList, getServerInstanceDetail and the control actions answer
as if it did not exist, while the account limit already counts it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

from fleet.simulator.catalog import Catalog
from fleet.simulator.catalog_file import default_catalog
from fleet.simulator.config import SimulatorConfig
from fleet.simulator.errors import (
    DUPLICATE_NAME,
    INVALID_PARAMETER,
    MISSING_PARAMETER,
    NOT_FOUND,
    PRODUCT_LIMIT,
    SETUP_IN_PROGRESS,
    TERMINATION_PROTECTED,
    WRONG_STATE,
    ApiError,
    Problems,
    raise_first,
)
from fleet.simulator.gateway import Clock
from fleet.simulator.resizing import check_spec_params, resized
from fleet.simulator.resources import Resources
from fleet.simulator.servers import (
    Row,
    Server,
    ServerBook,
    StatusAt,
    admin_record,
    describe,
    visible_row,
)
from fleet.simulator.validation import CreateRequest
from fleet.simulator.wire import Action, index_list, is_digits, page, paging, response
from fleet.states import Operation, ServerStatus

__all__ = ["SimulatorState"]


def _created_name(request: CreateRequest, no: int, i: int) -> str:
    if request.name is None:
        return f"s{no:x}"
    if request.count > 1:
        return f"{request.name}-{request.start_no + i:03d}"
    return request.name


def _name_matches(name: str, wanted: str, mode: str) -> bool:
    """Return whether serverName=``wanted`` lists ``name``: exactly, or as a substring."""
    return name == wanted if mode == "exact" else wanted in name


def _refuse_duplicates(book: ServerBook, request: CreateRequest) -> None:
    """Refuse a create naming a server the region holds (listed yet or not: the backend's)."""
    if request.name is None:
        return  # NCP names them
    names = {_created_name(request, 0, i) for i in range(request.count)}
    taken = sorted(s.name for s in book.in_region(request.region) if s.name in names)
    if taken:
        raise ApiError.server(DUPLICATE_NAME, f"server name already in use: {taken[0]}")


class SimulatorState:
    """The servers of one simulated account and the Server API actions on them (pure, no I/O)."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        catalog: Catalog | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.catalog = catalog if catalog is not None else default_catalog()
        self.clock = clock
        self.wall_clock = wall_clock
        self.book = ServerBook()
        self.resources = Resources(config, self.book, clock)
        self._lag = random.Random(config.seed)
        self.created = 0
        self.actions: dict[str, Action] = {
            "getServerInstanceList": self.get_server_instance_list,
            "getServerInstanceDetail": self.get_server_instance_detail,
            "stopServerInstances": self.stop_server_instances,
            "startServerInstances": self.start_server_instances,
            "terminateServerInstances": self.terminate_server_instances,
            "changeServerInstanceSpec": self.change_server_instance_spec,
            "setProtectServerTermination": self.set_protect_server_termination,
        }

    def clear(self) -> None:
        """Forget every server (instance numbers keep increasing, so none is ever reused)."""
        self.book.clear()
        self.resources.clear()
        self.created = 0
        self.reseed()

    def reseed(self) -> None:
        """Restart the listing-lag RNG from the configured seed."""
        self._lag = random.Random(self.config.seed)

    # -- reading -------------------------------------------------------------------------------

    def _find(self, no: str, region: str, now: float) -> Row:
        row = visible_row(self.book.get(int(no)) if is_digits(no) else None, region, now)
        if row is None:
            raise ApiError.server(NOT_FOUND, f"server instance not found: {no}")
        return row

    def servers(self) -> list[dict[str, Any]]:
        """Return a short record of every server, listed or not yet, for the admin state."""
        now = self.clock()
        self.book.prune(now)
        return [admin_record(server, now) for server in self.book]

    def get_server_instance_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getServerInstanceList: filters, then one page ordered by instance number."""
        problems: Problems = []
        nos = index_list(params, "serverInstanceNoList", problems)
        page_no, size = paging(params, self.config.page_size, self.config.max_page_size, problems)
        raise_first(problems)
        region = self.catalog.region_of(params).code
        now = self.clock()
        self.book.prune(now)
        candidates: Iterable[Server | None]
        if nos:  # look the numbers up rather than scan every server
            candidates = (self.book.get(n) for n in sorted({int(no) for no in nos}))
        else:
            candidates = self.book.in_region(region)
        vpc = params.get("vpcNo")
        name = params.get("serverName")
        status_code = params.get("serverInstanceStatusCode")
        matches = [
            row
            for row in (visible_row(server, region, now) for server in candidates)
            if row is not None
            and (not vpc or row[0].vpc_no == vpc)
            and (not name or _name_matches(row[0].name, name, self.config.name_filter))
            and (not status_code or row[1] == status_code)
        ]
        rows = [describe(*row) for row in page(matches, page_no, size)]
        return response("getServerInstanceList", "serverInstanceList", rows, len(matches))

    def get_server_instance_detail(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer getServerInstanceDetail for one serverInstanceNo."""
        no = params.get("serverInstanceNo")
        if not no:
            raise ApiError.server(MISSING_PARAMETER, "serverInstanceNo is required")
        row = self._find(no, self.catalog.region_of(params).code, self.clock())
        return response("getServerInstanceDetail", "serverInstanceList", [describe(*row)])

    # -- creating ------------------------------------------------------------------------------

    def create(
        self, request: CreateRequest, *, commit_delay: float = 0.0, boots: bool = True
    ) -> dict[str, Any]:
        """Create the servers of a validated call and answer like NCP (status INIT).

        With ``commit_delay`` the backend commits them that many seconds from now: the servers
        count against the account limit at once, but exist for reads only from then (plus lag).
        Servers that do not ``boots`` stay CREAT (operation SETUP) for good.
        """
        now = self.clock()
        cfg = self.config
        self.book.prune(now)
        if cfg.max_servers is not None and len(self.book) + request.count > cfg.max_servers:
            raise ApiError.server(
                PRODUCT_LIMIT, f"the account's server limit ({cfg.max_servers}) would be exceeded"
            )
        if cfg.duplicate_names == "refused":
            _refuse_duplicates(self.book, request)
        commit = now + commit_delay
        timeline = [
            StatusAt(commit, ServerStatus.INIT, Operation.NULL),
            StatusAt(commit + cfg.create_seconds, ServerStatus.CREAT, Operation.SETUP),
            StatusAt(
                commit + cfg.create_seconds + cfg.setup_seconds, ServerStatus.RUN, Operation.NULL
            ),
        ][: 3 if boots else 2]
        made: list[dict[str, Any]] = []
        for i in range(request.count):
            no = self.book.number()
            server = Server(
                no=no,
                name=_created_name(request, no, i),
                region=request.region,
                zone=request.zone,
                description=request.description,
                vpc_no=request.vpc_no,
                subnet_no=request.subnet_no,
                protect=request.protect,
                committed_at=commit,
                visible_at=commit + self._listing_lag(),
                created_wall=self.wall_clock() + commit_delay,
                timeline=list(timeline),
                request=request.echo,
                machine=request.placement.machine,
            )
            self.book.add(server)
            self.resources.attach(server, request.placement, server.created_wall)
            self.created += 1
            made.append(describe(server, ServerStatus.INIT, Operation.NULL))
        return response("createServerInstances", "serverInstanceList", made)

    def _listing_lag(self) -> float:
        cfg = self.config
        if cfg.list_lag_jitter > 0:
            return cfg.list_lag + self._lag.uniform(0, cfg.list_lag_jitter)
        return cfg.list_lag

    # -- changing ------------------------------------------------------------------------------

    def _targets(self, params: Mapping[str, str]) -> list[Row]:
        problems: Problems = []
        nos = index_list(params, "serverInstanceNoList", problems)
        if not nos and not problems:
            problems.append((MISSING_PARAMETER, "serverInstanceNoList.N is required"))
        raise_first(problems)
        region = self.catalog.region_of(params).code
        now = self.clock()
        self.book.prune(now)
        return [self._find(no, region, now) for no in nos]

    @staticmethod
    def _check(rows: list[Row], wanted: ServerStatus, verb: str, *, protect: bool = False) -> None:
        """Refuse the whole call unless every server may take it (NCP changes none on error)."""
        for server, status, op in rows:
            if op is Operation.SETUP:
                raise ApiError.server(
                    SETUP_IN_PROGRESS, f"server {server.no}: operation SETUP in progress"
                )
            if protect and server.protect:
                raise ApiError.server(
                    TERMINATION_PROTECTED, f"server {server.no}: termination protection is on"
                )
            if status is not wanted or op is not Operation.NULL:
                raise ApiError.server(
                    WRONG_STATE, f"server {server.no}: cannot {verb} in status {status} op {op}"
                )

    def _change(
        self,
        action: str,
        rows: list[Row],
        now_step: tuple[ServerStatus, Operation],
        then: ServerStatus | None,
        seconds: float,
    ) -> dict[str, Any]:
        now = self.clock()
        for server, _, _ in rows:
            server.timeline = [
                StatusAt(now, *now_step),
                StatusAt(now + seconds, then, Operation.NULL),
            ]
            if then is None:
                self.book.ends_at(server.no, now + seconds)
        records = [describe(server, *now_step) for server, _, _ in rows]
        return response(action, "serverInstanceList", records)

    def stop_server_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Stop RUN servers: op SHTDN for stop_seconds, then NSTOP."""
        rows = self._targets(params)
        self._check(rows, ServerStatus.RUN, "stop")
        step = (ServerStatus.RUN, Operation.SHTDN)
        return self._change(
            "stopServerInstances", rows, step, ServerStatus.NSTOP, self.config.stop_seconds
        )

    def start_server_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Start NSTOP servers: op START for start_seconds, then RUN."""
        rows = self._targets(params)
        self._check(rows, ServerStatus.NSTOP, "start")
        step = (ServerStatus.NSTOP, Operation.START)
        return self._change(
            "startServerInstances", rows, step, ServerStatus.RUN, self.config.start_seconds
        )

    def terminate_server_instances(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Terminate NSTOP, unprotected servers: op TERMT for terminate_seconds, then gone."""
        rows = self._targets(params)
        self._check(rows, ServerStatus.NSTOP, "terminate", protect=True)
        step = (ServerStatus.NSTOP, Operation.TERMT)
        return self._change(
            "terminateServerInstances", rows, step, None, self.config.terminate_seconds
        )

    def change_server_instance_spec(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Change a stopped server's spec in place: op CHNG for change_seconds, still NSTOP."""
        no = check_spec_params(params)
        row = self._find(no, self.catalog.region_of(params).code, self.clock())
        self._check([row], ServerStatus.NSTOP, "change the spec")
        machine = resized(row[0].no, row[0].machine, params, self.catalog)
        # The answer shows the server as NCP's does: op CHNG, the spec it had when asked.
        step, seconds = (ServerStatus.NSTOP, Operation.CHNG), self.config.change_seconds
        answer = self._change("changeServerInstanceSpec", [row], step, ServerStatus.NSTOP, seconds)
        row[0].machine = machine
        return answer

    # -- out of band (the admin endpoints: what the console, another tool or NCP itself does) --

    def out_of_band(self, no: str, change: Mapping[str, Any]) -> dict[str, Any]:
        """Change a server as someone other than this API's caller would; return its record.

        ``change["action"]``: ``stop`` (NSTOP now), ``terminate`` (gone now), ``hold`` (in
        ``status``/``operation`` until changed again: a stuck server), or ``show`` (its
        listing lag ends now). A server not listed yet may be changed too.
        """
        now = self.clock()
        self.book.prune(now)
        server = self.book.get(int(no)) if is_digits(no) else None
        if server is None or server.at(now)[0] is None:
            raise ValueError(f"no server {no}")
        action = change.get("action")
        if action == "stop":
            server.timeline = [StatusAt(now, ServerStatus.NSTOP, Operation.NULL)]
        elif action == "terminate":
            server.timeline = [StatusAt(now, None, Operation.NULL)]
            self.book.ends_at(server.no, now)
        elif action == "hold":
            if not change.get("status"):
                raise ValueError("hold needs a status, for example CREAT")
            status = ServerStatus(str(change["status"]))
            operation = Operation(str(change.get("operation", "NULL")))
            server.timeline = [StatusAt(now, status, operation)]
        elif action == "show":
            server.visible_at = min(server.visible_at, now)
        else:
            raise ValueError(f"action {action!r}: use stop, terminate, hold or show")
        record = admin_record(server, now)
        self.book.prune(now)
        return record

    def set_protect_server_termination(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Turn termination protection of one server on or off."""
        no = params.get("serverInstanceNo")
        flag = params.get("isProtectServerTermination")
        problems: Problems = []
        if not no:
            problems.append((MISSING_PARAMETER, "serverInstanceNo is required"))
        if not flag:
            problems.append((MISSING_PARAMETER, "isProtectServerTermination is required"))
        elif flag not in ("true", "false"):
            problems.append((INVALID_PARAMETER, "isProtectServerTermination must be true/false"))
        raise_first(problems)
        region = self.catalog.region_of(params).code
        server, status, op = self._find(no or "", region, self.clock())
        server.protect = flag == "true"
        return response(
            "setProtectServerTermination", "serverInstanceList", [describe(server, status, op)]
        )
