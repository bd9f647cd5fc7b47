"""The built-in catalog, in the catalog file's JSON format (see ``catalog_file``).

It holds NCP's public regions and what the example inventories and the tests name: VPC 75001 with
subnets 75101-75103, ACGs 75200-75204, placement group 75301, init script 75401, network
interfaces 75501 (free) and 75502 (in use), snapshot 75601, member image 75701, login keys
demo-key, full-key and test-key; the images 23214590 (KVM), 23214591 (bare metal), 25495367 (KVM),
16187005 (XEN, also the image product ubuntu-20.04) with their specs, and two XEN image products
with their server products. VPC 1001
(subnet 2002, ACG 111) is the simulator tests' own; 3001 and 4001 are VPCs in JPN and SGN.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DEFAULT_CATALOG", "DEFAULT_REGIONS"]

_GIB: Final = 1 << 30


def _zones(*zones: tuple[str, str]) -> list[dict[str, str]]:
    return [{"zoneCode": z, "zoneName": z, "zoneDescription": text} for z, text in zones]


# NCP's public-site VPC regions and zones; KR first, as getRegionList lists it.
DEFAULT_REGIONS: Final[list[dict[str, Any]]] = [
    {
        "regionCode": "KR",
        "regionName": "Korea",
        "zones": _zones(("KR-1", "가산 zone"), ("KR-2", "평촌 zone")),
    },
    {
        "regionCode": "JPN",
        "regionName": "Japan",
        "zones": _zones(("JPN-4", "일본 zone 4"), ("JPN-5", "일본 zone 5")),
    },
    {
        "regionCode": "SGN",
        "regionName": "Singapore",
        "zones": _zones(("SGN-4", "싱가포르 zone 4"), ("SGN-5", "싱가포르 zone 5")),
    },
    {
        "regionCode": "USWN",
        "regionName": "US West",
        "zones": _zones(("USWN-5", "미국 서부 zone 5")),
    },
    {"regionCode": "DEN", "regionName": "Germany", "zones": _zones(("DEN-5", "독일 zone 5"))},
]


def _spec(
    code: str, cpu: int, gib: int, generation: str, hypervisor: str, product: str
) -> dict[str, Any]:
    return {
        "serverSpecCode": code,
        "cpuCount": cpu,
        "memorySize": gib * _GIB,
        "generationCode": generation,
        "hypervisorTypeCode": hypervisor,
        "serverProductCode": product,
        "serverSpecDescription": f"vCPU {cpu}EA, Memory {gib}GB",
    }


def _g3(code: str, cpu: int, gib: int) -> dict[str, Any]:
    kind = {"c": "CPU", "s": "STAND", "m": "MEMRY"}[code[0]]
    return _spec(code, cpu, gib, "G3", "KVM", f"SVR.VSVR.{kind}.C{cpu:03d}.M{gib:03d}.G003")


def _g2(code: str, cpu: int, gib: int) -> dict[str, Any]:
    kind = {"c": "HICPU", "s": "STAND"}[code[0]]
    product = f"SVR.VSVR.{kind}.C{cpu:03d}.M{gib:03d}.NET.SSD.B050.G002"
    return _spec(code, cpu, gib, "G2", "XEN", product)


def _product(code: str, cpu: int, gib: int, name: str) -> dict[str, Any]:
    return {
        "productCode": code,
        "productName": name,
        "cpuCount": cpu,
        "memorySize": gib * _GIB,
        "baseBlockStorageSize": 50,
        "generationCode": "G2",
    }


_G3_SPECS: Final = [
    _g3("c2-g3", 2, 4),
    _g3("c4-g3", 4, 8),
    _g3("c8-g3", 8, 16),
    _g3("s2-g3", 2, 8),
    _g3("s4-g3", 4, 16),
    _g3("s8-g3", 8, 32),
    _g3("m2-g3", 2, 16),
    _g3("m4-g3", 4, 32),
]
_G2_SPECS: Final = [_g2("s2-g2-s50", 2, 8), _g2("s4-g2-s50", 4, 16), _g2("c8-g2-s50", 8, 16)]
_G3_CODES: Final = [spec["serverSpecCode"] for spec in _G3_SPECS]
_XEN_PRODUCTS: Final = [
    _product(
        "SVR.VSVR.STAND.C002.M008.NET.SSD.B050.G002", 2, 8, "vCPU 2EA, Memory 8GB, [SSD]Disk 50GB"
    ),
    _product(
        "SVR.VSVR.STAND.C004.M016.NET.SSD.B050.G002", 4, 16, "vCPU 4EA, Memory 16GB, [SSD]Disk 50GB"
    ),
    _product(
        "SVR.VSVR.HICPU.C008.M016.NET.SSD.B050.G002", 8, 16, "vCPU 8EA, Memory 16GB, [SSD]Disk 50GB"
    ),
]
_XEN_CODES: Final = [product["productCode"] for product in _XEN_PRODUCTS]


def _subnet(
    no: str, vpc: str, zone: str, cidr: str, name: str, kind: str = "PRIVATE"
) -> dict[str, str]:
    return {
        "subnetNo": no,
        "vpcNo": vpc,
        "zoneCode": zone,
        "subnet": cidr,
        "subnetName": name,
        "subnetTypeCode": kind,
    }


def _acg(no: str, vpc: str, name: str, *, default: bool = False) -> dict[str, Any]:
    return {
        "accessControlGroupNo": no,
        "vpcNo": vpc,
        "accessControlGroupName": name,
        "isDefault": default,
    }


DEFAULT_CATALOG: Final[dict[str, Any]] = {
    "regions": DEFAULT_REGIONS,
    "vpcs": [
        {
            "vpcNo": "75001",
            "vpcName": "demo-vpc",
            "ipv4CidrBlock": "10.0.0.0/16",
            "regionCode": "KR",
        },
        {
            "vpcNo": "1001",
            "vpcName": "test-vpc",
            "ipv4CidrBlock": "10.1.0.0/16",
            "regionCode": "KR",
        },
        {
            "vpcNo": "3001",
            "vpcName": "tokyo-vpc",
            "ipv4CidrBlock": "10.30.0.0/16",
            "regionCode": "JPN",
        },
        {
            "vpcNo": "4001",
            "vpcName": "singapore-vpc",
            "ipv4CidrBlock": "10.40.0.0/16",
            "regionCode": "SGN",
        },
    ],
    "subnets": [
        _subnet("75101", "75001", "KR-1", "10.0.1.0/24", "demo-web", "PUBLIC"),
        _subnet("75102", "75001", "KR-1", "10.0.2.0/24", "demo-api"),
        _subnet("75103", "75001", "KR-2", "10.0.3.0/24", "demo-worker"),
        _subnet("2002", "1001", "KR-1", "10.1.2.0/24", "test-subnet"),
        _subnet("3101", "3001", "JPN-4", "10.30.1.0/24", "tokyo-subnet"),
        _subnet("4101", "4001", "SGN-4", "10.40.1.0/24", "singapore-subnet"),
    ],
    "accessControlGroups": [
        _acg("75200", "75001", "demo-vpc-default-acg", default=True),
        _acg("75201", "75001", "demo-web"),
        _acg("75202", "75001", "demo-ssh"),
        _acg("75203", "75001", "demo-worker"),
        _acg("75204", "75001", "demo-db"),
        _acg("111", "1001", "test-vpc-default-acg", default=True),
        _acg("3201", "3001", "tokyo-vpc-default-acg", default=True),
        _acg("4201", "4001", "singapore-vpc-default-acg", default=True),
    ],
    "loginKeys": [
        {"keyName": "demo-key", "fingerprint": "3f:0c:ce:de:00:00:00:00:00:00:00:00:00:00:00:01"},
        {"keyName": "full-key", "fingerprint": "3f:0c:ce:de:00:00:00:00:00:00:00:00:00:00:00:02"},
        {"keyName": "test-key", "fingerprint": "3f:0c:ce:de:00:00:00:00:00:00:00:00:00:00:00:03"},
        {"keyName": "tokyo-key", "regionCode": "JPN"},
    ],
    "initScripts": [{"initScriptNo": "75401", "initScriptName": "full-init"}],
    "placementGroups": [{"placementGroupNo": "75301", "placementGroupName": "full-spread"}],
    "networkInterfaces": [
        {
            "networkInterfaceNo": "75501",
            "subnetNo": "75102",
            "ip": "10.0.2.50",
            "networkInterfaceName": "full-app-nic",
        },
        {
            "networkInterfaceNo": "75502",
            "subnetNo": "75101",
            "ip": "10.0.1.99",
            "networkInterfaceName": "taken-nic",
            "instanceNo": "9000001",
        },
    ],
    "blockStorageSnapshots": [
        {
            "blockStorageSnapshotInstanceNo": "75601",
            "blockStorageSnapshotName": "full-app-data-snap",
            "blockStorageSnapshotVolumeSize": 50,
        },
    ],
    "blockStorageVolumeTypes": [
        {"blockStorageVolumeTypeCode": code, "hypervisorTypeCode": hypervisor}
        for code, hypervisor in (
            ("SSD", "XEN"),
            ("HDD", "XEN"),
            ("CB1", "KVM"),
            ("CB2", "KVM"),
            ("FB1", "KVM"),
            ("FB2", "KVM"),
        )
    ],
    "serverSpecs": [
        *_G3_SPECS,
        *_G2_SPECS,
        _spec("bm-gpu-h100", 96, 2048, "G3", "NONE", "SVR.BM.GPU.H100.G003"),
    ],
    "serverImages": [
        {
            "serverImageNo": "23214590",
            "serverImageName": "ubuntu-22.04-base",
            "serverSpecCodes": _G3_CODES,
        },
        {
            "serverImageNo": "25495367",
            "serverImageName": "rocky-8.10-base",
            "serverSpecCodes": _G3_CODES,
        },
        {
            "serverImageNo": "23214591",
            "serverImageName": "ubuntu-22.04-gpu-baremetal",
            "hypervisorTypeCode": "NONE",
            "serverSpecCodes": ["bm-gpu-h100"],
        },
        {
            "serverImageNo": "16187005",
            "serverImageName": "ubuntu-20.04-xen",
            "hypervisorTypeCode": "XEN",
            "serverImageProductCode": "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050",
            "serverSpecCodes": [s["serverSpecCode"] for s in _G2_SPECS],
        },
    ],
    "serverProducts": _XEN_PRODUCTS,
    "serverImageProducts": [
        {
            "productCode": "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050",
            "productName": "ubuntu-20.04",
            "serverProductCodes": _XEN_CODES,
        },
        {
            "productCode": "SW.VSVR.OS.LNX64.CNTOS.0703.B050",
            "productName": "centos-7.3-64",
            "serverProductCodes": _XEN_CODES,
        },
    ],
    "memberServerImages": [
        {
            "memberServerImageInstanceNo": "75701",
            "memberServerImageName": "full-cache-base",
            "serverImageNo": "23214590",
        },
    ],
}
