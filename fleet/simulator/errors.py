"""The simulator's answers other than success, and every error code it uses, in one place.

Two shapes, as at NCP::

    ApiError
    ├── gateway: {"error": {"errorCode", "message", "details"}}     (API Gateway, any HTTP status)
    └── server:  {"responseError": {"returnCode", "returnMessage"}}  (Server API, HTTP 400)

Only the gateway codes, 1100031, 1015009 and 1413 are NCP's own; the 9000xx codes are the
simulator's (NCP publishes no exhaustive list: a client classifies by HTTP status first).

| returnCode | meaning |
|---|---|
| 900001 | a required parameter is missing |
| 900002 | a value is malformed or out of range (types, booleans, counts, paging) |
| 900003 | an invalid combination (image choice, image/spec pairs) |
| 900004 | invalid serverName |
| 900005 | regionCode names no region of getRegionList |
| 900006 | changeServerInstanceSpec to another product type or disk type (or generation) |
| 900010 | the status does not allow the operation (stop a stopped server, detach a free disk) |
| 900011 | termination protection is on |
| 900012 | no such instance in the call's region (or a server not listed yet) |
| 900020 | no such server image, image product or member image |
| 900021 | no such VPC in the call's region |
| 900022 | no such subnet in the VPC (or not in the server's zone) |
| 900023 | no such ACG in the VPC |
| 900024 | no such login key in the region |
| 900025 | no such init script in the region |
| 900026 | no such placement group in the region |
| 900027 | no such snapshot in the region, or unknown volume type, or bad size |
| 900028 | networkInterfaceNo missing, in another VPC or zone, or in use |
| 900029 | a fixed ip outside its subnet's CIDR |
| 900030 | in use: disassociate a public IP, detach a disk, before deleting it |
| 1100031 | NCP's: the server's operation is SETUP; wait for operation NULL, then retry |
| 1015009 | NCP's: the account's server limit (``max_servers``) would be exceeded |
| 1413 | NCP's: the spec or server product does not fit the image (or is not offered) |
| 1104010 | OUR ASSUMPTION of NCP's code for a duplicate serverName (``duplicate_names``) |

Whether NCP refuses a create naming a server that exists, and with which code, is not published
(``fleet probe --create`` finds out): with ``duplicate_names="refused"`` the simulator answers
400 with 1104010, a code of the Server API's shape that nobody has seen from NCP.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "DUPLICATE_NAME",
    "INVALID_COMBINATION",
    "INVALID_PARAMETER",
    "INVALID_SERVER_NAME",
    "IN_USE",
    "IP_OUTSIDE_SUBNET",
    "MISSING_PARAMETER",
    "NIC_UNAVAILABLE",
    "NOT_FOUND",
    "PRODUCT_LIMIT",
    "SETUP_IN_PROGRESS",
    "SPEC_CHANGE_REFUSED",
    "SPEC_MISMATCH",
    "TERMINATION_PROTECTED",
    "UNKNOWN_ACG",
    "UNKNOWN_IMAGE",
    "UNKNOWN_INIT_SCRIPT",
    "UNKNOWN_LOGIN_KEY",
    "UNKNOWN_PLACEMENT_GROUP",
    "UNKNOWN_REGION",
    "UNKNOWN_STORAGE",
    "UNKNOWN_SUBNET",
    "UNKNOWN_VPC",
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
SPEC_CHANGE_REFUSED: Final = "900006"  # a spec change outside the product type or disk type
WRONG_STATE: Final = "900010"  # the status does not allow the operation
TERMINATION_PROTECTED: Final = "900011"
NOT_FOUND: Final = "900012"  # no such instance (or not listed yet)
UNKNOWN_IMAGE: Final = "900020"
UNKNOWN_VPC: Final = "900021"
UNKNOWN_SUBNET: Final = "900022"
UNKNOWN_ACG: Final = "900023"
UNKNOWN_LOGIN_KEY: Final = "900024"
UNKNOWN_INIT_SCRIPT: Final = "900025"
UNKNOWN_PLACEMENT_GROUP: Final = "900026"
UNKNOWN_STORAGE: Final = "900027"
NIC_UNAVAILABLE: Final = "900028"
IP_OUTSIDE_SUBNET: Final = "900029"
IN_USE: Final = "900030"
SETUP_IN_PROGRESS: Final = "1100031"  # NCP's: operation SETUP, wait for NULL
PRODUCT_LIMIT: Final = "1015009"  # NCP's: the account's product limit
SPEC_MISMATCH: Final = "1413"  # NCP's: product code does not match the image
# OUR ASSUMPTION, not NCP's: the code NCP gives a duplicate serverName is unknown (if it refuses
# one at all); a 7-digit code like its other Server API codes, and a 400 like theirs.
DUPLICATE_NAME: Final = "1104010"

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
