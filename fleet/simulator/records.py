"""The catalog's entries as NCP's read APIs show them: field names of the official SDK models.

Common codes are ``{"code", "codeName"}``; sizes are bytes; dates are NCP's KST format. The
catalog holds no dates: every entry shows ``CATALOG_DATE``.
"""

from __future__ import annotations

from typing import Any, Final

from fleet.simulator.catalog import (
    AcgEntry,
    ImageProductEntry,
    InitScriptEntry,
    LoginKeyEntry,
    MemberImageEntry,
    NicEntry,
    PlacementGroupEntry,
    ServerImageEntry,
    ServerProductEntry,
    SnapshotEntry,
    SpecEntry,
    SubnetEntry,
    VolumeTypeEntry,
    VpcEntry,
    product_type,
)

__all__ = [
    "CATALOG_DATE",
    "acg_record",
    "code",
    "image_product_record",
    "image_record",
    "init_script_record",
    "login_key_record",
    "member_image_record",
    "nic_record",
    "placement_group_record",
    "product_record",
    "snapshot_record",
    "spec_record",
    "subnet_record",
    "volume_type_record",
    "vpc_record",
]

CATALOG_DATE: Final = "2024-01-01T09:00:00+0900"
_GIB: Final = 1 << 30


def code(value: str, name: str | None = None) -> dict[str, str]:
    """Return an NCP common code."""
    return {"code": value, "codeName": name if name is not None else value}


def image_record(image: ServerImageEntry) -> dict[str, Any]:
    """Return a serverImage (getServerImageList)."""
    return {
        "serverImageNo": image.no,
        "serverImageName": image.name,
        "serverImageDescription": image.description,
        "serverImageProductCode": image.product_code,
        "serverImageType": code("NCP", "NCP 서버 이미지"),
        "hypervisorType": code(image.hypervisor),
        "cpuArchitectureType": code("X86_64"),
        "osCategoryType": code("LINUX"),
        "osType": code("LINUX"),
        "serverImageStatus": code("CREAT", "created"),
        "serverImageOperation": code("NULL"),
        "serverImageStatusName": "created",
        "createDate": CATALOG_DATE,
        "shareStatus": code("NULL"),
        "sharedLoginIdList": [],
        "blockStorageMappingList": [],
    }


def _product(
    product_code: str, name: str, description: str, kind: str, cpu: int, memory: int, disk_gb: int
) -> dict[str, Any]:
    return {
        "productCode": product_code,
        "productName": name,
        "productType": code("LINUX" if kind == "SW" else product_type(product_code) or "STAND"),
        "productDescription": description,
        "infraResourceType": code(kind),
        "infraResourceDetailType": code("SW" if kind == "SW" else "VSVR"),
        "cpuCount": cpu,
        "memorySize": memory,
        "baseBlockStorageSize": disk_gb * _GIB,
        "platformType": code("LNX64", "Linux 64 Bit"),
        "osInformation": name if kind == "SW" else "",
        "diskType": code("NET", "Network Storage"),
        "dbKindCode": "",
        "addBlockStorageSize": 0,
        "generationCode": "G2",
    }


def image_product_record(product: ImageProductEntry) -> dict[str, Any]:
    """Return a server image product (getServerImageProductList)."""
    return _product(product.code, product.name, product.description, "SW", 0, 0, 50)


def product_record(product: ServerProductEntry) -> dict[str, Any]:
    """Return a server product (getServerProductList)."""
    return _product(
        product.code,
        product.name,
        product.name,
        "SVR",
        product.cpu,
        product.memory,
        product.disk_gb,
    )


def member_image_record(member: MemberImageEntry) -> dict[str, Any]:
    """Return a memberServerImageInstance (getMemberServerImageInstanceList)."""
    return {
        "memberServerImageInstanceNo": member.no,
        "memberServerImageName": member.name,
        "memberServerImageDescription": "",
        "originalServerInstanceNo": "",
        "originalServerImageProductCode": member.image_product,
        "originalServerImageNo": member.image,
        "memberServerImageInstanceStatus": code("CREAT", "created"),
        "memberServerImageInstanceOperation": code("NULL"),
        "memberServerImageInstanceStatusName": "created",
        "createDate": CATALOG_DATE,
        "memberServerImageBlockStorageTotalRows": 1,
        "memberServerImageBlockStorageTotalSize": 50 * _GIB,
    }


def spec_record(spec: SpecEntry) -> dict[str, Any]:
    """Return a serverSpec (getServerSpecList)."""
    return {
        "serverSpecCode": spec.code,
        "generationCode": spec.generation,
        "cpuCount": spec.cpu,
        "memorySize": spec.memory,
        "hypervisorType": code(spec.hypervisor),
        "cpuArchitectureType": code("X86_64"),
        "blockStorageMaxCount": 20,
        "blockStorageMaxIops": 20000,
        "blockStorageMaxThroughput": 500,
        "networkPerformance": 1_000_000_000 * spec.cpu,
        "networkInterfaceMaxCount": 3,
        "serverProductCode": spec.product_code,
        "serverSpecDescription": spec.description,
        "gpuCount": 0,
    }


