"""A throwaway PostgreSQL server for the tests and the benchmarks: a real one, never a mock.

    with PostgresServer() as pg:
        url = pg.create_database("t1")  # postgresql://fleet:PASSWORD@127.0.0.1:PORT/t1

The server comes from the machine's binaries (``pg_config --bindir``, else the newest
/usr/lib/postgresql/*/bin) and lives in a temporary directory that is removed on exit, errors
included. PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user that
Debian's package creates (else ``nobody``); under anyone else it runs as that user.

It listens on 127.0.0.1 only, on a free port, and asks for the superuser's password over TCP
(scram-sha-256), so URLs with a password are exercised. Its unix socket trusts its callers, which
is safe because the socket lives in the private (0700) temporary directory; the harness uses it to
create databases without a password round trip.

Without ``durable``, fsync, synchronous commits and full-page writes are off: a test server loses
nothing worth keeping in a crash and runs several times faster. Benchmarks pass ``durable=True``
to measure what production would see.

Run as a script, it prints the binaries' directory, or says why there are none and exits 1
(``.ci/run`` asks it before installing them).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, LiteralString
from urllib.parse import quote

__all__ = [
    "HOST",
    "PASSWORD",
    "USER",
    "PostgresError",
    "PostgresServer",
    "PostgresUnavailable",
    "find_bindir",
]

HOST = "127.0.0.1"
USER = "fleet"
# URL-special characters on purpose: whatever builds, parses or redacts a URL from it must quote.
PASSWORD = "test-p@ss:w%rd"
BINARIES = ("initdb", "postgres", "pg_isready")
# Durability a throwaway server does without (PostgreSQL's defaults are all "on").
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# Plain identifiers only, so a database name never needs quoting in a URL.
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run on this machine at all: no server binaries, or no user to run them."""


class PostgresError(RuntimeError):
    """The binaries are here but initdb or the server failed; the message carries their output."""


def find_bindir() -> Path:
    """Return the directory holding initdb, postgres and pg_isready; raise PostgresUnavailable."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            done = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            )
            candidates.append(Path(done.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    # pg_config may come from libpq-dev alone, and Debian keeps the server off PATH: look there too.
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates += sorted(debian, key=_major_version, reverse=True)
    for bindir in candidates:
        if _has_binaries(bindir):
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, postgres, pg_isready) in `pg_config --bindir` or "
        "/usr/lib/postgresql/*/bin; install them, e.g. `apt-get install postgresql-15`"
    )


def _major_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in BINARIES)


def _server_account() -> pwd.struct_passwd | None:
    """Return the unprivileged user to run the server as under root, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable(
        "running as root, and there is no 'postgres' or 'nobody' user to run PostgreSQL as "
        "(it refuses to run as root); install postgresql-15, which creates 'postgres'"
    )


