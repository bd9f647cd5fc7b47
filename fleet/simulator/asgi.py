"""ASGI plumbing the simulator's application needs: lifespan, bodies, JSON answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

__all__ = [
    "JSON_HEADERS",
    "Receive",
    "Scope",
    "Send",
    "encode",
    "lifespan",
    "read_body",
    "send_json",
    "until_disconnect",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS: Final = ((b"content-type", b"application/json;charset=UTF-8"),)


def encode(body: Any) -> bytes:
    """Return compact UTF-8 JSON (Korean text as is, as NCP sends it)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol: nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """Return the request body, or None when it is over ``limit`` bytes or the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Send a whole JSON answer."""
    length = (b"content-length", str(len(body)).encode())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, length, *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def until_disconnect(receive: Receive) -> None:
    """Return when the client hangs up."""
    while (await receive())["type"] != "http.disconnect":
        pass
