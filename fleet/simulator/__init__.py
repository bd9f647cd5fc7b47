"""A local simulator of NCP's VPC Server API, served over real HTTP on loopback for rehearsals.

Rooms: ``config`` (settings), ``gateway`` (throttle, signature), ``validation`` (the create
call's rules), ``state`` (servers and the Server API), ``catalog`` and ``reads`` (regions and
zones), ``faults`` (on-demand and random faults), ``calls`` (the request log), ``app`` (the ASGI
application: routing, faults, admin) and ``server`` (uvicorn, the process, the command line).
"""

from __future__ import annotations

from fleet.simulator.app import SimulatorApp
from fleet.simulator.catalog import Catalog, Region, Zone
from fleet.simulator.config import ADMIN_FIELDS, FAULT_KINDS, SimulatorConfig
from fleet.simulator.errors import ApiError
from fleet.simulator.gateway import TokenBucket
from fleet.simulator.server import (
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
    "ApiError",
    "Catalog",
    "CreateRequest",
    "Region",
    "RunningSimulator",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorProcess",
    "SimulatorState",
    "TokenBucket",
    "Zone",
    "main",
    "running_simulator",
    "serve",
]
