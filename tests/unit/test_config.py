"""Credentials and endpoints: where they come from, and the clear errors when they are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.config import SITES, load_credentials, resolve_endpoint
from fleet.errors import ConfigError


def test_keys_from_environment(tmp_path: Path) -> None:
    """NCLOUD_ACCESS_KEY / NCLOUD_SECRET_KEY win over the CLI's key file."""
    creds = load_credentials({"NCLOUD_ACCESS_KEY": "a", "NCLOUD_SECRET_KEY": "s"}, tmp_path)
    assert (creds.access_key, creds.secret_key, creds.source) == ("a", "s", "environment")


def test_keys_from_ncloud_configure(tmp_path: Path) -> None:
    """Without the environment, ~/.ncloud/configure is read as the ncloud CLI writes it."""
    (tmp_path / ".ncloud").mkdir()
    (tmp_path / ".ncloud" / "configure").write_text(
        "[DEFAULT]\nncloud_access_key_id = AK1\nncloud_secret_access_key = SK1\n"
        "ncloud_api_url = https://ncloud.apigw.ntruss.com\n"
    )
    creds = load_credentials({}, tmp_path)
    assert (creds.access_key, creds.secret_key) == ("AK1", "SK1")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no NCP credentials"),
        ({"NCLOUD_ACCESS_KEY": "a"}, "NCLOUD_SECRET_KEY is not set"),
        ({"NCLOUD_SECRET_KEY": "s"}, "NCLOUD_ACCESS_KEY is not set"),
    ],
)
def test_missing_keys_are_a_clear_error(tmp_path: Path, env: dict[str, str], message: str) -> None:
    """A missing key says which one and where keys may come from."""
    with pytest.raises(ConfigError, match=message):
        load_credentials(env, tmp_path)


def test_unreadable_key_file_does_not_quote_the_secret(tmp_path: Path) -> None:
    """A malformed key file is an error naming the file, never echoing its lines."""
    (tmp_path / ".ncloud").mkdir()
    (tmp_path / ".ncloud" / "configure").write_text("[broken\nncloud_secret_access_key = TOPSECRET")
    with pytest.raises(ConfigError) as caught:
        load_credentials({}, tmp_path)
    assert "TOPSECRET" not in str(caught.value)
    assert "configure" in str(caught.value)


@pytest.mark.parametrize(
    ("site", "endpoint", "env", "expected"),
    [
        ("public", None, {}, SITES["public"]),
        ("gov", None, {}, SITES["gov"]),
        ("fin", None, {}, SITES["fin"]),
        ("public", None, {"NCLOUD_API_GW": "gw.example.com"}, "https://gw.example.com"),
        ("public", "http://127.0.0.1:8080/", {}, "http://127.0.0.1:8080"),
        ("public", "http://localhost:9", {"NCLOUD_API_GW": "https://x"}, "http://localhost:9"),
    ],
)
def test_endpoint_resolution(
    site: str, endpoint: str | None, env: dict[str, str], expected: str
) -> None:
    """An explicit endpoint beats NCLOUD_API_GW, which beats the site's gateway."""
    assert resolve_endpoint(site, endpoint, env) == expected


@pytest.mark.parametrize(
    ("site", "endpoint", "message"),
    [
        ("mars", None, "unknown site"),
        ("public", "http://10.0.0.5:8080", "only on loopback"),
        ("public", "ftp://127.0.0.1", "not an http"),
    ],
)
def test_bad_endpoints_are_refused(site: str, endpoint: str | None, message: str) -> None:
    """Unknown sites and plain http beyond loopback are configuration errors."""
    with pytest.raises(ConfigError, match=message):
        resolve_endpoint(site, endpoint, {})
