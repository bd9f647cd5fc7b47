"""An async client for NCP's VPC Server API: signed, rate-limited, retried, errors translated.

Every request is ``POST <base>/vserver/v2/<action>?responseFormatType=json`` with the parameters in
a form body, signed when it is sent (after any wait), so a retry carries a fresh signature.
Requests go through one long-lived ``httpx.AsyncClient`` (HTTP/1.1 on httpcore's pool, with
the environment's proxies and CA bundles for the real NCP). Only failures NCP did not process
are retried here; an ambiguous failure of a create goes back to the caller, which must look
before it creates again.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx

from fleet.config import Credentials
from fleet.errors import NcpError, ThrottledError
from fleet.options import DEFAULT_TIMEOUT
from fleet.states import Operation, ServerStatus

from .answers import answer_date, parse_response, translate_transport_errors
from .clock import NcpClock
from .ratelimit import Limiter
from .retrying import RetryPolicy, retryable_errors, retrying_for
from .shapes import Shape, answer
from .signing import signed_headers

__all__ = ["CreateResult", "NcpClient", "RetryPolicy", "ServerInstance"]

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return importlib.metadata.version("fleet")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "dev"


# The APIs a client speaks, by name: the server API, and the VPC API (VPCs, subnets).
API_PATHS = {"vserver": "/vserver/v2", "vpc": "/vpc/v2"}
QUERY = "responseFormatType=json"
USER_AGENT = f"fleet/{_version()} httpx/{httpx.__version__}"
PAGE_SIZE = 100
BATCH_SIZE = 100  # instance numbers per look-up / stop / terminate call

Params = Sequence[tuple[str, str]]
# Runs just before a request is signed and sent; what it returns (if anything) is sent instead of
# the call's parameters: the engine's claim, which puts the create marker into the description.
BeforeSend = Callable[[], Awaitable[Params | None]]


# What quote_plus leaves as it is: most names and values of a call, which need no quoting.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def form_body(params: Params) -> str:
    """Return the parameters as a form body, as ``urlencode`` would, quoting only what needs it."""
    plain = _PLAIN.fullmatch
    return "&".join(
        f"{k if plain(k) else quote_plus(k)}={v if plain(v) else quote_plus(v)}" for k, v in params
    )


@dataclass(frozen=True, slots=True)
class ServerInstance(Shape):
    """A server as NCP lists it (serverInstanceList), the whole record NCP returned in ``raw``."""

    instance_no: str = field(metadata=answer("serverInstanceNo"))
    name: str = field(metadata=answer("serverName"))
    status: ServerStatus = field(
        metadata=answer("serverInstanceStatus", code=True, read=ServerStatus)
    )
    operation: Operation = field(
        metadata=answer("serverInstanceOperation", code=True, read=Operation, missing="NULL")
    )
    region: str = field(metadata=answer("regionCode"))  # NCP's regionCode, as answered
    vpc_no: str = field(metadata=answer("vpcNo"))
    protected: bool = field(metadata=answer("isProtectServerTermination", read=bool, missing=False))
    create_date: str = field(metadata=answer("createDate"))
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    # What it runs, as NCP lists it ('' where NCP gives none): what a refresh compares.
    spec_code: str = field(default="", metadata=answer("serverSpecCode"))
    product_code: str = field(default="", metadata=answer("serverProductCode"))
    image_product_code: str = field(default="", metadata=answer("serverImageProductCode"))
    image_no: str = field(default="", metadata=answer("serverImageNo"))
    # The user's text, with our create marker at its end.
    description: str = field(default="", repr=False, metadata=answer("serverDescription"))

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> ServerInstance:
        """Build from one entry of NCP's serverInstanceList."""
        return cls.from_answer(item, raw=item)

    @property
    def ready(self) -> bool:
        """Whether the server runs with no operation under way."""
        return self.status == ServerStatus.RUN and self.operation == Operation.NULL


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What a successful createServerInstances returned."""

    servers: tuple[ServerInstance, ...]
    request_id: str


@dataclass(slots=True)
class ClientStats:
    """Counts of what the client sent and what came back."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    retries: int = 0


