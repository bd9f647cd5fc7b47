"""changeServerInstanceSpec's rules: what a stopped server's spec or product may change to.

NCP changes a server in place only within the same product type (``productType``: the third part
of a server product code, STAND, HICPU, CPU, MEMRY ...) and the same disk type (HDD or SSD, where
the product code names one; a KVM spec's code names none: its disks are block storage). The
simulator reads both off the catalog, and also keeps the generation and the hypervisor (a G2 XEN
server does not become a G3 KVM one in place). The new spec must run the server's image (its
image's specs), the new product its image product (its image product's products).

The call names ``serverInstanceNo`` and exactly one of ``serverSpecCode`` (any hypervisor) and
``serverProductCode`` (XEN/RHV only). Refusals, HTTP 400 ``responseError`` (the state's own, for
a server not stopped or not found, are checked in ``state``):

| returnCode | when |
|---|---|
| 900001 | serverInstanceNo missing, or neither code |
| 900003 | both codes, or serverProductCode for a KVM server |
| 1413 | a spec or product the catalog lacks, or one that does not run the server's image |
| 900006 | another product type, disk type, generation or hypervisor |

Whether NCP refuses a change to the spec a server already has is UNKNOWN: the simulator takes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from fleet.simulator.catalog import Catalog, disk_type, product_type
from fleet.simulator.errors import (
    INVALID_COMBINATION,
    MISSING_PARAMETER,
    SPEC_CHANGE_REFUSED,
    SPEC_MISMATCH,
    ApiError,
)
from fleet.simulator.servers import Machine

__all__ = ["check_spec_params", "resized"]

# (hypervisor, generation, product type, disk type): a server changes in place within one.
Family = tuple[str, str, str, str]


def _family(hypervisor: str, generation: str, product_code: str) -> Family:
    return hypervisor, generation, product_type(product_code), disk_type(product_code)


def _current(machine: Machine, catalog: Catalog) -> Family | None:
    spec = catalog.specs.get(machine.spec_code)
    if spec is not None:
        return _family(spec.hypervisor, spec.generation, spec.product_code)
    product = catalog.products.get(machine.product_code)
    if product is None:
        return None
    return _family(machine.hypervisor, product.generation, product.code)


def check_spec_params(params: Mapping[str, str]) -> str:
    """Refuse a call that lacks the server or names not exactly one code; return the number."""
    no = params.get("serverInstanceNo", "")
    if not no:
        raise ApiError.server(MISSING_PARAMETER, "serverInstanceNo is required")
    spec, product = params.get("serverSpecCode", ""), params.get("serverProductCode", "")
    if spec and product:
        raise ApiError.server(
            INVALID_COMBINATION, "serverSpecCode and serverProductCode exclude each other"
        )
    if not spec and not product:
        raise ApiError.server(
            MISSING_PARAMETER, "one of serverSpecCode and serverProductCode is required"
        )
    return no


def _refuse_family(no: int, machine: Machine, catalog: Catalog, wanted: Family, code: str) -> None:
    current = _current(machine, catalog)
    if current != wanted:
        have = "/".join(current) if current is not None else "unknown"
        raise ApiError.server(
            SPEC_CHANGE_REFUSED,
            f"server {no}: {code} is not of its product type and disk type"
            f" ({'/'.join(wanted)}, server: {have})",
        )


def resized(no: int, machine: Machine, params: Mapping[str, str], catalog: Catalog) -> Machine:
    """Return what server ``no`` runs after the change the call asks; raise ApiError if refused."""
    spec_code = params.get("serverSpecCode", "")
    if spec_code:
        spec = catalog.specs.get(spec_code)
        image = catalog.images.get(machine.image_no)
        if spec is None or image is None or spec_code not in image.specs:
            raise ApiError.server(
                SPEC_MISMATCH, f"serverSpecCode {spec_code!r} does not fit server {no}'s image"
            )
        wanted = _family(spec.hypervisor, spec.generation, spec.product_code)
        _refuse_family(no, machine, catalog, wanted, spec_code)
        return replace(
            machine,
            cpu=spec.cpu,
            memory=spec.memory,
            spec_code=spec.code,
            product_code=spec.product_code,
        )
    code = params.get("serverProductCode", "")
    if machine.hypervisor == "KVM":
        raise ApiError.server(
            INVALID_COMBINATION, f"server {no} is KVM: change it with serverSpecCode"
        )
    product = catalog.products.get(code)
    image_product = catalog.image_products.get(machine.image_product_code)
    if product is None or image_product is None or code not in image_product.products:
        raise ApiError.server(
            SPEC_MISMATCH, f"serverProductCode {code!r} does not fit server {no}'s image"
        )
    wanted = _family(machine.hypervisor, product.generation, code)
    _refuse_family(no, machine, catalog, wanted, code)
    spec = catalog.spec_of_product(code)
    return replace(
        machine,
        cpu=product.cpu,
        memory=product.memory,
        spec_code=spec.code if spec is not None else "",
        product_code=code,
    )
