"""One local Prefect server that one-off commands share, started once and found again.

Without a Prefect API to talk to, Prefect starts a temporary server in every process that runs a
flow and stops it at the end: about 4 s before the first task, 1.4 s after the last, on every
command, and the runs are out of sight once it stops. So a command that runs a flow (`fleet
provision`, `fleet teardown`) with no API configured starts `prefect server start` on a free
loopback port in the background, as soon as the command begins (it boots while the inventory
is read), and leaves it running; the next command finds it through a small file under
PREFECT_HOME and starts sending at once. Its UI shows every run at the address the command
prints. `fleet server` says where it is; `fleet server --stop` stops it.

A configured API (PREFECT_API_URL, in the environment or the active profile) is always used
instead; FLEET_PREFECT_SERVER=temporary keeps Prefect's own temporary server per command.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalServer", "found", "serving", "start_soon", "stop", "tell"]

STATE = "fleet-server.json"  # under PREFECT_HOME: where the shared server listens, its process
LOG = "fleet-server.log"
HEALTH_TIMEOUT = 0.5  # seconds for one health check of a server thought to be up


@dataclass(frozen=True)
class LocalServer:
    """A local Prefect server fleet started: its API's URL, its process, and its home."""

    url: str  # the API's, ending in /api
    pid: int
    home: Path

    @property
    def ui(self) -> str:
        """Return the address of its UI."""
        return self.url.removesuffix("/api")

    def alive(self) -> bool:
        """Whether its process still runs, and is a Prefect server (not a reused process id)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        proc = Path("/proc") / str(self.pid)
        try:
            exited = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            ours = b"prefect" in proc.joinpath("cmdline").read_bytes()
        except (OSError, IndexError):
            return True  # no /proc to ask: the signal said it runs
        return ours and not exited

    def healthy(self, timeout: float = HEALTH_TIMEOUT) -> bool:
        """Whether its API answers its health check now."""
        import httpx

        try:
            return httpx.get(f"{self.url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self, timeout: float) -> bool:
        """Wait until it answers, or it died, or ``timeout`` passed; return whether it answers."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if self.healthy():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return False


def _home() -> Path:
    home = os.environ.get("PREFECT_HOME") or "~/.prefect"
    return Path(home).expanduser()


def configured() -> bool:
    """Whether this process has a Prefect API of its own (environment, profile or settings)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect.settings" in sys.modules:  # imported: its settings (a test harness's) decide
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    # Not imported (1.2 s): the active profile's file, as Prefect would read it.
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or _home() / "profiles.toml")
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    settings = profiles.get("profiles", {}).get(active, {})
    return bool(settings.get("PREFECT_API_URL"))


def wanted() -> bool:
    """Whether this command should use the shared local server."""
    temporary = os.environ.get("FLEET_PREFECT_SERVER", "").lower() == "temporary"
    return not temporary and not configured()


def found(home: Path | None = None) -> LocalServer | None:
    """Return the shared server recorded under PREFECT_HOME, if its process still runs."""
    home = home or _home()
    try:
        data = json.loads((home / STATE).read_text(encoding="utf-8"))
        server = LocalServer(str(data["url"]), int(data["pid"]), home)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if server.alive() else None


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """Hold PREFECT_HOME's lock for the shared server: two commands never start two."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / f"{STATE}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(home: Path) -> LocalServer:
    """Start ``prefect server start`` on a free loopback port, in a session of its own."""
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--analytics-off"]
    with (home / LOG).open("ab") as log:
        # Its own session: it outlives this command, and no Ctrl-C meant for the command reaches it.
        process = subprocess.Popen(  # noqa: S603 (Prefect's own command, argv built here)
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
            start_new_session=True,
        )
    server = LocalServer(f"http://127.0.0.1:{port}/api", process.pid, home)
    state = {"url": server.url, "pid": server.pid}
    (home / STATE).write_text(json.dumps(state), encoding="utf-8")
    return server


def start_soon() -> LocalServer | None:
    """Make sure the shared server runs or is starting (do not wait for it); None: not used."""
    if not wanted():
        return None
    home = _home()
    with _locked(home):
        return found(home) or _spawn(home)


def _startup_timeout() -> float:
    try:
        return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 90)
    except ValueError:
        return 90.0


@contextlib.contextmanager
def serving() -> Iterator[LocalServer | None]:
    """Point Prefect at the shared server (started if need be) for the block; None: not used.

    A server that does not come up in time leaves Prefect to its temporary one, as before.
    """
    server = start_soon()
    if server is None or not server.wait(_startup_timeout()):
        if server is not None:
            print(f"warning: no local Prefect server (see {server.home / LOG})", file=sys.stderr)
        yield None
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.url}):
        yield server


def stop(home: Path | None = None) -> LocalServer | None:
    """Stop the shared server, if one runs; return it."""
    home = home or _home()
    with _locked(home):
        server = found(home)
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while server.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if server.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            (home / STATE).unlink()
    return server


def tell(*, stopping: bool = False) -> tuple[int, str]:
    """Return `fleet server`'s exit code and line: where the server is, or that it stopped."""
    if stopping:
        stopped = stop()
        return 0, f"stopped: {stopped.ui}" if stopped else "no local Prefect server runs"
    running = found()
    if running is None:
        return 1, "no local Prefect server runs; `fleet provision` starts one when it needs it"
    state = "up" if running.healthy() else "starting"
    return 0, f"{state}: UI {running.ui}, API {running.url} (pid {running.pid})"
