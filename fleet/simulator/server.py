"""Running the simulator on uvicorn: blocking, in a background thread, or in a child process.

Every variant listens on loopback only. The thread variant shares the caller's interpreter (and CPU
core); the process variant does not, which is what a benchmark of a client wants.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
import uvicorn

from fleet.config import is_loopback
from fleet.simulator.app import SimulatorApp
from fleet.simulator.catalog import Catalog
from fleet.simulator.catalog_file import load_catalog
from fleet.simulator.config import CLI_SETTINGS, SimulatorConfig
from fleet.simulator.gateway import Clock
from fleet.simulator.profile import load_profile_settings

__all__ = [
    "REHEARSAL_LEDGER",
    "RunningSimulator",
    "SimulatorProcess",
    "build_parser",
    "config_from_args",
    "main",
    "profiled",
    "run",
    "running_simulator",
    "serve",
    "settings_argv",
]

ENV_ACCESS_KEY: Final = "FLEET_SIM_ACCESS_KEY"
ENV_SECRET_KEY: Final = "FLEET_SIM_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
# Rehearsals keep their own ledger: a user pasting the export line never mixes simulated
# servers into the ledger of real ones (.fleet/ledger.db).
REHEARSAL_LEDGER: Final = Path(".fleet") / "rehearsal.db"
_URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class _IntentionalDrop(logging.Filter):
    """Silence uvicorn's complaint about responses that ``drop_after`` leaves unfinished."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "ASGI callable returned without completing response."


_DROP_FILTER = _IntentionalDrop()


def _check_loopback(host: str) -> None:
    if not is_loopback(host):
        raise ValueError(f"the simulator listens on loopback only, not {host!r}")