def login_key_record(key: LoginKeyEntry) -> dict[str, Any]:
    """Return a loginKey (getLoginKeyList)."""
    return {"keyName": key.name, "fingerprint": key.fingerprint, "createDate": CATALOG_DATE}


def acg_record(acg: AcgEntry) -> dict[str, Any]:
    """Return an accessControlGroup (getAccessControlGroupList)."""
    return {
        "accessControlGroupNo": acg.no,
        "accessControlGroupName": acg.name,
        "isDefault": acg.is_default,
        "vpcNo": acg.vpc,
        "accessControlGroupStatus": code("RUN", "운영중"),
        "accessControlGroupDescription": "",
    }


def init_script_record(script: InitScriptEntry) -> dict[str, Any]:
    """Return an initScript (getInitScriptList)."""
    return {
        "initScriptNo": script.no,
        "initScriptName": script.name,
        "createDate": CATALOG_DATE,
        "initScriptDescription": "",
        "initScriptContent": "",
        "osType": code("LNX", "LINUX"),
    }


def placement_group_record(group: PlacementGroupEntry) -> dict[str, Any]:
    """Return a placementGroup (getPlacementGroupList)."""
    return {
        "placementGroupNo": group.no,
        "placementGroupName": group.name,
        "placementGroupType": code("AA", "Anti-Affinity"),
    }


def volume_type_record(volume: VolumeTypeEntry, zones: list[str]) -> dict[str, Any]:
    """Return a blockStorageVolumeType (getBlockStorageVolumeTypeList)."""
    return {
        "zoneCodeList": zones,
        "blockStorageVolumeType": code(volume.code),
        "hypervisorType": code(volume.hypervisor),
        "minThroughput": 0,
        "maxThroughput": 500,
        "minIops": 0,
        "maxIops": 20000,
        "minVolumeSize": 10,
        "maxVolumeSize": 16380,
        "minBaseVolumeSize": 10,
        "maxBaseVolumeSize": 2000,
        "isAvailableBase": True,
    }


def snapshot_record(snapshot: SnapshotEntry) -> dict[str, Any]:
    """Return a blockStorageSnapshotInstance (getBlockStorageSnapshotInstanceList)."""
    return {
        "blockStorageSnapshotInstanceNo": snapshot.no,
        "blockStorageSnapshotName": snapshot.name,
        "blockStorageSnapshotVolumeSize": snapshot.size_gb * _GIB,
        "originalBlockStorageInstanceNo": "",
        "blockStorageSnapshotInstanceStatus": code("CREAT", "created"),
        "blockStorageSnapshotInstanceOperation": code("NULL"),
        "blockStorageSnapshotInstanceStatusName": "created",
        "createDate": CATALOG_DATE,
        "isEncryptedOriginalBlockStorageVolume": False,
        "blockStorageSnapshotDescription": "",
    }


def nic_record(nic: NicEntry, user: str, *, default: bool = False) -> dict[str, Any]:
    """Return a networkInterface (getNetworkInterfaceList); ``user``: the server holding it.

    ``default``: a server's own first interface (eth0), made with it and gone with it.
    """
    holder = nic.instance or user
    return {
        "networkInterfaceNo": nic.no,
        "networkInterfaceName": nic.name,
        "subnetNo": nic.subnet,
        "deleteOnTermination": default,
        "isDefault": default,
        "deviceName": ("eth0" if default else "eth1") if holder else "",
        "networkInterfaceStatus": code("USED" if holder else "NOTUSED"),
        "instanceType": code("VM" if holder else "NONE"),
        "instanceNo": holder,
        "ip": nic.ip,
        "accessControlGroupNoList": [],
        "networkInterfaceDescription": "",
    }


def vpc_record(vpc: VpcEntry) -> dict[str, Any]:
    """Return a vpc (getVpcList, VPC API)."""
    return {
        "vpcNo": vpc.no,
        "vpcName": vpc.name,
        "ipv4CidrBlock": vpc.cidr,
        "vpcStatus": code("RUN", "run"),
        "regionCode": vpc.region,
        "createDate": CATALOG_DATE,
    }


def subnet_record(subnet: SubnetEntry) -> dict[str, Any]:
    """Return a subnet (getSubnetList, VPC API)."""
    return {
        "subnetNo": subnet.no,
        "vpcNo": subnet.vpc,
        "zoneCode": subnet.zone,
        "subnetName": subnet.name,
        "subnet": subnet.cidr,
        "subnetStatus": code("RUN", "run"),
        "createDate": CATALOG_DATE,
        "subnetType": code(subnet.type),
        "usageType": code("GEN", "General"),
        "networkAclNo": "",
    }