class _Changes:
    """Start stopped servers, change a stopped server's spec: methods of NcpClient."""

    # NcpClient's own (a class apart only to keep NcpClient's size readable).
    call: Callable[..., Awaitable[dict[str, Any]]]
    _control: Callable[[str, Sequence[str], str], Awaitable[list[ServerInstance]]]

    async def start_servers(
        self, instance_nos: Sequence[str], *, region: str = ""
    ) -> list[ServerInstance]:
        """Start stopped servers of one region (one call for up to a batch)."""
        return await self._control("startServerInstances", instance_nos, region)

    async def change_spec(
        self,
        instance_no: str,
        *,
        spec_code: str | None = None,
        product_code: str | None = None,
        region: str = "",
    ) -> ServerInstance:
        """Change a stopped server's spec in place: ``spec_code`` or (XEN/RHV) ``product_code``.

        Raises:
            ValueError: not exactly one of ``spec_code`` and ``product_code`` was given.
            NcpError: NCP refused or failed; an ambiguous failure is not sent again (a second
                change meets a server in operation CHNG): re-read the server instead.

        """
        codes = [("serverSpecCode", spec_code), ("serverProductCode", product_code)]
        given = [(name, code) for name, code in codes if code]
        if len(given) != 1:
            raise ValueError("give exactly one of spec_code and product_code")
        params = [("regionCode", region)] if region else []
        params += [("serverInstanceNo", instance_no), *given]
        payload = await self.call("changeServerInstanceSpec", params, idempotent=False)
        listed = payload.get("serverInstanceList") or [{"serverInstanceNo": instance_no}]
        return ServerInstance.from_api(listed[0])


