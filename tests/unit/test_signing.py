"""Signing: the known-answer vectors computed with NCP's official SDK signer."""

from __future__ import annotations

import pytest

from fleet.ncp.signing import sign, signed_headers
from tests.conftest import ACCESS, SECRET

OTHER = ("ncp_iam_BPAMKR000000000000", "ncp_iam_BPKMKR0000000000000000000000000000")

VECTORS = [
    (
        "POST",
        "/vserver/v2/createServerInstances?responseFormatType=json",
        1700000000000,
        (ACCESS, SECRET),
        "9DFQS/Uts2M4aLynD167Rc+vy+M5TQsDBEZ3wujVuzA=",
    ),
    (
        "GET",
        "/vserver/v2/getRegionList?regionCode=KR&responseFormatType=json",
        1700000000000,
        (ACCESS, SECRET),
        "aDVwok8tkpSToxlfYl3j/Hi2omGZXRAY3EFRLPCIfRw=",
    ),
    (
        "POST",
        "/vserver/v2/createServerInstances",
        1700000000000,
        (ACCESS, SECRET),
        "MtvwlqVeagggTUYrDPjFOr+2XFfO4PaiQEqkhDu1Msc=",
    ),
    (
        "GET",
        "/vserver/v2/createServerInstances?serverDescription=batch%20test%2Fdesc"
        "&responseFormatType=json",
        1700000000000,
        (ACCESS, SECRET),
        "Mvbdfs+iDBsRVYzKqPgOoF+lKMl3o52P54s+4Dy1vac=",
    ),
    (
        "GET",
        "/vserver/v2/createServerInstances?regionCode=KR&serverCreateCount=2"
        "&serverName=fleet-web&networkInterfaceList.1.networkInterfaceOrder=0"
        "&networkInterfaceList.1.accessControlGroupNoList.1=111&responseFormatType=json",
        1712345678901,
        OTHER,
        "Q0D0ROQIK7Ogz/pTRaTHsEsyYWlkEBUXCcTFErJOkb8=",
    ),
]


@pytest.mark.parametrize(("method", "uri", "ts", "keys", "expected"), VECTORS)
def test_known_answer_vectors(
    method: str, uri: str, ts: int, keys: tuple[str, str], expected: str
) -> None:
    """Each published vector signs to exactly the SDK's signature."""
    assert sign(method, uri, ts, *keys) == expected


def test_headers_carry_time_key_and_signature_but_not_the_secret() -> None:
    """The three gateway headers are set, and the secret itself is never sent."""
    method, uri, ts, keys, expected = VECTORS[0]
    headers = signed_headers(method, uri, ts, *keys)
    assert headers == {
        "x-ncp-apigw-timestamp": "1700000000000",
        "x-ncp-iam-access-key": ACCESS,
        "x-ncp-apigw-signature-v2": expected,
    }
    assert SECRET not in str(headers)


def test_signature_depends_on_time() -> None:
    """A retry signed a millisecond later carries a different signature."""
    assert sign("POST", "/a", 1, ACCESS, SECRET) != sign("POST", "/a", 2, ACCESS, SECRET)
