"""The one place that reads the environment and the ncloud CLI's key file.

Everything after this module sees frozen settings; the secret key is held so that it never shows
in a repr, a log line or an exception: messages about the key file name the file and the profile,
never its lines.
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

__all__ = [
    "DEFAULT_PROFILE",
    "SITES",
    "Credentials",
    "is_loopback",
    "load_credentials",
    "resolve_endpoint",
]

# Base URL (scheme and host) of the VPC Server API gateway, per NCP site.
SITES: dict[str, str] = {
    "public": "https://ncloud.apigw.ntruss.com",
    "gov": "https://ncloud.apigw.gov-ntruss.com",
    "fin": "https://fin-ncloud.apigw.fin-ntruss.com",
}


# The ncloud CLI's own name for the profile used when none is chosen.
DEFAULT_PROFILE = "DEFAULT"
# configparser folds its default section into every other one; no real profile is named this, so
# [DEFAULT] is read as a profile like any other and profiles inherit nothing from it: one
# profile's access key is never paired with another's secret.
_NO_INHERITANCE = "\0"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An NCP access key and its secret; the secret stays out of repr and str.

    ``api_url`` is the key file's ``ncloud_api_url`` if it has one: a hint for the endpoint that
    the caller may pass on to ``resolve_endpoint``; nothing here applies it.
    """

    access_key: str
    secret_key: str = field(repr=False)
    source: str = "environment"
    api_url: str | None = None

    def __str__(self) -> str:
        return f"access key {self.access_key} (from {self.source})"


def load_credentials(
    env: Mapping[str, str] | None = None, home: Path | None = None, profile: str | None = None
) -> Credentials:
    """Return NCP keys from the environment or ~/.ncloud/configure, as the ncloud CLI keeps them.

    Which wins, first to last: a ``profile`` passed here (its keys from the file, whatever the
    environment holds); NCLOUD_ACCESS_KEY with NCLOUD_SECRET_KEY; the profile named by
    NCLOUD_PROFILE; the file's [DEFAULT] profile. A profile is one ``[NAME]`` section of the file,
    read alone (nothing comes from [DEFAULT]); a file without sections is all [DEFAULT].

    Raises:
        ConfigError: half a key pair in the environment, no file, a file that is not an INI
            file, a missing profile, or a profile without both keys. The message names the
            file and the profile, never a line of the file.

    """
    env = os.environ if env is None else env
    if not profile:
        access, secret = env.get("NCLOUD_ACCESS_KEY", ""), env.get("NCLOUD_SECRET_KEY", "")
        if access and secret:
            return Credentials(access, secret, "environment")
        if access or secret:
            missing = "NCLOUD_SECRET_KEY" if access else "NCLOUD_ACCESS_KEY"
            raise ConfigError(f"{missing} is not set (the other half of the key pair is)")
    chosen_by = "asked for" if profile else "named by NCLOUD_PROFILE"
    profile = profile or env.get("NCLOUD_PROFILE") or None
    path = (Path.home() if home is None else home) / ".ncloud" / "configure"
    if not path.is_file():
        if profile:
            raise ConfigError(f"NCP profile [{profile}] was {chosen_by}, but there is no {path}")
        raise ConfigError(
            "no NCP credentials: set NCLOUD_ACCESS_KEY and NCLOUD_SECRET_KEY, "
            f"or write them to {path} (ncloud_access_key_id, ncloud_secret_access_key)"
        )
    sections = _read_key_file(path)
    name = profile or DEFAULT_PROFILE
    if name not in sections:
        why = chosen_by if profile else "used when NCLOUD_PROFILE names none"
        raise ConfigError(f"{path}: no profile [{name}] in it ({why})")
    section = sections[name]
    keys = ("ncloud_access_key_id", "ncloud_secret_access_key")
    missing_keys = [key for key in keys if not section.get(key, "").strip()]
    if missing_keys:
        raise ConfigError(f"{path}: profile [{name}] has no {' and no '.join(missing_keys)}")
    api_url = section.get("ncloud_api_url", "").strip() or None
    access, secret = (section[key].strip() for key in keys)
    return Credentials(access, secret, f"{path} [{name}]", api_url)


def _read_key_file(path: Path) -> configparser.ConfigParser:
    """Parse the ncloud CLI's key file as INI without interpolation: secrets may hold '%'."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a BOM left by a Windows editor
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{path}: cannot be read as UTF-8 text") from None
    if not _starts_with_section(text):
        text = f"[{DEFAULT_PROFILE}]\n{text}"  # older SDK docs show the keys without a section
    # No inline comments either (the default): a secret may hold '#' or ';'.
    parser = configparser.ConfigParser(interpolation=None, default_section=_NO_INHERITANCE)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error:
        # The parser's message quotes the offending line, which may be the secret's: say where.
        raise ConfigError(f"{path}: cannot be read as the ncloud CLI's key file") from None
    return parser


def _starts_with_section(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return stripped.startswith("[")
    return False


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