class NcpClient(_Changes):
    """Calls NCP's VPC Server API; one instance per rollout, shared by all its tasks."""

    def __init__(
        self,
        credentials: Credentials,
        endpoint: str,
        *,
        limiter: Limiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_connections: int = 100,
    ) -> None:
        self._credentials = credentials
        self.endpoint = endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        # The path as signed is the path as sent: the gateway's own prefix, if any, goes before
        # every API's path.
        self._base_path = parts.path
        self.limiter = limiter or Limiter()
        self.retry = retry or RetryPolicy()
        self._wall_clock = wall_clock
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.stats = ClientStats()
        # NCP's own clock, from its answers' Date: a send's age is judged by it, never by ours.
        self.ncp_clock = NcpClock(clock)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),  # read, write, pool
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # Proxies and CA bundles from the environment apply to the real NCP; the local
            # simulator on loopback is always reached directly.
            trust_env=self.endpoint.startswith("https://"),
        )

    def __repr__(self) -> str:
        return f"NcpClient({self.endpoint!r}, {self._credentials!r})"

    async def __aenter__(self) -> NcpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def send_once(
        self,
        action: str,
        params: Params,
        before_send: BeforeSend | None = None,
        api: str = "vserver",
    ) -> dict[str, Any]:
        """Send one request, with no retry; return the action's response object or raise.

        ``before_send`` is awaited once the limiter lets the request go, just before it is
        signed and sent (the engine commits the server's in-flight mark there; if it raises,
        nothing is sent). Parameters it returns are sent in place of ``params``.
        """
        async with self.limiter.slot() as permit:
            if before_send is not None:
                params = await before_send() or params
            # Paced here, at the send, not only at the slot: the claim took a varying time.
            permit = await self.limiter.depart(permit)
            uri = f"{self._base_path}{API_PATHS[api]}/{action}?{QUERY}"
            headers = signed_headers(
                "POST",
                uri,
                int(self._wall_clock() * 1000),
                self._credentials.access_key,
                self._credentials.secret_key,
            )
            headers["content-type"] = "application/x-www-form-urlencoded"
            headers["user-agent"] = USER_AGENT
            self.stats.calls[action] += 1
            left = self._clock()
            with translate_transport_errors(action):
                response = await self._http.post(
                    self._origin + uri, content=form_body(params), headers=headers
                )
            self.ncp_clock.observe(answer_date(response.headers), left)
            try:
                result = parse_response(
                    action, response.status_code, response.content, response.headers
                )
            except NcpError as error:
                if isinstance(error, ThrottledError):
                    self.stats.throttled += 1
                    self.limiter.on_throttle(permit)
                self.stats.errors[error.kind.value] += 1
                raise
        self.limiter.on_success(permit)
        return result

    async def call(
        self,
        action: str,
        params: Params,
        *,
        idempotent: bool,
        before_send: BeforeSend | None = None,
        api: str = "vserver",
    ) -> dict[str, Any]:
        """Send a request, retrying what NCP did not process (and, if idempotent, ambiguity).

        ``api`` names the API the action belongs to (``vserver`` or ``vpc``).
        """
        started = self._clock()
        retryable = retryable_errors(idempotent=idempotent)
        try:  # the first attempt, outside tenacity: most calls need no other
            return await self.send_once(action, params, before_send, api)
        except retryable as exc:
            first: NcpError = exc
        replay = [first]

        async def attempt() -> dict[str, Any]:
            if replay:  # tenacity's first attempt is the one just made
                raise replay.pop()
            return await self.send_once(action, params, before_send, api)

        def retried(error: BaseException | None) -> None:
            self.stats.retries += 1
            log.debug("retrying %s after %s", action, error)

        retrying = retrying_for(
            self.retry,
            idempotent=idempotent,
            started=started,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
            on_retry=retried,
        )
        result: dict[str, Any] = await retrying(attempt)
        return result

    async def ncp_now(self) -> float | None:
        """Return NCP's clock now (at most), asking it with one read if no answer told it yet.

        None if that read fails: the caller falls back to its own clock.
        """
        if not self.ncp_clock.known:
            try:
                await self.call("getRegionList", [], idempotent=True)
            except NcpError as exc:
                log.warning("NCP's clock unknown (getRegionList failed: %s)", exc)
        return self.ncp_clock.now()

    async def create_server(
        self, params: Params, before_send: BeforeSend | None = None
    ) -> CreateResult:
        """Create servers with one createServerInstances call; ambiguous failures are raised.

        ``before_send`` runs just before each attempt goes out (see ``send_once``).
        """
        payload = await self.call(
            "createServerInstances", params, idempotent=False, before_send=before_send
        )
        servers = tuple(ServerInstance.from_api(s) for s in payload.get("serverInstanceList", []))
        return CreateResult(servers, str(payload.get("requestId", "")))

    async def list_servers(
        self,
        *,
        region: str = "",
        vpc_no: str | None = None,
        name: str | None = None,
        instance_nos: Sequence[str] = (),
        status: str | None = None,
    ) -> list[ServerInstance]:
        """Return every server of a region matching the filters, reading all pages.

        ``region`` '' is NCP's default region (the call carries no regionCode), as for a create
        that carried none: a server is always looked for where its create was sent.
        """
        base: list[tuple[str, str]] = [("regionCode", region)] if region else []
        if vpc_no:
            base.append(("vpcNo", vpc_no))
        if name:
            base.append(("serverName", name))
        if status:
            base.append(("serverInstanceStatusCode", status))
        base.extend((f"serverInstanceNoList.{i}", no) for i, no in enumerate(instance_nos, 1))
        items = await self.read_all("getServerInstanceList", "serverInstanceList", base)
        return [ServerInstance.from_api(s) for s in items]

    async def read_all(
        self,
        action: str,
        items: str,
        params: Params,
        *,
        paged: bool = True,
        api: str = "vserver",
    ) -> list[Mapping[str, Any]]:
        """Return the ``items`` list of a read action's every page (one call if not ``paged``)."""
        found: list[Mapping[str, Any]] = []
        page = 1
        while True:
            paging = [("pageNo", str(page)), ("pageSize", str(PAGE_SIZE))] if paged else []
            payload = await self.call(action, [*params, *paging], idempotent=True, api=api)
            got = payload.get(items) or []
            found.extend(got)
            total = int(payload.get("totalRows") or len(found))
            if not paged or not got or len(found) >= total:
                return found
            page += 1

    async def find_by_name(
        self, name: str, *, region: str = "", vpc_no: str | None = None
    ) -> list[ServerInstance]:
        """Return the servers named exactly ``name`` (NCP's own filter may match substrings)."""
        found = await self.list_servers(region=region, vpc_no=vpc_no, name=name)
        return [s for s in found if s.name == name]

    async def get_servers(
        self, instance_nos: Sequence[str], *, region: str = ""
    ) -> list[ServerInstance]:
        """Look many servers of one region up by number, a batch per call; gone ones are absent."""
        found: list[ServerInstance] = []
        for i in range(0, len(instance_nos), BATCH_SIZE):
            batch = instance_nos[i : i + BATCH_SIZE]
            found.extend(await self.list_servers(region=region, instance_nos=batch))
        return found

    async def _control(
        self, action: str, instance_nos: Sequence[str], region: str
    ) -> list[ServerInstance]:
        params = [("regionCode", region)] if region else []
        params += [(f"serverInstanceNoList.{i}", no) for i, no in enumerate(instance_nos, 1)]
        # Not idempotent by NCP's rules (a second stop fails on a stopping server): callers
        # re-read the status after an ambiguous failure instead.
        payload = await self.call(action, params, idempotent=False)
        return [ServerInstance.from_api(s) for s in payload.get("serverInstanceList") or []]

    async def stop_servers(
        self, instance_nos: Sequence[str], *, region: str = ""
    ) -> list[ServerInstance]:
        """Stop running servers of one region (one call for up to a batch)."""
        return await self._control("stopServerInstances", instance_nos, region)

    async def terminate_servers(
        self, instance_nos: Sequence[str], *, region: str = ""
    ) -> list[ServerInstance]:
        """Terminate stopped servers of one region (one call for up to a batch)."""
        return await self._control("terminateServerInstances", instance_nos, region)

    async def set_protection(self, instance_no: str, protect: bool, *, region: str = "") -> None:
        """Turn termination protection of one server on or off."""
        params = [("regionCode", region)] if region else []
        params += [("serverInstanceNo", instance_no)]
        params += [("isProtectServerTermination", "true" if protect else "false")]
        await self.call("setProtectServerTermination", params, idempotent=True)
