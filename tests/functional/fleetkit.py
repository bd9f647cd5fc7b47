"""Helpers for functional tests: servers to create, and a client wired to a simulator."""

from __future__ import annotations

from fleet.client import NcpClient, RetryPolicy
from fleet.config import Credentials
from fleet.inventory import ServerSpec
from fleet.ledger import Ledger
from fleet.provisioner import Provisioner
from fleet.ratelimit import AdaptiveRateLimiter
from fleet.simulator import SimulatorConfig

ACCESS = "sim-access"
SECRET = "sim-secret-0123456789"


def sim_config(**overrides: object) -> SimulatorConfig:
    """A simulator with the test keys and fast lifecycles."""
    base: dict[str, object] = {
        "access_key": ACCESS,
        "secret_key": SECRET,
        "create_seconds": 0.2,
        "setup_seconds": 0.2,
        "stop_seconds": 0.2,
        "terminate_seconds": 0.2,
        "seed": 11,
    }
    base.update(overrides)
    return SimulatorConfig(**base)  # type: ignore[arg-type]


def specs(n: int, prefix: str = "web", vpc: str = "75001", *, start: int = 1) -> list[ServerSpec]:
    """Return n valid servers named prefix-001..., as an inventory would expand them."""
    out = []
    for i in range(start, start + n):
        name = f"{prefix}-{i:03d}"
        out.append(
            ServerSpec(
                name,
                "inventories/test.csv",
                i + 1,
                (
                    ("serverImageNo", "25495367"),
                    ("serverSpecCode", "s2-g3"),
                    ("vpcNo", vpc),
                    ("subnetNo", "75101"),
                    ("serverCreateCount", "1"),
                    ("serverName", name),
                    ("networkInterfaceList.1.networkInterfaceOrder", "0"),
                ),
            )
        )
    return out


def client_for(
    url: str,
    *,
    rate: float = 500,
    burst: int = 10,
    concurrency: int = 16,
    timeout: float = 5.0,
    retry: RetryPolicy | None = None,
) -> NcpClient:
    """A client on the simulator with quick retries (tests must not idle in back-off)."""
    return NcpClient(
        Credentials(ACCESS, SECRET, "test"),
        url,
        limiter=AdaptiveRateLimiter(rate, burst, max_in_flight=concurrency),
        timeout=timeout,
        retry=retry or RetryPolicy(max_attempts=8, base=0.01, cap=0.1, deadline=60),
    )


def servers_by_name(state: dict[str, object]) -> dict[str, list[str]]:
    """The simulator's servers, name -> instance numbers."""
    out: dict[str, list[str]] = {}
    for s in state["servers"]:  # type: ignore[attr-defined]
        out.setdefault(s["serverName"], []).append(s["serverInstanceNo"])
    return out


async def roll_out(
    client: NcpClient, book: Ledger, rollout: str, plan: list[ServerSpec]
) -> Provisioner:
    """Plan and create a rollout's servers (no look-up delay); return the engine used."""
    engine = Provisioner(client, book, rollout, settle_seconds=0)
    await engine.provision((await engine.preflight(plan)).to_create)
    return engine
