"""The one place that reads the environment and the ncloud CLI's key file.

Everything after this module sees frozen settings; the secret key is held so that it never shows
in a repr, a log line or an exception.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["SITES", "Credentials", "is_loopback", "load_credentials", "resolve_endpoint"]

# Base URL (scheme and host) of the VPC Server API gateway, per NCP site.
SITES: dict[str, str] = {
    "public": "https://ncloud.apigw.ntruss.com",
    "gov": "https://ncloud.apigw.gov-ntruss.com",
    "fin": "https://fin-ncloud.apigw.fin-ntruss.com",
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """An NCP access key and its secret; the secret stays out of repr and str."""

    access_key: str
    secret_key: str = field(repr=False)
    source: str = "environment"

    def __str__(self) -> str:
        return f"access key {self.access_key} (from {self.source})"


def load_credentials(env: Mapping[str, str] | None = None, home: Path | None = None) -> Credentials:
    """Return keys from NCLOUD_ACCESS_KEY/NCLOUD_SECRET_KEY, else ~/.ncloud/configure."""
    env = os.environ if env is None else env
    access, secret = env.get("NCLOUD_ACCESS_KEY", ""), env.get("NCLOUD_SECRET_KEY", "")
    if access and secret:
        return Credentials(access, secret, "environment")
    if access or secret:
        missing = "NCLOUD_SECRET_KEY" if access else "NCLOUD_ACCESS_KEY"
        raise ConfigError(f"{missing} is not set (the other half of the key pair is)")
    path = (Path.home() if home is None else home) / ".ncloud" / "configure"
    if not path.is_file():
        raise ConfigError(
            "no NCP credentials: set NCLOUD_ACCESS_KEY and NCLOUD_SECRET_KEY, "
            f"or write them to {path} (ncloud_access_key_id, ncloud_secret_access_key)"
        )
    parser = configparser.ConfigParser()
    try:
        parser.read_string("[DEFAULT]\n" + path.read_text(encoding="utf-8"))
    except (configparser.Error, UnicodeDecodeError, OSError):
        # The parser's message may quote the file's lines, secret included: say only where.
        raise ConfigError(f"{path}: cannot be read as the ncloud CLI's key file") from None
    sections = [parser.defaults(), *(parser[s] for s in parser.sections())]
    for section in sections:
        access = section.get("ncloud_access_key_id", "").strip()
        secret = section.get("ncloud_secret_access_key", "").strip()
        if access and secret:
            return Credentials(access, secret, str(path))
    raise ConfigError(f"{path}: no ncloud_access_key_id and ncloud_secret_access_key in it")


def is_loopback(host: str) -> bool:
    """Return whether a host name or address is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_endpoint(
    site: str = "public", endpoint: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Return the gateway's base URL: an explicit endpoint, else NCLOUD_API_GW, else the site's."""
    env = os.environ if env is None else env
    chosen = endpoint or env.get("NCLOUD_API_GW") or ""
    if not chosen:
        if site not in SITES:
            raise ConfigError(f"unknown site {site!r} (choose one of {', '.join(SITES)})")
        return SITES[site]
    if "://" not in chosen:
        chosen = "https://" + chosen  # SDKs accept a bare host in NCLOUD_API_GW
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"endpoint {chosen!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # Keys and signatures travel in headers: plain HTTP is only for the local simulator.
        raise ConfigError(f"endpoint {chosen!r}: plain http is allowed only on loopback")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
