"""The one place that reads the environment and the ncloud CLI's key file.

Everything after this module sees frozen settings. Secrets (the secret key, a database password)
are held so that they never show in a repr, a log line or an exception: messages about the key
file name the file and the profile, never its lines; messages about a ledger URL show it redacted.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from fleet.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "DEFAULT_LEDGER",
    "DEFAULT_PROFILE",
    "SITES",
    "Credentials",
    "LedgerLocation",
    "is_loopback",
    "load_credentials",
    "redact_url",
    "resolve_endpoint",
    "resolve_ledger",
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


# Schemes that name a PostgreSQL ledger; the ledger always talks to it through psycopg 3.
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_POSTGRES_FORM = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB"
# Where the ledger lives when nothing says otherwise (re-exported as fleet.ledger.DEFAULT_LEDGER).
DEFAULT_LEDGER = Path(".fleet") / "ledger.db"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# A URL in free text ends at whitespace, a quote or an angle bracket.
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]*""")
# libpq's key=value form (and a URL's query) can carry the password too.
_PASSWORD_SETTING = re.compile(r"""(\bpassword\s*=\s*)('[^']*'|[^\s&'"]+)""", re.IGNORECASE)


def redact_url(text: str) -> str:
    """Return text with the password of every ``scheme://user:password@`` in it shown as ***."""
    text = _URL_IN_TEXT.sub(lambda found: _redact_userinfo(found.group()), text)
    return _redact_settings(text)


def _redact_settings(text: str) -> str:
    return _PASSWORD_SETTING.sub(r"\1***", text)


def _redact_userinfo(url: str) -> str:
    """Mask what lies between the user's ':' and the last '@': even an unquoted '@' or '/'."""
    scheme, _, rest = url.partition("://")
    userinfo, at, host_and_more = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host_and_more}"


@dataclass(frozen=True, slots=True, repr=False)
class LedgerLocation:
    """Where the ledger lives: a SQLite file, or a PostgreSQL database; never shows a password.

    Build it with ``parse`` (or ``resolve_ledger``). ``redacted``, ``str()`` and ``repr()`` show
    the URL with its password as ***; ``sqlalchemy_url`` is a SQLAlchemy URL, whose str and repr
    hide it too (``render_as_string(hide_password=False)`` is for the driver alone). Prefect
    stores flow parameters, so a flow resolves its ledger from its own environment rather than
    taking this object (password inside) as a parameter.
    """

    redacted: str
    path: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: str) -> LedgerLocation:
        """Read a ``--ledger`` / FLEET_LEDGER value: a file path, or a PostgreSQL URL."""
        if not value:
            raise ConfigError("the ledger location is empty: give a file path or a URL")
        scheme = _SCHEME.match(value)
        if scheme is None:
            return cls(redacted=value, path=Path(value))
        redacted = _redact_settings(_redact_userinfo(value))
        if scheme.group(1).lower() not in _POSTGRES_SCHEMES:
            raise ConfigError(
                f"ledger {redacted}: unsupported scheme {scheme.group(1)!r}; give a file path "
                f"(SQLite) or {_POSTGRES_FORM}"
            )
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            # urllib's message may quote the netloc, password included.
            raise ConfigError(f"ledger {redacted}: not of the form {_POSTGRES_FORM}") from None
        database = unquote(parts.path.removeprefix("/"))
        query = tuple(parse_qsl(parts.query, keep_blank_values=True))
        problems = [
            problem
            for problem, missing in (
                ("no user", not parts.username),
                ("no host", not parts.hostname),
                ("port 0", port == 0),
                ("no database", not database or "/" in database),
                ("a #fragment", bool(parts.fragment)),
                (
                    "a password in the query (put it after the user)",
                    any(key.lower() == "password" for key, _ in query),
                ),
            )
            if missing
        ]
        if problems:
            listed = ", ".join(problems)
            raise ConfigError(f"ledger {redacted}: {listed}; expected {_POSTGRES_FORM}")
        return cls(
            redacted=redacted,
            username=unquote(parts.username or ""),
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=port,
            database=database,
            query=query,
        )

    @property
    def is_sqlite(self) -> bool:
        """Return whether the ledger is a SQLite file (else a PostgreSQL database)."""
        return self.path is not None

    @property
    def missing(self) -> bool:
        """Return whether the ledger is a SQLite file not created yet (a database never is)."""
        return self.path is not None and not self.path.exists()

    @property
    def sqlalchemy_url(self) -> URL:
        """Return the URL for ``sqlalchemy.create_engine``: sqlite, or postgresql+psycopg."""
        # Imported here: SQLAlchemy takes ~0.15 s to import, and most commands open no ledger.
        from sqlalchemy.engine import URL

        if self.path is not None:
            return URL.create("sqlite", database=str(self.path))
        return URL.create(
            "postgresql+psycopg",
            username=self.username,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=dict(self.query),
        )

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"LedgerLocation({self.redacted!r})"


def resolve_ledger(
    value: str | Path | None,
    env: Mapping[str, str] | None = None,
    default: Path = DEFAULT_LEDGER,
) -> LedgerLocation:
    """Return the ledger's location: an explicit value, else FLEET_LEDGER, else the default.

    An empty FLEET_LEDGER counts as unset; an explicit empty value is an error. A ``Path`` is a
    file, whatever its text.
    """
    env = os.environ if env is None else env
    if value is None:
        value = env.get("FLEET_LEDGER") or default
    if isinstance(value, Path):
        return LedgerLocation(redacted=str(value), path=value)
    return LedgerLocation.parse(value)
