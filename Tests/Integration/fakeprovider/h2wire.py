"""HTTP/2 for the fake provider (RFC 9113, over TLS with ALPN ``h2``), with the ``h2`` library.

One ``H2Wire`` per connection. Its thread owns the socket: it reads frames, feeds them to the
sans-IO ``h2.connection.H2Connection`` and writes whatever that has to send. Each request, once
its stream has ended, is answered in a thread of its own by the same routes as HTTP/1.1
(server.Routes), through ``H2Stream``, which stands in for both the HTTP/1.1 handler's writes
and its ``ClientConnection``: ``send_chunk`` is a DATA frame, ``wait`` notices the client's
RST_STREAM, ``reset`` (the drop fault) resets the stream. Answers honour flow control: a stream
whose window is spent waits for the client's WINDOW_UPDATE, so a paused reader holds back its
stream only, as on a real provider.
"""

from __future__ import annotations

import os
import select
import threading
import traceback
from email.utils import formatdate

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from .connection import GONE_ERRORS, PeerGone

SERVER_HEADER = "fake-openai/1.0"


class H2Stream:
    """One request on an HTTP/2 connection, and the writing end of its answer."""

    def __init__(self, wire: "H2Wire", stream_id: int, headers: list[tuple[str, str]]):
        self.wire = wire
        self.stream_id = stream_id
        pseudo = {name: value for name, value in headers if name.startswith(":")}
        self.method = pseudo.get(":method", "GET")
        self.path = pseudo.get(":path", "/")
        # As HTTP/1.1 shows them: lower-case names, repeats joined, the authority as host.
        self.headers: dict[str, str] = {"host": pseudo.get(":authority", "")}
        for name, value in headers:
            if not name.startswith(":"):
                self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.body = bytearray()
        self.gone = threading.Event()  # the client reset the stream, or the connection ended
        self.ended = False             # our side has sent END_STREAM (or RST_STREAM)

    # --- the answer -------------------------------------------------------------------------

    def send_head(self, status: int, headers: list[tuple[str, str]], length: int | None) -> None:
        block = [(":status", str(status)), ("server", SERVER_HEADER), ("date", formatdate(usegmt=True))]
        block += [(name.lower(), str(value)) for name, value in headers]
        if length is not None:
            block.append(("content-length", str(length)))
        self.wire.send_headers(self, block, end_stream=length == 0)

    def send_data(self, data: bytes, end_stream: bool) -> None:
        if data or (end_stream and not self.ended):
            self.wire.send_data(self, data, end_stream)

    # --- what server.Routes asks of a client connection ---------------------------------------

    def peer_gone(self) -> bool:
        return self.gone.is_set()

    def wait(self, seconds: float) -> None:
        if self.gone.wait(seconds):
            raise PeerGone()

    def send_chunk(self, data: bytes, last: bool = False) -> None:
        self.send_data(data, end_stream=last)

    def reset(self) -> None:
        """The drop fault: RST_STREAM (INTERNAL_ERROR), the other streams carry on."""
        self.wire.reset(self)

    def finish(self) -> None:
        """After the routes have answered: a stream left open (an error) is reset."""
        if not self.ended:
            self.wire.reset(self)


class H2Wire:
    """Serves one TLS connection on which ALPN chose ``h2``, until the client closes it."""

    def __init__(self, sock, client_address, server, exchange):
        self.sock = sock
        self.client_address = client_address
        self.server = server
        self.exchange = exchange  # server._H2Exchange: (stream, server) -> .handle()
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.lock = threading.Condition()  # guards self.h2; notified when a window opens or a stream ends
        self.streams: dict[int, H2Stream] = {}
        self.closed = False
        self._wake_read, self._wake_write = os.pipe()  # a writer tells the reading thread to flush
        os.set_blocking(self._wake_write, False)

    def serve(self) -> None:
        try:
            with self.lock:
                # In the first SETTINGS frame: h2 holds a client to 100 streams until then.
                self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.provider.max_concurrent_streams})
                self.h2.initiate_connection()
            self._flush()
            while not self.closed:
                if not self.sock.pending():
                    readable, _, _ = select.select([self.sock, self._wake_read], [], [], 1.0)
                    if self._wake_read in readable:
                        os.read(self._wake_read, 4096)
                    if self.sock not in readable:
                        self._flush()
                        continue
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    events = self.h2.receive_data(data)
                    started = [self._on(event) for event in events]
                    self.lock.notify_all()
                for stream in filter(None, started):
                    threading.Thread(target=self._answer, args=(stream,), daemon=True,
                                     name=f"fakeprovider-h2:{stream.stream_id}").start()
                self._flush()
        except h2.exceptions.ProtocolError:
            try:
                self._flush()  # the GOAWAY h2 queued, saying why
            except OSError:
                pass
        except (*GONE_ERRORS, OSError):
            pass
        finally:
            with self.lock:
                self.closed = True
                for stream in self.streams.values():
                    stream.gone.set()
                self.lock.notify_all()
                os.close(self._wake_read)
                os.close(self._wake_write)

    def _on(self, event) -> H2Stream | None:
        """Applies one event (the lock held); returns a stream whose request is complete."""
        if isinstance(event, h2.events.RequestReceived):
            self.streams[event.stream_id] = H2Stream(self, event.stream_id, event.headers)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
            # Bodies are read whole before answering: give the window back at once.
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            return self.streams.get(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.ended = True
                stream.gone.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True
        return None

    def _answer(self, stream: H2Stream) -> None:
        try:
            self.exchange(stream, self.server).handle()
        except PeerGone:
            pass
        except Exception:  # noqa: BLE001 (a fake's bug is printed, the stream reset, the connection kept)
            traceback.print_exc()
        finally:
            if not stream.ended:
                self.reset(stream)
            with self.lock:
                self.streams.pop(stream.stream_id, None)

    # --- writing (any thread) -----------------------------------------------------------------

    def _flush(self) -> None:
        with self.lock:
            out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def _wake(self) -> None:
        """Called with the lock held, so that the pipe is still open."""
        if self.closed:
            return
        try:
            os.write(self._wake_write, b"w")
        except BlockingIOError:
            pass  # the pipe is full: the reading thread has a wake-up waiting anyway

    def send_headers(self, stream: H2Stream, headers: list[tuple[str, str]], end_stream: bool) -> None:
        with self.lock:
            if stream.gone.is_set() or self.closed:
                raise PeerGone()
            self.h2.send_headers(stream.stream_id, headers, end_stream=end_stream)
            stream.ended = end_stream
            self._wake()

    def send_data(self, stream: H2Stream, data: bytes, end_stream: bool) -> None:
        view = memoryview(data)
        with self.lock:
            while True:
                if stream.gone.is_set() or self.closed:
                    raise PeerGone()
                try:
                    window = self.h2.local_flow_control_window(stream.stream_id)
                    size = min(len(view), window, self.h2.max_outbound_frame_size)
                    if size == 0 and view:
                        self.lock.wait(1.0)  # until WINDOW_UPDATE (or the stream's end)
                        continue
                    last = size == len(view)
                    self.h2.send_data(stream.stream_id, view[:size].tobytes(), end_stream=end_stream and last)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as exc:
                    raise PeerGone() from exc
                view = view[size:]
                self._wake()
                if last:
                    stream.ended = end_stream
                    return

    def reset(self, stream: H2Stream) -> None:
        with self.lock:
            if stream.ended or self.closed:
                return
            stream.ended = True
            try:
                self.h2.reset_stream(stream.stream_id, error_code=ErrorCodes.INTERNAL_ERROR)
            except h2.exceptions.ProtocolError:
                pass
            self._wake()
