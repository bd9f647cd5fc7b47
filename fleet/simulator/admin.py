"""The simulator's admin endpoints: loopback only, never authenticated, throttled or logged.

| endpoint | does |
|---|---|
| ``GET /_admin/state`` | counters, config (no secret), servers (``visible`` flag), rules left |
| ``POST /_admin/config`` | change settings: a JSON object of ``ADMIN_FIELDS`` |
| ``POST /_admin/reset`` | forget servers, counters, calls and rules; refill; reseed |
| ``GET /_admin/faults`` | the on-demand fault rules left to play |
| ``POST /_admin/faults`` | add rules: a JSON list of them (see ``faults``) |
| ``DELETE /_admin/faults`` | drop every rule left |
| ``GET /_admin/calls[?action=A]`` | the last ``call_log_size`` API calls (see ``calls``) |
| ``POST /_admin/servers/<no>`` | change one server out of band: a JSON object (below) |

A server changed out of band, as the console, another tool or NCP itself would change it:
``{"action": "stop"}`` (stopped now), ``{"action": "terminate"}`` (gone now), ``{"action":
"hold", "status": "CREAT", "operation": "SETUP"}`` (held in that status until changed again: a
stuck server, which refuses stops and terminations while an operation is shown), ``{"action":
"show"}`` (its listing lag ends now). It answers the server's admin record.

``GET /_admin/calls`` answers ``{"calls": [...], "total": N}``, N the calls received since the
reset (the ones the bounded log dropped included).

Errors answer ``{"error": "..."}``: 400 for a bad setting or rule, 403 for a client not on
loopback, 404 for an unknown endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from fleet.config import is_loopback
from fleet.simulator.asgi import Receive, Scope, Send, encode, read_body, send_json
from fleet.simulator.calls import CallLog
from fleet.simulator.config import SimulatorConfig
from fleet.simulator.faults import FaultRule, Faults
from fleet.simulator.gateway import MAX_BODY_BYTES

__all__ = ["Administered", "serve_admin"]

_SERVERS = "/_admin/servers/"


class Administered(Protocol):
    """What the admin endpoints act on: the simulator app (it imports this module, not back)."""

    faults: Faults
    calls: CallLog

    def snapshot(self) -> dict[str, Any]:
        """Return counters, config (no secret), servers and the fault rules left."""

    def reconfigure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply settings changes; return the new config."""

    def reset(self) -> None:
        """Forget servers, counters, calls and rules; refill; reseed."""

    def add_faults(self, data: Any) -> list[FaultRule]:
        """Add on-demand fault rules."""

    def out_of_band(self, no: str, change: Mapping[str, Any]) -> dict[str, Any]:
        """Change one server as someone else would (stop, terminate, hold, show)."""


async def serve_admin(app: Administered, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one admin request."""
    body = await read_body(receive, MAX_BODY_BYTES)
    client = scope.get("client")
    if client is not None and not is_loopback(client[0]):
        status, answer = 403, {"error": "admin endpoints answer loopback clients only"}
    else:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            status, answer = _route(app, scope["method"], scope["path"], body, query)
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            status, answer = 400, {"error": str(error)}
    await send_json(send, status, encode(answer))


def _object(body: bytes | None) -> dict[str, Any]:
    """Return a request body that must be one JSON object (ValueError: answered 400)."""
    value = json.loads(body or b"{}")
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _route(
    app: Administered, method: str, path: str, body: bytes | None, query: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    route = (method, path)
    if route == ("GET", "/_admin/state"):
        return 200, app.snapshot()
    if route == ("POST", "/_admin/reset"):
        app.reset()
        return 200, {"reset": True}
    if route == ("POST", "/_admin/config"):
        return 200, {"config": app.reconfigure(_object(body)).public()}
    if path == "/_admin/faults" and method in ("GET", "POST", "DELETE"):
        if method == "POST":
            app.add_faults(json.loads(body or b"[]"))
        elif method == "DELETE":
            app.faults.rules.clear()
        return 200, {"faults": [rule.public() for rule in app.faults.rules]}
    if method == "POST" and path.startswith(_SERVERS):
        return 200, {"server": app.out_of_band(path[len(_SERVERS) :], _object(body))}
    if route == ("GET", "/_admin/calls"):
        return 200, {"calls": app.calls.entries(query.get("action")), "total": app.calls.total}
    return 404, {"error": f"no admin endpoint {method} {path}"}
