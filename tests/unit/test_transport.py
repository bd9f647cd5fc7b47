"""The client's default transport: httpx's own, with a cheaper idle-connection check."""

from __future__ import annotations

import socket

import httpcore
import httpx
import pytest

from fleet.transport import _Backend, _readable, http_transport


def test_the_pool_gets_the_cheaper_backend() -> None:
    """If httpx's pool is what we expect, it uses our backend; an upgrade that changes it shows."""
    transport = http_transport(httpx.Limits(max_connections=4), trust_env=False)
    pool = transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert isinstance(pool._network_backend, _Backend)


def test_readable_says_what_httpcore_would() -> None:
    """An idle socket is not readable; one whose peer wrote or closed it is; a closed one is."""
    left, right = socket.socketpair()
    try:
        assert _readable(left) is False
        right.sendall(b"x")
        assert _readable(left) is True
        left.recv(1)
        right.close()
        assert _readable(left) is True  # the peer closed it: the next read returns b""
    finally:
        left.close()
    assert _readable(left) is True  # closed here: treated as gone
    assert _readable(None) is True


@pytest.mark.anyio
async def test_requests_go_through_and_connections_are_reused() -> None:
    """A real loopback server: two requests in a row share one kept-alive connection."""
    from fleet.simulator import running_simulator

    with running_simulator() as sim:
        transport = http_transport(httpx.Limits(max_connections=2), trust_env=False)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(2):
                response = await client.get(f"{sim.url}/_admin/state")
                assert response.status_code == 200
            pool = transport._pool  # type: ignore[attr-defined]
            assert len(pool.connections) == 1
