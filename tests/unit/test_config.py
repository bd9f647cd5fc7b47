"""Keys, endpoints and the ledger's location: where they come from; errors that show no secret."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from fleet.config import (
    SITES,
    LedgerLocation,
    load_credentials,
    redact_url,
    resolve_endpoint,
    resolve_ledger,
)
from fleet.errors import ConfigError
from fleet.ledger import DEFAULT_LEDGER


def write_key_file(home: Path, text: str | bytes) -> Path:
    """Write ``home/.ncloud/configure`` as the ncloud CLI would."""
    path = home / ".ncloud" / "configure"
    path.parent.mkdir(exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def everything_said(error: BaseException) -> str:
    """The message and the whole printed traceback, chained exceptions included."""
    return str(error) + "".join(traceback.format_exception(error))


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


@pytest.mark.parametrize(
    "secret",
    ["%", "50%", "ab%cd", "%(x)s", "%(ncloud_access_key_id)s", "%%", "p#q;r", "k=v:w", " x%y "],
)
def test_secrets_are_read_as_written(tmp_path: Path, secret: str) -> None:
    """The key file is read without interpolation: '%', '%(x)s', '#', ';', '=' stay as written."""
    write_key_file(
        tmp_path, f"[DEFAULT]\nncloud_access_key_id = AK1\nncloud_secret_access_key = {secret}\n"
    )
    assert load_credentials({}, tmp_path).secret_key == secret.strip()


@pytest.mark.parametrize(
    "text",
    [
        "ncloud_access_key_id = AK1\nncloud_secret_access_key = SK1\n",  # no section, as old docs
        "# keys\n\n[DEFAULT]\nncloud_access_key_id = AK1\nncloud_secret_access_key = SK1\n",
        "\ufeff[DEFAULT]\nNCLOUD_ACCESS_KEY_ID = AK1\nncloud_secret_access_key=SK1\n",
    ],
)
def test_key_file_shapes(tmp_path: Path, text: str) -> None:
    """With or without a [DEFAULT] header, after comments or a BOM, the keys are found."""
    write_key_file(tmp_path, text)
    creds = load_credentials({}, tmp_path)
    assert (creds.access_key, creds.secret_key, creds.api_url) == ("AK1", "SK1", None)


PROFILES = """\
[DEFAULT]
ncloud_access_key_id = AK-DEFAULT
ncloud_secret_access_key = SK-DEFAULT
ncloud_api_url = https://ncloud.apigw.ntruss.com

[project]
ncloud_access_key_id = AK-PROJECT
ncloud_secret_access_key = SK-PROJECT
ncloud_api_url = https://ncloud.apigw.gov-ntruss.com

[bare]
ncloud_access_key_id = AK-BARE
ncloud_secret_access_key = SK-BARE

