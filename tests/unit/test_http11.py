"""The answer framer, fed however the network splits the bytes: whole, byte by byte, at random."""

from __future__ import annotations

import random

import httpx
import pytest

from fleet.http11 import Answer, Framer, request_bytes

BODY = b'{"createServerInstancesResponse": {"returnCode": "0"}}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Ncp-Trace-Id: t-1\r\n\r\n"
    + b"5;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n"
    % (BODY[:5], len(BODY) - 5, BODY[5:])
)
LENGTH = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


def splits(data: bytes, seed: int) -> list[bytes]:
    """The bytes cut at random places, as TCP may deliver them."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(12, len(data) - 1)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def frame(pieces: list[bytes]) -> Answer:
    framer = Framer()
    answers = [a for a in (framer.feed(p) for p in pieces) if a is not None]
    assert len(answers) == 1, "the answer is whole exactly once, with its last byte"
    return answers[0]


@pytest.mark.parametrize("wire", [LENGTH, CHUNKED], ids=["length after 100", "chunked"])
@pytest.mark.parametrize("seed", range(5))
def test_an_answer_is_the_same_however_its_bytes_arrive(wire: bytes, seed: int) -> None:
    """Whole, one byte at a time, or cut at random: the same status, headers, body."""
    whole = frame([wire])
    assert (whole.status_code, whole.content, whole.keep_alive) == (200, BODY, True)
    assert frame([wire[i : i + 1] for i in range(len(wire))]) == whole
    assert frame(splits(wire, seed)) == whole


def test_an_answer_ended_by_the_close_is_whole_only_then() -> None:
    """No length, no chunks: the body is what came before the close, and not reused."""
    framer = Framer()
    assert framer.feed(b"HTTP/1.0 200 OK\r\n\r\n" + BODY[:10]) is None
    assert framer.feed(BODY[10:]) is None
    answer = framer.end()
    assert (answer.content, answer.keep_alive) == (BODY, False)


def test_a_close_before_the_end_is_a_cut_answer() -> None:
    """Half an answer and then the close: an error that says the request may have arrived."""
    framer = Framer()
    framer.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
    with pytest.raises(httpx.RemoteProtocolError, match="middle of an answer"):
        framer.end()
    with pytest.raises(httpx.RemoteProtocolError, match="without an answer"):
        Framer().end()


def test_bytes_past_the_answer_put_the_connection_out_of_use() -> None:
    """A server out of step (more than it framed): the answer stands, the connection does not."""
    answer = Framer().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1")
    assert answer is not None and (answer.content, answer.keep_alive) == (b"{}", False)


def test_a_request_is_one_piece_with_its_host_and_length() -> None:
    """Request line, Host, our headers, Content-Length, then the body."""
    data = request_bytes("POST", "/vserver/v2/x?a=1", "ncloud.apigw.ntruss.com", {"k": "v"}, b"x=1")
    assert data == (
        b"POST /vserver/v2/x?a=1 HTTP/1.1\r\nHost: ncloud.apigw.ntruss.com\r\nk: v\r\n"
        b"Content-Length: 3\r\n\r\nx=1"
    )
