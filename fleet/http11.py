"""HTTP/1.1 on the wire, for the transport: a request's bytes, and framing one whole answer.

Only what a client of NCP's API needs, strictly: a request we compose ourselves (so its bytes are
written in one piece), and an answer framed by Content-Length, chunked, or the connection's close.
Anything else is refused as a protocol error rather than guessed at. h11 did this before, with a
state machine and a check of every header on every request: about a third of a create's CPU on
the event loop. ``Framer`` takes the answer's bytes as they arrive (the transport's protocol feeds
it from ``data_received``) and says when the answer is whole.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["Answer", "Framer", "decoded", "request_bytes"]

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


class Framer:
    """Frames one answer from its bytes as they arrive (informational answers skipped).

    ``feed`` returns the Answer once it is whole; ``end`` is the server's close. A broken answer
    raises httpx's RemoteProtocolError: the request may have arrived, nothing is guessed.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._head: tuple[int, bool, dict[str, str]] | None = None
        self._length = 0  # of the body ('length'), or of the chunk and its CRLF ('chunked')
        self._mode = ""  # once the head is read: 'none', 'length', 'chunked', 'trailer', 'close'
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> Answer | None:
        """Take more bytes of the answer; return it once whole."""
        self._buf += data
        while self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                _bounded(self._buf)
                return None
            head = _head(bytes(self._buf[: end + 4]))
            del self._buf[: end + 4]
            if head[0] >= 200:
                self._head, self._mode, self._length = head, *_framing(*head[::2])
            elif head[0] == 101:
                raise httpx.RemoteProtocolError("switching protocols was not asked for")
        return self._body()

    def end(self) -> Answer:
        """Return the answer the server's close ends, or raise: it closed too early."""
        if self._head is not None and self._mode == "close":
            content = bytes(self._buf)
            self._buf.clear()
            return self._answer(content, framed=False)
        what = "in the middle of an answer" if self._head or self._buf else "without an answer"
        raise httpx.RemoteProtocolError(f"Server disconnected {what}")

    def _body(self) -> Answer | None:
        buf = self._buf
        if self._mode == "none":
            return self._answer(b"", framed=True)
        if self._mode == "length":
            if len(buf) < self._length:
                return None
            content = bytes(buf[: self._length])
            del buf[: self._length]
            return self._answer(content, framed=True)
        if self._mode == "close":
            return None  # the body ends with the connection
        return self._chunks()

    def _chunks(self) -> Answer | None:
        """Read chunks, then any trailer fields, as far as the bytes so far go."""
        buf = self._buf
        while True:
            if self._length:  # inside a chunk: its data and CRLF
                if len(buf) < self._length:
                    return None
                if buf[self._length - 2 : self._length] != b"\r\n":
                    raise httpx.RemoteProtocolError("a chunk longer than its size")
                self._parts.append(bytes(buf[: self._length - 2]))
                del buf[: self._length]
                self._length = 0
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                _bounded(buf)
                return None
            line = bytes(buf[:line_end])
            del buf[: line_end + 2]
            if self._mode == "trailer":
                if not line:  # the blank line after any trailer fields
                    return self._answer(b"".join(self._parts), framed=True)
            elif (size := _chunk_size(line)) == 0:
                self._mode = "trailer"
            else:
                self._length = size + 2

    def _answer(self, content: bytes, *, framed: bool) -> Answer:
        assert self._head is not None
        status, http10, headers = self._head
        close = http10 or "close" in headers.get("connection", "").lower()
        # Bytes past the answer: the server is out of step, the connection is not reused.
        return Answer(status, headers, content, framed and not close and not self._buf)


# The longest head, or chunk-size line, an answer may have before it is refused.
HEAD_LIMIT = 64 * 1024


def _bounded(buf: bytearray) -> None:
    if len(buf) > HEAD_LIMIT:
        raise httpx.RemoteProtocolError("an answer's head or chunk line is too long")


def _framing(status: int, headers: Mapping[str, str]) -> tuple[str, int]:
    """Return how the answer's body is framed: its mode, and its length for 'length'."""
    if status in (204, 304):
        return "none", 0
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.strip().lower() != "chunked":
            raise httpx.RemoteProtocolError(f"unsupported transfer-encoding {coding!r}")
        return "chunked", 0
    length = headers.get("content-length")
    if length is None:
        return "close", 0  # ended by the server's close
    if not length.isdigit() or not length.isascii():
        raise httpx.RemoteProtocolError(f"bad content-length {length!r}")
    return "length", int(length)


def _chunk_size(line: bytes) -> int:
    size = line.partition(b";")[0].strip()  # chunk extensions are ignored
    if _HEX.fullmatch(size) is None:
        raise httpx.RemoteProtocolError(f"bad chunk size {line[:40]!r}")
    return int(size, 16)


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