[half]
ncloud_access_key_id = AK-HALF
"""
BOTH_ENV_KEYS = {"NCLOUD_ACCESS_KEY": "AK-ENV", "NCLOUD_SECRET_KEY": "SK-ENV"}


@pytest.mark.parametrize(
    ("profile", "env", "expected"),
    [
        (None, {}, ("AK-DEFAULT", "SK-DEFAULT", "https://ncloud.apigw.ntruss.com", "[DEFAULT]")),
        ("project", {}, ("AK-PROJECT", "SK-PROJECT", "https://ncloud.apigw.gov-ntruss.com", "")),
        (None, {"NCLOUD_PROFILE": "project"}, ("AK-PROJECT", "SK-PROJECT", "https://", "")),
        # The argument beats NCLOUD_PROFILE.
        ("DEFAULT", {"NCLOUD_PROFILE": "project"}, ("AK-DEFAULT", "SK-DEFAULT", "https://", "")),
        # A profile asked for by name beats keys in the environment...
        ("project", BOTH_ENV_KEYS, ("AK-PROJECT", "SK-PROJECT", "https://", "[project]")),
        # ...which beat NCLOUD_PROFILE.
        (None, {**BOTH_ENV_KEYS, "NCLOUD_PROFILE": "project"}, ("AK-ENV", "SK-ENV", None, "")),
        # A profile inherits nothing from [DEFAULT], not even its endpoint.
        ("bare", {}, ("AK-BARE", "SK-BARE", None, "[bare]")),
    ],
)
def test_profile_selection(
    tmp_path: Path,
    profile: str | None,
    env: dict[str, str],
    expected: tuple[str, str, str | None, str],
) -> None:
    """The profile argument, then environment keys, then NCLOUD_PROFILE, then [DEFAULT]."""
    write_key_file(tmp_path, PROFILES)
    creds = load_credentials(env, tmp_path, profile=profile)
    access, secret, api_url, source = expected
    assert (creds.access_key, creds.secret_key) == (access, secret)
    if api_url is None:
        assert creds.api_url is None
    else:
        assert creds.api_url is not None and creds.api_url.startswith(api_url)
    assert source in creds.source


@pytest.mark.parametrize(
    ("text", "profile", "env", "message"),
    [
        (PROFILES, "nope", {}, r"configure: no profile \[nope\] in it \(asked for\)"),
        (PROFILES, None, {"NCLOUD_PROFILE": "nope"}, r"\[nope\] .*named by NCLOUD_PROFILE"),
        (PROFILES, "default", {}, r"no profile \[default\]"),  # names are case-sensitive
        ("[project]\nncloud_access_key_id = A\n", None, {}, r"no profile \[DEFAULT\]"),
        (PROFILES, "half", {}, r"profile \[half\] has no ncloud_secret_access_key"),
        (None, "project", {}, r"\[project\] was asked for, but there is no .*configure"),
    ],
)
def test_missing_profiles_are_named_with_the_file(
    tmp_path: Path, text: str | None, profile: str | None, env: dict[str, str], message: str
) -> None:
    """A missing or incomplete profile is an error naming it and the file, and nothing inside."""
    if text is not None:
        write_key_file(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_credentials(env, tmp_path, profile=profile)
    assert "SK-" not in everything_said(caught.value)


SECRET = "TOP%SECRET%(x)s"


@pytest.mark.parametrize(
    ("text", "profile"),
    [
        (f"[broken\nncloud_secret_access_key = {SECRET}", None),
        (f"[DEFAULT]\n{SECRET}\n", None),  # a line that is only the secret
        (f"ncloud_secret_access_key = {SECRET}\nncloud_secret_access_key = {SECRET}\n", None),
        (f"[DEFAULT]\nncloud_secret_access_key = {SECRET}\n[DEFAULT]\n", None),
        (f"[DEFAULT]\nncloud_secret_access_key = {SECRET}\n", None),  # no access key
        (b"\xff[DEFAULT]\nncloud_secret_access_key = " + SECRET.encode(), None),  # not UTF-8
        (f"[DEFAULT]\nncloud_access_key_id = A\nncloud_secret_access_key = {SECRET}\n", "x"),
    ],
)
def test_key_file_errors_never_show_the_secret(
    tmp_path: Path, text: str | bytes, profile: str | None
) -> None:
    """However the key file is wrong, the error names the file and quotes none of its lines."""
    write_key_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_credentials({}, tmp_path, profile=profile)
    said = everything_said(caught.value)
    assert "configure" in str(caught.value)
    assert "SECRET" not in said and "ncloud_secret_access_key =" not in said


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


@pytest.mark.parametrize(
    ("value", "redacted", "url"),
    [
        ("ledger.db", "ledger.db", "sqlite:///ledger.db"),
        (".fleet/ledger.db", ".fleet/ledger.db", "sqlite:///.fleet/ledger.db"),
        ("/var/lib/fleet/l.db", "/var/lib/fleet/l.db", "sqlite:////var/lib/fleet/l.db"),
        (
            "postgresql://fleet:S3CRET@db.internal:5432/fleet",
            "postgresql://fleet:***@db.internal:5432/fleet",
            "postgresql+psycopg://fleet:S3CRET@db.internal:5432/fleet",
        ),
        (
            "postgres://fleet@127.0.0.1/ledger",
            "postgres://fleet@127.0.0.1/ledger",
            "postgresql+psycopg://fleet@127.0.0.1/ledger",
        ),
        (
            "postgresql+psycopg://u:S3%40CRET%3A%25@[::1]:6543/db?sslmode=require",
            "postgresql+psycopg://u:***@[::1]:6543/db?sslmode=require",
            "postgresql+psycopg://u:S3%40CRET%3A%25@[::1]:6543/db?sslmode=require",
        ),
        (  # an unquoted '@' in the password: the host is after the last one
            "POSTGRESQL://u:S3@CRET@h/db",
            "POSTGRESQL://u:***@h/db",
            "postgresql+psycopg://u:S3%40CRET@h/db",
        ),
    ],
)
def test_ledger_locations(value: str, redacted: str, url: str) -> None:
    """A path is a SQLite file; a PostgreSQL URL keeps its password for the driver alone."""
    location = LedgerLocation.parse(value)
    assert location.is_sqlite == (location.path is not None) == ("://" not in value)
    assert location.redacted == str(location) == redacted
    assert repr(location) == f"LedgerLocation({redacted!r})"
    assert location.sqlalchemy_url.render_as_string(hide_password=False) == url
    if location.path is not None:
        assert location.path == Path(value)


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://fleet:S3CRET@db:5432/fleet",
        "postgresql+psycopg://u:S3%40CRET@[::1]/db",
        "postgres://u:S3@CRET@h/db",
    ],
)
def test_a_ledger_password_never_shows(value: str) -> None:
    """Neither the location nor its SQLAlchemy URL shows the password in any printed form."""
    location = LedgerLocation.parse(value)
    assert location.password is not None and "S3" in location.password
    shown = [
        str(location),
        repr(location),
        f"{location}",
        repr([location]),
        location.redacted,
        str(location.sqlalchemy_url),
        repr(location.sqlalchemy_url),
    ]
    assert not [text for text in shown if "S3" in text]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("mysql://u:S3CRET@h/db", "unsupported scheme 'mysql'"),
        ("sqlite:///x.db", "unsupported scheme 'sqlite'; give a file path"),
        ("postgresql://u:S3CRET@h", "no database"),
        ("postgresql://u:S3CRET@h/", "no database"),
        ("postgresql://:S3CRET@h/db", "no user"),
        ("postgresql://h/db", "no user"),
        ("postgresql://u:S3CRET@/db", "no host"),
        ("postgresql://u:S3CRET@h:0/db", "port 0"),
        ("postgresql://u:S3CRET@h:port/db", "not of the form"),
        ("postgresql://u:S3CRET@h:99999/db", "not of the form"),
        ("postgresql://u:S3/CRET@h/db", "not of the form"),  # an unquoted '/' in the password
        ("postgresql://u:S3CRET@h/db#x", "fragment"),
        ("postgresql://u@h/db?password=S3CRET", "password in the query"),
    ],
)
def test_bad_ledger_locations(value: str, message: str) -> None:
    """Other schemes and incomplete URLs are configuration errors that show the URL redacted."""
    with pytest.raises(ConfigError, match=message) as caught:
        LedgerLocation.parse(value)
    assert "S3" not in everything_said(caught.value)
    if "S3" in value:
        assert "***" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        (None, {}, str(DEFAULT_LEDGER)),
        (None, {"FLEET_LEDGER": ""}, str(DEFAULT_LEDGER)),  # empty counts as unset
        (None, {"FLEET_LEDGER": "postgres://u:S3CRET@h/db"}, "postgres://u:***@h/db"),
        ("x.db", {"FLEET_LEDGER": "postgres://u:S3CRET@h/db"}, "x.db"),
        ("postgresql://u@h/db", {"FLEET_LEDGER": "x.db"}, "postgresql://u@h/db"),
        (Path("y.db"), {"FLEET_LEDGER": "x.db"}, "y.db"),  # a Path is a file, whatever its text
    ],
)
def test_ledger_resolution(value: str | Path | None, env: dict[str, str], expected: str) -> None:
    """An explicit value beats FLEET_LEDGER, which beats the default (fleet.ledger's)."""
    assert resolve_ledger(value, env).redacted == expected


def test_ledger_resolution_default_and_empty_value() -> None:
    """The default can be changed; an explicit empty value is an error, not the default."""
    assert resolve_ledger(None, {}, default=Path("z.db")).path == Path("z.db")
    with pytest.raises(ConfigError, match="empty"):
        resolve_ledger("", {"FLEET_LEDGER": "x.db"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:S3CRET@h/db", "postgresql://u:***@h/db"),
        (
            'connection to "postgres://u:S3%40CRET@h:5432/db" failed: timeout',
            'connection to "postgres://u:***@h:5432/db" failed: timeout',
        ),
        ("at postgresql+psycopg://u:S3@CRET@h/db.", "at postgresql+psycopg://u:***@h/db."),
        (
            "a https://t:S3CRET@x/y b mysql://r:S3CRET@z c",
            "a https://t:***@x/y b mysql://r:***@z c",
        ),
        ("postgresql://:S3CRET@h/db", "postgresql://:***@h/db"),
        ("host=h user=u password=S3CRET dbname=d", "host=h user=u password=*** dbname=d"),
        ("postgresql://u@h/db?password=S3CRET&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://h:5432/db, user u", "postgresql://h:5432/db, user u"),
        ("no URL at all: a:b@c", "no URL at all: a:b@c"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    """Every scheme://user:password@ in a text loses its password, and only that."""
    assert redact_url(text) == expected