def _free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _environment() -> dict[str, str]:
    # The caller's PGDATA, PGHOST, PGPORT, PGUSER... would point our tools at another server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class PostgresServer:
    """A PostgreSQL server of its own, in a temporary directory, for one test session or benchmark.

    Attributes set while running: ``port``, ``base`` (the temporary directory: data, socket,
    ``server.log``). ``url`` names the superuser's own database (``fleet``).
    """

    def __init__(
        self, *, durable: bool = False, bindir: Path | None = None, startup_timeout: float = 30.0
    ) -> None:
        self.durable = durable
        self.bindir = bindir
        self.startup_timeout = startup_timeout
        self.host = HOST
        self.user = USER
        self.password = PASSWORD
        self.port = 0
        self.base: Path | None = None
        self._account: pwd.struct_passwd | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Return the URL of the superuser's own database, password included."""
        return self.url_for(USER)

    @property
    def log_path(self) -> Path:
        """Return where the server writes its log."""
        return self._base / "server.log"

    def url_for(self, database: str) -> str:
        """Return a ``postgresql://`` URL (password included) for one database of this server."""
        if not self.port:
            raise RuntimeError("the server is not running")
        return f"postgresql://{USER}:{quote(PASSWORD, safe='')}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        self._admin("CREATE DATABASE {}", name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever connections a test left open on it."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def cut_off(self, name: str) -> None:
        """Refuse new connections to a database and end the open ones: a database lost."""
        self._admin("ALTER DATABASE {} ALLOW_CONNECTIONS false", name)
        self._terminate(name)

    def restore(self, name: str) -> None:
        """Accept connections to a database again."""
        self._admin("ALTER DATABASE {} ALLOW_CONNECTIONS true", name)

    def _terminate(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self._base), port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the server's log (for error messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, RuntimeError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty server log)"

    def start(self) -> PostgresServer:
        """Run initdb in a new temporary directory, start the server and wait until it is ready."""
        if self._process is not None:
            raise RuntimeError("the server is already running")
        bindir = self.bindir or find_bindir()
        if not _has_binaries(bindir):
            raise PostgresUnavailable(f"{bindir} lacks one of {', '.join(BINARIES)}")
        self.bindir = bindir
        self._account = _server_account()
        self.base = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        try:
            self._chown(self.base)
            self._initdb()
            self._configure()
            self._launch()
            self.create_database(USER)  # initdb makes only "postgres"; ``url`` promises "fleet"
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown, then kill) and remove its directory; safe to repeat."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            self._shutdown(process)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.base is not None:
            # A killed server's backends may still be writing as they exit: remove what we can.
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        self.port = 0

    @property
    def _base(self) -> Path:
        if self.base is None:
            raise RuntimeError("the server is not running")
        return self.base

    @property
    def _data(self) -> Path:
        return self._base / "data"

    def _admin(self, statement: LiteralString, database: str) -> None:
        # Imported here, so that `python3 tests/support/pgserver.py` runs without the virtualenv.
        import psycopg
        from psycopg import sql

        if self._process is None:
            raise RuntimeError("the server is not running")
        if not _DATABASE_NAME.fullmatch(database):
            raise ValueError(f"database name {database!r}: [a-z_][a-z0-9_]*, 63 characters at most")
        # Over the unix socket (trusted, private directory): no password round trip.
        with psycopg.connect(
            host=str(self._base), port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(database)))

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _as_server_user(self) -> dict[str, Any]:
        """Return subprocess options that run a program as the server's user, in its directory."""
        options: dict[str, Any] = {"cwd": self._base, "env": _environment()}
        if self._account is not None:
            # Root's supplementary groups are dropped too: the server gets no privilege of ours.
            options.update(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        return options

    def _initdb(self) -> None:
        pwfile = self._base / "pwfile"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        self._chown(pwfile)
        command = [
            str(self._bin("initdb")),
            f"--pgdata={self._data}",
            f"--username={USER}",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            # A throwaway cluster: nothing to gain from syncing its initial files to disk.
            "--no-sync",
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                **self._as_server_user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()[-30:]
            raise PostgresError(f"initdb failed (exit {done.returncode}):\n" + "\n".join(output))

    def _configure(self) -> None:
        settings = {
            "listen_addresses": HOST,  # loopback only: nothing off this machine can reach it
            "unix_socket_directories": str(self._base),
            "max_connections": "100",
            **({} if self.durable else FAST),
        }
        # Appended, so these win over initdb's own lines; the file stays the server user's.
        with (self._data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/support/pgserver.py\n")
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())

    def _launch(self) -> None:
        self._log = self.log_path.open("ab")
        for attempt in range(3):
            self.port = _free_port()
            self._process = subprocess.Popen(
                [str(self._bin("postgres")), "-D", str(self._data), "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                **self._as_server_user(),
            )
            problem = self._wait_ready()
            if problem is None:
                return
            # Another program may take the free port between our probe and the server's bind.
            if "could not bind" in self.log_tail() and attempt < 2:
                self._shutdown(self._process)
                continue
            tail = self.log_tail()
            raise PostgresError(f"{problem}\n--- the server's log, last lines ---\n{tail}")

    def _wait_ready(self) -> str | None:
        """Return None once the server accepts connections, else why it never did."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        probe = [
            str(self._bin("pg_isready")),
            "--quiet",
            f"--host={HOST}",
            f"--port={self.port}",
            f"--username={USER}",
            f"--dbname={USER}",
            "--timeout=2",
        ]
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                return f"PostgreSQL exited with code {code} while starting"
            ready = subprocess.run(probe, env=_environment(), check=False, timeout=10)
            # Ours must still be alive: if it lost the bind, the probe reached another server.
            if ready.returncode == 0 and self._process.poll() is None:
                return None
            time.sleep(0.05)
        return (
            f"PostgreSQL did not accept connections on {HOST}:{self.port} "
            f"within {self.startup_timeout:g} s"
        )

    def _shutdown(self, process: subprocess.Popen[bytes]) -> None:
        # SIGINT is PostgreSQL's fast shutdown (what `pg_ctl stop -m fast` sends); pg_ctl itself
        # refuses to run as root, and the signal needs no pid file.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def _bin(self, name: str) -> Path:
        assert self.bindir is not None
        return self.bindir / name


if __name__ == "__main__":
    try:
        print(find_bindir())
    except PostgresUnavailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
