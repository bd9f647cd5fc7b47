"""The simulator's answers other than success, and every error code it uses, in one place.

Two shapes, as at NCP::

    ApiError
    ├── gateway: {"error": {"errorCode", "message", "details"}}     (API Gateway, any HTTP status)
    └── server:  {"responseError": {"returnCode", "returnMessage"}}  (Server API, HTTP 400)

Only the gateway codes, 1100031 and 1015009 are NCP's own; the 9000xx codes are the simulator's
(NCP publishes no exhaustive list: a client classifies by HTTP status first).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "INVALID_COMBINATION",
    "INVALID_PARAMETER",
    "INVALID_SERVER_NAME",
    "MISSING_PARAMETER",
    "NOT_FOUND",
    "PRODUCT_LIMIT",
    "SETUP_IN_PROGRESS",
    "TERMINATION_PROTECTED",
    "UNKNOWN_REGION",
    "WRONG_STATE",
    "ApiError",
    "Problems",
    "raise_first",
]

MISSING_PARAMETER: Final = "900001"  # a required parameter is missing
INVALID_PARAMETER: Final = "900002"  # a value is malformed or out of range
INVALID_COMBINATION: Final = "900003"  # image choice, image/spec pairs
INVALID_SERVER_NAME: Final = "900004"
UNKNOWN_REGION: Final = "900005"  # regionCode names no region of getRegionList
WRONG_STATE: Final = "900010"  # the status does not allow the operation
TERMINATION_PROTECTED: Final = "900011"
NOT_FOUND: Final = "900012"  # no such instance (or not listed yet)
SETUP_IN_PROGRESS: Final = "1100031"  # NCP's: operation SETUP, wait for NULL
PRODUCT_LIMIT: Final = "1015009"  # NCP's: the account's product limit

# (returnCode, message) pairs gathered by a validator, raised together.
Problems = list[tuple[str, str]]


class ApiError(Exception):
    """An answer other than success: the HTTP status and the NCP-shaped JSON body."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers

    @classmethod
    def gateway(cls, status: int, code: str, message: str, details: str | None = "") -> ApiError:
        """Return an API Gateway error (``error`` body); ``details=None`` leaves the field out."""
        error: dict[str, str] = {"errorCode": code, "message": message}
        if details is not None:
            error["details"] = details
        return cls(status, {"error": error})

    @classmethod
    def server(cls, code: str, message: str) -> ApiError:
        """Return a Server API error (``responseError`` body, HTTP 400)."""
        return cls(400, {"responseError": {"returnCode": code, "returnMessage": message}})


def raise_first(problems: Problems) -> None:
    """Raise one Server API error naming every problem, with the first problem's code."""
    if problems:
        raise ApiError.server(problems[0][0], "; ".join(message for _, message in problems))