def _uvicorn_server(app: SimulatorApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # the admin endpoints trust the real peer address only
        server_header=False,
        date_header=False,  # the app's own, on its clock (NCP's clock, as clients see it)
        timeout_graceful_shutdown=2,
    )
    error_logger = logging.getLogger("uvicorn.error")
    if _DROP_FILTER not in error_logger.filters:
        error_logger.addFilter(_DROP_FILTER)
    return uvicorn.Server(config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that name it, and without
    # it Nagle holds each response's body behind its headers for a delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready: Callable[[str], None] | None = None,
    catalog: Catalog | None = None,
) -> None:
    """Serve the simulator until interrupted; ``ready`` gets the URL once it accepts requests.

    ``catalog`` is the account's catalog when already loaded; else ``config.catalog`` is read.

    Raises:
        ValueError: ``host`` is not a loopback address.

    """
    _check_loopback(host)
    sock = _bind("127.0.0.1" if host == "localhost" else host, port)
    server = _uvicorn_server(SimulatorApp(config, catalog=catalog))

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn offers a flag, not an event, to say it is serving.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if server.started and ready is not None:
            ready(_url(sock))
        await task

    try:
        asyncio.run(run())
    finally:
        sock.close()


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator that is serving: its URL, its starting config, and its admin endpoints."""

    url: str
    config: SimulatorConfig

    def state(self) -> dict[str, Any]:
        """Return GET /_admin/state: counters, current config and live servers."""
        response = httpx.get(f"{self.url}/_admin/state", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change run-time settings (rate, burst, latency, faults ...); return the new config."""
        response = httpx.post(f"{self.url}/_admin/config", json=changes, timeout=10)
        if response.status_code != 200:
            raise ValueError(response.json().get("error", response.text))
        result: dict[str, Any] = response.json()["config"]
        return result

    def reset(self) -> None:
        """Forget every server, counter, logged call and fault rule."""
        httpx.post(f"{self.url}/_admin/reset", timeout=10).raise_for_status()

    def faults(self, *rules: dict[str, Any]) -> list[dict[str, Any]]:
        """Add on-demand fault rules (POST /_admin/faults); return the rules left to play.

        A rule: ``{"action": "createServerInstances", "fault": "fail_after", "times": 1,
        "serverName": "web-003", "regionCode": "JPN"}`` (the last three optional).
        """
        response = httpx.post(f"{self.url}/_admin/faults", json=list(rules), timeout=10)
        if response.status_code != 200:
            raise ValueError(response.json().get("error", response.text))
        result: list[dict[str, Any]] = response.json()["faults"]
        return result

    def server(self, no: str, action: str, **fields: str) -> dict[str, Any]:
        """Change one server out of band (POST /_admin/servers/NO): stop, terminate, hold, show."""
        response = httpx.post(
            f"{self.url}/_admin/servers/{no}", json={"action": action, **fields}, timeout=10
        )
        if response.status_code != 200:
            raise ValueError(response.json().get("error", response.text))
        result: dict[str, Any] = response.json()["server"]
        return result

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Return the API calls received (GET /_admin/calls), of one action or all."""
        params = {"action": action} if action is not None else {}
        response = httpx.get(f"{self.url}/_admin/calls", params=params, timeout=30)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["calls"]
        return result


class _ThreadServer:
    """uvicorn on a background thread with its own event loop."""

    def __init__(
        self,
        config: SimulatorConfig,
        port: int,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.app = SimulatorApp(
            config,
            catalog=catalog,
            clock=clock or time.monotonic,
            wall_clock=wall_clock or time.time,
        )
        self.server = _uvicorn_server(self.app)
        self.sock = _bind("127.0.0.1", port)
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name="fleet-simulator",
            daemon=True,
        )

    def start(self, timeout: float = 10.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.005)
        return _url(self.sock)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.sock.close()


class SimulatorProcess:
    """The simulator in a child Python process (``python -m fleet.simulator``), as a context."""

    def __init__(
        self, config: SimulatorConfig, port: int = 0, *, startup_timeout: float = 20.0
    ) -> None:
        self.config = config
        self.port = port
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.simulator: RunningSimulator | None = None
        self.banner: list[str] = []  # what the child printed at start (URL, keys, export line)

    def _argv(self) -> list[str]:
        argv = [sys.executable, "-m", "fleet.simulator", "--port", str(self.port)]
        config = self.config
        if config.catalog is not None:  # the child runs elsewhere: give it the file's full path
            config = replace(config, catalog=str(Path(config.catalog).resolve()))
        return argv + settings_argv(config)

    def start(self) -> RunningSimulator:
        """Start the child and wait until its admin endpoint answers."""
        env = dict(os.environ)
        # The keys go by environment, not argv, so they stay out of the process list.
        env[ENV_ACCESS_KEY] = self.config.access_key
        env[ENV_SECRET_KEY] = self.config.secret_key
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self._proc = subprocess.Popen(  # noqa: S603 (our own module, argv built here)
            self._argv(), stdout=subprocess.PIPE, text=True, env=env, cwd=_PROJECT_ROOT
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc, lines), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        url = None
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError("the simulator process did not start")
            self.banner.append(line.rstrip("\n"))
            match = _URL_RE.search(line)
            if url is None and match:
                url = match.group(0)
            if url is not None and line.startswith("export "):
                break
        simulator = RunningSimulator(url, self.config)
        while True:
            try:
                simulator.state()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the simulator process does not answer") from None
                time.sleep(0.02)
        self.simulator = simulator
        return simulator

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> RunningSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Forward the child's stdout lines (and keep draining it so the child never blocks)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


@contextlib.contextmanager
def running_simulator(
    config: SimulatorConfig | None = None,
    port: int = 0,
    *,
    process: bool = False,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    catalog: Catalog | None = None,
) -> Iterator[RunningSimulator]:
    """Run a simulator on 127.0.0.1 (a free port by default) for the duration of a ``with``.

    Args:
        config: the simulator's settings (random keys and defaults when None).
        port: the port to listen on, 0 for any free one.
        process: run it in a child process (its own CPU core) instead of a background thread.
        clock: the monotonic clock of lifecycles and the token bucket (thread only; tests pass
            a fake one to step time).
        wall_clock: the epoch-seconds clock of the timestamp check and createDate (thread only).
        catalog: the account's catalog as an object (thread only; ``config.catalog`` names a
            file for either variant; neither: the built-in one).

    Raises:
        ValueError: clocks or a catalog object were given with ``process=True``, or the
            catalog file is unreadable.
        RuntimeError: the simulator did not start.

    """
    config = config if config is not None else SimulatorConfig()
    if process:
        if clock is not None or wall_clock is not None or catalog is not None:
            raise ValueError("clocks and catalog objects cannot be given to a simulator process")
        with SimulatorProcess(config, port) as simulator:
            yield simulator
        return
    runner = _ThreadServer(config, port, clock, wall_clock, catalog)
    url = runner.start()
    try:
        yield RunningSimulator(url, config)
    finally:
        runner.stop()


# ---------------------------------------------------------------------------------------------
# Command line (``python -m fleet.simulator``; the project's ``fleet simulator`` calls ``main``)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the simulator's command line (a flag per setting)."""
    p = argparse.ArgumentParser(
        prog="fleet simulator",
        description="Run a local NCP VPC Server API simulator (loopback only) for rehearsals.",
        allow_abbrev=False,  # a flag given is a flag named in full: it wins over --profile
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="a profile `fleet probe` wrote: behave as measured (flags given win over it)",
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    p.add_argument("--access-key", help=f"access key (default: ${ENV_ACCESS_KEY}, else random)")
    p.add_argument("--secret-key", help=f"secret key (default: ${ENV_SECRET_KEY}, else random)")
    for setting in CLI_SETTINGS:
        text = setting.help
        if setting.default is not None:  # an optional setting's text says what unset means
            text += f" (default {setting.default})"
        if setting.kind is bool:
            p.add_argument(
                setting.flag,
                action=argparse.BooleanOptionalAction,
                default=setting.default,
                help=text,
            )
        else:
            p.add_argument(setting.flag, type=setting.kind, default=setting.default, help=text)
    return p


def settings_argv(config: SimulatorConfig) -> list[str]:
    """Return the flags that give a simulator process these settings (keys excluded)."""
    argv: list[str] = []
    for setting in CLI_SETTINGS:
        value = getattr(config, setting.name)
        if value is None:
            continue  # None is every optional setting's default: nothing to say
        if isinstance(value, bool):
            argv.append(setting.flag if value else "--no-" + setting.flag[2:])
        else:
            argv += [setting.flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def config_from_args(
    args: argparse.Namespace, env: dict[str, str] | None = None
) -> SimulatorConfig:
    """Build the config from parsed flags, the keys from flags, else environment, else random."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {setting.name: getattr(args, setting.name) for setting in CLI_SETTINGS}
    access = args.access_key or env.get(ENV_ACCESS_KEY)
    secret = args.secret_key or env.get(ENV_SECRET_KEY)
    if access:
        values["access_key"] = access
    if secret:
        values["secret_key"] = secret
    return SimulatorConfig(**values)


def _named(argv: list[str]) -> set[str]:
    """Return the settings whose flags the command line names."""
    flags = {setting.flag: setting.name for setting in CLI_SETTINGS}
    flags |= {"--no-" + s.flag[2:]: s.name for s in CLI_SETTINGS if s.kind is bool}
    return {flags[arg.split("=", 1)[0]] for arg in argv if arg.split("=", 1)[0] in flags}


def profiled(config: SimulatorConfig, path: str, keep: set[str]) -> SimulatorConfig:
    """Return the config with the settings a probe's profile gives, except those in ``keep``."""
    settings = load_profile_settings(path)
    return replace(config, **{k: v for k, v in settings.items() if k not in keep})


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line; print its URL, keys and export line; return 0."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args, argv)
    except ValueError as error:
        parser.error(str(error))


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Serve as the parsed flags (``argv``, as given) say until interrupted; return 0.

    A probe's profile (``--profile``) gives the settings the command line does not name.

    Raises:
        ValueError: a bad setting, a host not on loopback or an unreadable catalog, before
            anything is served.

    """
    config = config_from_args(args)
    if args.profile:
        config = profiled(config, args.profile, _named(argv))
    _check_loopback(args.host)
    # Read once: a bad file is refused before serving, a good one is what is served.
    catalog = load_catalog(config.catalog) if config.catalog is not None else None

    def ready(url: str) -> None:
        # A local rehearsal tool: printing the keys is the point, so a user can paste them.
        print(f"fleet simulator serving on {url}", flush=True)
        if args.profile:
            print(f"behaving as measured in {args.profile}", flush=True)
        print(f"access key: {config.access_key}", flush=True)
        print(f"secret key: {config.secret_key}", flush=True)
        print(
            f"export NCLOUD_API_GW={shlex.quote(url)}"
            f" NCLOUD_ACCESS_KEY={shlex.quote(config.access_key)}"
            f" NCLOUD_SECRET_KEY={shlex.quote(config.secret_key)}"
            f" FLEET_LEDGER={REHEARSAL_LEDGER.as_posix()}",
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        serve(config, args.host, args.port, ready=ready, catalog=catalog)
    return 0
