"""NCP's API Gateway in front of the Server API: the token bucket, then the signature check.

The gateway answers before any backend work, with ``{"error": {...}}`` bodies:

| HTTP | errorCode | message | when |
|---|---|---|---|
| 401 | 200 | Authentication Failed | missing/unknown key, bad signature, timestamp off by > 5 min |
| 413 | 430 | Request Entity Too Large | body over 1 MiB |
| 429 | 410 | Throttle Limited | token bucket empty (``Retry-After`` if configured) |

A probe's profile may give the throttle another status and code (``throttle_status``,
``throttle_code``): the answer then carries those, with NCP's message for the code.

The signature is checked from ``x-ncp-apigw-signature-v2`` or, when that is absent,
``x-ncp-apigw-signature-v1``: the same algorithm under two names, and the official SDKs send v1.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Mapping
from typing import Final

from fleet.ncp.signing import sign
from fleet.simulator.config import SimulatorConfig
from fleet.simulator.errors import ApiError
from fleet.simulator.wire import is_digits

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADERS",
    "Clock",
    "Gateway",
    "TokenBucket",
]

Clock = Callable[[], float]

MAX_BODY_BYTES: Final = 1 << 20
TIMESTAMP_WINDOW_MS: Final = 5 * 60 * 1000
# NCP's messages for the gateway's codes a throttled call may carry.
THROTTLE_MESSAGES: Final = {
    "400": "Quota Exceeded",
    "410": "Throttle Limited",
    "420": "Rate Limited",
}
# The header names the gateway reads a signature from, in order of preference.
SIGNATURE_HEADERS: Final = (b"x-ncp-apigw-signature-v2", b"x-ncp-apigw-signature-v1")


class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate`` per second, on an injected clock."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self) -> float:
        """Take one token and return 0, or return the seconds until one will be available."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class Gateway:
    """The gateway's checks, in NCP's order: throttle, then authenticate; counts its refusals."""

    def __init__(self, config: SimulatorConfig, clock: Clock, wall_clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self.throttled = 0
        self.auth_failed = 0
        self._bucket: TokenBucket | None = None
        self.refill()

    def refill(self) -> None:
        """Start a full bucket for the current rate and burst (none when the rate is unlimited)."""
        cfg = self.config
        self._bucket = (
            TokenBucket(cfg.rate, cfg.bucket_size, self._clock) if cfg.rate is not None else None
        )

    def throttle(self) -> None:
        """Take a token, or raise 429 410 (as configured; with Retry-After when configured)."""
        if self._bucket is None:
            return
        wait = self._bucket.take()
        if wait > 0:
            self.throttled += 1
            cfg = self.config
            message = THROTTLE_MESSAGES.get(cfg.throttle_code, "Throttle Limited")
            error = ApiError.gateway(cfg.throttle_status, cfg.throttle_code, message)
            if self.config.retry_after:
                error.headers = ((b"retry-after", str(max(1, math.ceil(wait))).encode()),)
            raise error

    def authenticate(self, headers: Mapping[bytes, bytes], method: str, uri: str) -> None:
        """Check the signed headers of a request to ``uri`` (raw path and query); raise 401."""
        details = self._auth_problem(headers, method, uri)
        if details:
            self.auth_failed += 1
            raise ApiError.gateway(401, "200", "Authentication Failed", details)

    def _auth_problem(self, headers: Mapping[bytes, bytes], method: str, uri: str) -> str:
        ts = headers.get(b"x-ncp-apigw-timestamp", b"").decode("latin-1")
        key = headers.get(b"x-ncp-iam-access-key", b"").decode("latin-1")
        signature = next(
            (headers[name] for name in SIGNATURE_HEADERS if headers.get(name)), b""
        ).decode("latin-1")
        cfg = self.config
        if not (ts and key and signature):
            return "missing x-ncp-apigw-timestamp, x-ncp-iam-access-key or signature header"
        if not is_digits(ts):
            return "x-ncp-apigw-timestamp is not epoch milliseconds"
        if abs(int(ts) - int(self._wall_clock() * 1000)) > TIMESTAMP_WINDOW_MS:
            return "timestamp is more than 5 minutes from the gateway's clock"
        if not hmac.compare_digest(key.encode(), cfg.access_key.encode()):
            return "unknown access key"
        expected = sign(method, uri, int(ts), cfg.access_key, cfg.secret_key)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return "signature mismatch"
        return ""
