"""NCP API Gateway signature v2, as a pure function of the request and the keys.

The time is an argument, not read here, so the signature is a plain function that tests check
against known-answer vectors, and so a retry is signed anew with the time it is actually sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["sign", "signed_headers", "string_to_sign"]


def string_to_sign(method: str, uri: str, timestamp_ms: int, access_key: str) -> str:
    """Return the text the gateway signs: method, URI with its query exactly as sent, time, key."""
    return f"{method} {uri}\n{timestamp_ms}\n{access_key}"


def sign(method: str, uri: str, timestamp_ms: int, access_key: str, secret_key: str) -> str:
    """Return the base64 HMAC-SHA256 signature of one request."""
    digest = hmac.new(
        secret_key.encode(),
        string_to_sign(method, uri, timestamp_ms, access_key).encode(),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(digest).decode()


def signed_headers(
    method: str, uri: str, timestamp_ms: int, access_key: str, secret_key: str
) -> dict[str, str]:
    """Return the three headers that authenticate one request to the NCP API Gateway."""
    return {
        "x-ncp-apigw-timestamp": str(timestamp_ms),
        "x-ncp-iam-access-key": access_key,
        "x-ncp-apigw-signature-v2": sign(method, uri, timestamp_ms, access_key, secret_key),
    }
