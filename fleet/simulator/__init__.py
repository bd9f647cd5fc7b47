"""A local simulator of NCP's VPC Server API, served over real HTTP on loopback for rehearsals."""

from __future__ import annotations

from fleet.simulator.app import (
    ADMIN_FIELDS,
    FAULT_KINDS,
    ApiError,
    CreateRequest,
    SimulatorApp,
    SimulatorConfig,
    SimulatorState,
    TokenBucket,
)
from fleet.simulator.server import (
    RunningSimulator,
    SimulatorProcess,
    main,
    running_simulator,
    serve,
)

__all__ = [
    "ADMIN_FIELDS",
    "FAULT_KINDS",
    "ApiError",
    "CreateRequest",
    "RunningSimulator",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorProcess",
    "SimulatorState",
    "TokenBucket",
    "main",
    "running_simulator",
    "serve",
]
