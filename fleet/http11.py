"""HTTP/1.1 on the wire, for the transport: a request's bytes, and reading one whole answer.

Only what a client of NCP's API needs, strictly: a request we compose ourselves (so its bytes are
written in one piece), and an answer framed by Content-Length, chunked, or the connection's close.
Anything else is refused as a protocol error rather than guessed at. h11 did this before, with a
state machine and a check of every header on every request: about a third of a create's CPU on
the event loop. The answers' framing is read with asyncio's own buffered primitives (``readuntil``,
``readexactly``), so a small answer costs a few calls.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["Answer", "decoded", "read_answer", "request_bytes"]

_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN = re.compile(r"[\r\n\0]")
_HEX = re.compile(rb"[0-9A-Fa-f]+")


@dataclass(frozen=True, slots=True)
class Answer:
    """One whole HTTP answer: status, headers (names in lower case; the last of a repeated one)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes  # as framed on the wire: any content-encoding is still applied (``decoded``)
    keep_alive: bool  # the connection may carry another request


def request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes
) -> bytes:
    """Return a request's bytes: request line, Host, the headers, Content-Length, the body.

    A header whose value could end the line early (CR, LF, NUL) is refused: nothing is sent.
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if _FORBIDDEN.search(value) or _FORBIDDEN.search(name):
            raise httpx.LocalProtocolError(f"header {name!r} holds a line break or NUL")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """Read one answer (informational ones skipped); raise httpx's protocol error if broken."""
    try:
        while True:
            status, http10, headers = _head(await reader.readuntil(b"\r\n\r\n"))
            if status >= 200:
                break
            if status == 101:
                raise httpx.RemoteProtocolError("switching protocols was not asked for")
        content, framed = await _body(reader, status, headers)
    except asyncio.IncompleteReadError as exc:
        what = "without an answer" if not exc.partial else "in the middle of an answer"
        raise httpx.RemoteProtocolError(f"Server disconnected {what}") from None
    except asyncio.LimitOverrunError:
        raise httpx.RemoteProtocolError("an answer's head or chunk line is too long") from None
    close = http10 or "close" in headers.get("connection", "").lower()
    return Answer(status, headers, content, framed and not close)


def _head(raw: bytes) -> tuple[int, bool, dict[str, str]]:
    """Parse a status line and header fields (``raw`` ends with the blank line)."""
    status_line, _, fields = raw[:-4].partition(b"\r\n")
    matched = _STATUS.fullmatch(status_line)
    if matched is None:
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in fields.split(b"\r\n") if fields else ():
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:  # obsolete folding included
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
        headers[name.decode("ascii").lower()] = value.strip(b" \t").decode("latin-1")
    return int(matched.group(2)), matched.group(1) == b"0", headers


async def _body(
    reader: asyncio.StreamReader, status: int, headers: Mapping[str, str]
) -> tuple[bytes, bool]:
    """Read the body as the head frames it; say whether it was framed (not ended by a close)."""
    if status in (204, 304):
        return b"", True
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.strip().lower() != "chunked":
            raise httpx.RemoteProtocolError(f"unsupported transfer-encoding {coding!r}")
        return await _chunked(reader), True
    length = headers.get("content-length")
    if length is None:
        return await reader.read(), False  # ended by the server's close
    if not length.isdigit() or not length.isascii():
        raise httpx.RemoteProtocolError(f"bad content-length {length!r}")
    return await reader.readexactly(int(length)), True


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2]
        size = size_line.partition(b";")[0].strip()
        if _HEX.fullmatch(size) is None:
            raise httpx.RemoteProtocolError(f"bad chunk size {size_line[:40]!r}")
        if int(size, 16) == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields: ignored
                pass
            return b"".join(parts)
        chunk = await reader.readexactly(int(size, 16) + 2)
        if not chunk.endswith(b"\r\n"):
            raise httpx.RemoteProtocolError("a chunk longer than its size")
        parts.append(chunk[:-2])


def decoded(answer: Answer) -> bytes:
    """Return the body with its content-encoding (gzip, deflate) undone.

    We never ask for an encoding, but a server may apply one; one we cannot undo is an answer we
    cannot read.
    """
    content = answer.content
    codings = [c.strip().lower() for c in answer.headers.get("content-encoding", "").split(",")]
    for coding in reversed([c for c in codings if c and c != "identity"]):
        try:
            if coding in ("gzip", "x-gzip"):
                content = zlib.decompress(content, zlib.MAX_WBITS | 16)
            elif coding == "deflate":
                content = _inflate(content)
            else:
                raise httpx.DecodingError(f"unsupported content-encoding {coding!r}")
        except zlib.error as exc:
            raise httpx.DecodingError(f"{coding} body cannot be decoded: {exc}") from None
    return content


def _inflate(content: bytes) -> bytes:
    try:
        return zlib.decompress(content)
    except zlib.error:  # raw deflate, without the zlib wrapper, as some servers send it
        return zlib.decompress(content, -zlib.MAX_WBITS)
