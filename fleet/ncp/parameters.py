"""The request parameters of createServerInstances, as data: names, types and NCP's rules.

One table serves the inventory validator, the request encoder and the simulator, so a parameter
the reference page adds is added here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "FEE_SYSTEM_TYPE_CODES",
    "IMAGE_CHOICES",
    "IMAGE_RULES",
    "LISTS",
    "MARKER_BYTES",
    "MAX_CREATE_SERIAL",
    "MAX_DESCRIPTION_BYTES",
    "MAX_NICS",
    "PROBE_NAME_PREFIX",
    "SCALARS",
    "SERVER_NAME_RE",
    "SPEC_CHOICES",
    "ImageRule",
    "ListField",
    "Type",
    "valid_server_name",
]


class Type(StrEnum):
    """How a parameter's value is written and checked."""

    STR = "str"  # free text
    INT = "int"  # a decimal integer
    BOOL = "bool"  # true / false, sent lower-case
    NUM = "num"  # an NCP number (instance, VPC, ACG ...): digits only, sent as text
    NUMS = "nums"  # several NCP numbers in one inventory cell, separated by spaces


# Top-level parameters, in the reference page's order. responseFormatType is the client's own.
SCALARS: dict[str, Type] = {
    "regionCode": Type.STR,
    "memberServerImageInstanceNo": Type.NUM,
    "serverImageNo": Type.NUM,
    "serverImageProductCode": Type.STR,
    "serverSpecCode": Type.STR,
    "serverProductCode": Type.STR,
    "vpcNo": Type.NUM,
    "subnetNo": Type.NUM,
    "isEncryptedBaseBlockStorageVolume": Type.BOOL,
    "feeSystemTypeCode": Type.STR,
    "serverCreateCount": Type.INT,
    "serverCreateStartNo": Type.INT,
    "serverName": Type.STR,
    "placementGroupNo": Type.NUM,
    "isProtectServerTermination": Type.BOOL,
    "serverDescription": Type.STR,
    "initScriptNo": Type.NUM,
    "loginKeyName": Type.STR,
    "associateWithPublicIp": Type.BOOL,
    "raidTypeName": Type.STR,
    "fabricClusterPoolNo": Type.NUM,
}


@dataclass(frozen=True, slots=True)
class ListField:
    """A 1-based list parameter (``name.N.field``), with its item fields and the required one."""

    name: str
    fields: dict[str, Type]
    required: str | None


LISTS: dict[str, ListField] = {
    "networkInterfaceList": ListField(
        "networkInterfaceList",
        {
            "networkInterfaceOrder": Type.INT,
            "networkInterfaceNo": Type.NUM,
            "subnetNo": Type.NUM,
            "ip": Type.STR,
            "accessControlGroupNoList": Type.NUMS,
        },
        required="networkInterfaceOrder",
    ),
    "blockDevicePartitionList": ListField(
        "blockDevicePartitionList",
        {"mountPoint": Type.STR, "partitionSize": Type.STR},
        required=None,
    ),
    "blockStorageMappingList": ListField(
        "blockStorageMappingList",
        {
            "order": Type.INT,
            "snapshotInstanceNo": Type.NUM,
            "blockStorageSize": Type.NUM,  # GB: sent as text, as NCP types it, but digits only
            "blockStorageName": Type.STR,
            "blockStorageVolumeTypeCode": Type.STR,
            "noBlockStorage": Type.BOOL,
            "emptyBlockStorage": Type.BOOL,
        },
        required="order",
    ),
}

# Exactly one image source per call, in the reference page's order.
IMAGE_CHOICES: tuple[str, ...] = (
    "memberServerImageInstanceNo",
    "serverImageNo",
    "serverImageProductCode",
)
# At most one spec parameter per call: they never go together.
SPEC_CHOICES: tuple[str, ...] = ("serverSpecCode", "serverProductCode")


@dataclass(frozen=True, slots=True)
class ImageRule:
    """Which spec parameter an image source needs, and which it refuses."""

    image: str
    requires: str | None
    forbids: str | None


# The image/spec pairs NCP accepts, as data: the inventory validator and the simulator both read
# this table. serverImageNo (KVM era) takes serverSpecCode; serverImageProductCode (XEN/RHV) takes
# serverProductCode; a member image takes whichever its own image took.
IMAGE_RULES: tuple[ImageRule, ...] = (
    ImageRule("serverImageNo", requires="serverSpecCode", forbids="serverProductCode"),
    ImageRule("serverImageProductCode", requires=None, forbids="serverSpecCode"),
    ImageRule("memberServerImageInstanceNo", requires=None, forbids=None),
)

FEE_SYSTEM_TYPE_CODES = frozenset({"MTRAT", "FXSUM"})
MAX_NICS = 3
MAX_DESCRIPTION_BYTES = 1000
# Of those, what fleet's create marker takes with the space before it (fleet/ownership.py): a
# user's description may use the rest.
MARKER_BYTES = 40
# The names of `fleet probe`'s own servers begin so (fleet/probe/): not NCP's rule but ours, kept
# here beside the name rule because the inventory refuses it (no rollout plans a probe's name).
PROBE_NAME_PREFIX = "fleetprobe-"
# serverCreateCount + serverCreateStartNo <= 1000, so every serial fits three digits.
MAX_CREATE_SERIAL = 1000

# 3-30 characters: lower-case letters, digits and '-', starting with a letter, ending with a
# letter or digit.
SERVER_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")


def valid_server_name(name: str) -> bool:
    """Return whether NCP accepts this server name."""
    return SERVER_NAME_RE.fullmatch(name) is not None
