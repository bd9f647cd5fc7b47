"""A local simulator of NCP's VPC Server API, served over real HTTP on loopback for rehearsals.

Rooms: ``config`` (settings), ``errors`` (every code), ``gateway`` (throttle, signature),
``validation`` and ``references`` (a create's rules, then what it names), ``servers`` and
``state`` (servers and the Server API), ``catalog``, ``catalog_file`` and ``catalog_default``
(regions, networks, images ...: the JSON format and the built-in one), ``records`` and
``read_actions`` (the read APIs), ``resources`` and ``extras`` (public IPs, extra disks, NICs
taken), ``faults`` (on-demand and random faults), ``calls`` (the request log), ``admin``,
``asgi``, ``app`` (the ASGI application: routing and faults), ``profile`` (a probe's figures as
settings) and ``server`` (uvicorn, the process, the command line).
"""

from __future__ import annotations

from fleet.simulator.app import SimulatorApp
from fleet.simulator.catalog import Catalog, RegionEntry, ZoneEntry
from fleet.simulator.catalog_file import catalog_from_json, default_catalog, load_catalog
from fleet.simulator.config import ADMIN_FIELDS, FAULT_KINDS, SimulatorConfig
from fleet.simulator.errors import ApiError
from fleet.simulator.gateway import TokenBucket
from fleet.simulator.server import (
    REHEARSAL_LEDGER,
    RunningSimulator,
    SimulatorProcess,
    main,
    running_simulator,
    serve,
)
from fleet.simulator.state import SimulatorState
from fleet.simulator.validation import CreateRequest

__all__ = [
    "ADMIN_FIELDS",
    "FAULT_KINDS",
    "REHEARSAL_LEDGER",
    "ApiError",
    "Catalog",
    "CreateRequest",
    "RegionEntry",
    "RunningSimulator",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorProcess",
    "SimulatorState",
    "TokenBucket",
    "ZoneEntry",
    "catalog_from_json",
    "default_catalog",
    "load_catalog",
    "main",
    "running_simulator",
    "serve",
]
