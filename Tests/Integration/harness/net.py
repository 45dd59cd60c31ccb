"""Loopback socket helpers: free ports, and raw HTTP for cases HTTP clients handle badly.

An oversized upload is the main such case: the gateway answers 413 before reading the whole
body and closes, so a client that insists on sending everything first sees a reset instead of
the answer. ``send_and_read`` sends and reads at the same time and stops sending as soon as the
answer starts.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable


def free_port() -> int:
    """A port free on 127.0.0.1 right now (small race with other processes; fine on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    body_bytes_sent: int = 0          # how much of the request body went out before the answer
    notes: list[str] = field(default_factory=list)  # e.g. "connection reset after the answer"

    def json(self):
        return json.loads(self.body)


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    """Decodes a chunked body; returns (body so far, whether the last chunk was seen)."""
    out, pos = bytearray(), 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        size = int(data[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out), True
        if len(data) < eol + 2 + size + 2:
            return bytes(out), False
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def parse_response(buf: bytes, eof: bool) -> RawResponse | None:
    """A complete response from ``buf``, or None if more bytes are needed (and may come).

    Interim 1xx answers before it are skipped, as RFC 9110 §15.2 has every client do."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    if 100 <= status < 200 and status != 101:
        return parse_response(buf[end + 4:], eof)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    rest = buf[end + 4:]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, done = _dechunk(rest)
        return RawResponse(status, headers, body) if done or eof else None
    if "content-length" in headers:
        length = int(headers["content-length"])
        return RawResponse(status, headers, rest[:length]) if len(rest) >= length or eof else None
    return RawResponse(status, headers, rest) if eof else None


def send_and_read(port: int, head: bytes, body: Iterable[bytes], timeout: float = 15) -> RawResponse:
    """Sends ``head`` then the ``body`` pieces while watching for the answer; returns the answer.

    Raises ConnectionError if the connection ends (EOF or reset) with no complete answer.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(head)
    sock.setblocking(False)
    pieces = iter(body)
    pending = b""
    sending, sent, buf, notes = True, 0, bytearray(), []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete answer within {timeout}s; got {bytes(buf[:300])!r}")
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], remaining)
            if readable:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    notes.append("connection reset while reading")
                    data = b""
                if data:
                    buf += data
                    sending = False  # the answer has started: the server will not read more
                    answer = parse_response(bytes(buf), eof=False)
                else:
                    answer = parse_response(bytes(buf), eof=True) if buf else None
                    if answer is None:
                        raise ConnectionError(f"connection closed without a complete answer "
                                              f"after {sent} body bytes; got {bytes(buf[:300])!r}")
                if answer is not None:
                    answer.body_bytes_sent, answer.notes = sent, notes
                    return answer
            if writable and sending:
                if not pending:
                    pending = next(pieces, b"")
                    if not pending:
                        sending = False
                        continue
                try:
                    n = sock.send(pending)
                    sent += n
                    pending = pending[n:]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    notes.append(f"send failed after {sent} body bytes")
                    sending = False
    finally:
        sock.close()


def request_head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def as_chunks(pieces: Iterable[bytes]) -> Iterable[bytes]:
    """Wraps body pieces in HTTP/1.1 chunked framing (with the terminating chunk)."""
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def recv_until_closed(sock: socket.socket, timeout: float,
                      stop: Callable[[bytes], bool] | None = None) -> tuple[bytes, str]:
    """Reads until the peer closes; returns (bytes read, "eof" | "reset" | "timeout" | "answered").

    ``stop``: also stop, with "answered", once it says the bytes read so far are enough.
    """
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(got), "timeout"
        readable, _, _ = select.select([sock], [], [], remaining)
        if not readable:
            continue
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            return bytes(got), "reset"
        if not data:
            return bytes(got), "eof"
        got += data
        if stop is not None and stop(bytes(got)):
            return bytes(got), "answered"


def head_arrived(got: bytes) -> bool:
    """For ``recv_until_closed``: a whole response head has arrived."""
    return b"\r\n\r\n" in got


def read_answer(sock: socket.socket, timeout: float) -> tuple[RawResponse | None, bytes, str]:
    """Reads one whole HTTP answer (or until EOF): (answer or None, bytes read, how it stopped)."""
    got, how = recv_until_closed(sock, timeout, stop=lambda got: parse_response(got, eof=False) is not None)
    return (parse_response(got, eof=how != "answered") if got else None), got, how
