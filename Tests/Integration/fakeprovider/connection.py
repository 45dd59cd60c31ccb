"""The client socket seen from the fake provider: chunked writes that notice a departed peer.

The gateway must cancel its upstream request when its own client goes away; the fake proves it
did by noticing the closed connection. A single ``send`` after the peer closed usually succeeds
(the kernel buffers it and the peer answers with RST), so a write alone is not a reliable probe.
Before every write, and while waiting between chunks, we also peek at the socket: a readable
socket whose peek returns b"" (FIN) or fails (RST) means the peer is gone.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import struct
import time

GONE_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class PeerGone(Exception):
    """The client closed or reset the connection."""


class ClientConnection:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    def peer_gone(self) -> bool:
        """True if the peer has closed (FIN) or reset (RST) the connection; never blocks."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return False
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    def wait(self, seconds: float) -> None:
        """Sleeps ``seconds``, raising PeerGone as soon as the peer hangs up."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                readable, _, _ = select.select([self.sock], [], [], remaining)
            except (OSError, ValueError) as exc:
                raise PeerGone() from exc
            if not readable:
                return
            if self.peer_gone():
                raise PeerGone()
            # The peer sent bytes (e.g. a pipelined request): it is alive; select would now spin.
            time.sleep(max(0.0, deadline - time.monotonic()))
            return

    def send(self, data: bytes) -> None:
        """Writes ``data`` fully, raising PeerGone if the peer is (or turns out to be) gone."""
        if self.peer_gone():
            raise PeerGone()
        try:
            self.sock.sendall(data)
        except GONE_ERRORS as exc:
            raise PeerGone() from exc
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                raise PeerGone() from exc
            raise

    def send_chunk(self, data: bytes, last: bool = False) -> None:
        """One HTTP/1.1 chunk (Transfer-Encoding: chunked); ``last`` appends the end marker."""
        self.send(b"%x\r\n%s\r\n%s" % (len(data), data, b"0\r\n\r\n" if last else b""))

    def reset(self) -> None:
        """Drops the connection abruptly: SO_LINGER 0 makes close() send RST, not FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class TLSClientConnection(ClientConnection):
    """The same over TLS, where the socket cannot be peeked at (it holds records, not bytes).

    An HTTP/1.1 client sends nothing while its answer is written, so a readable socket holds the
    client's close_notify or FIN: one non-blocking read tells which (a pipelining client, which
    would lose that byte, does not talk to a provider).
    """

    def peer_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable and not self.sock.pending():
                return False
            self.sock.setblocking(False)
            try:
                return self.sock.recv(1) == b""
            finally:
                self.sock.setblocking(True)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except (OSError, ValueError):
            return True
