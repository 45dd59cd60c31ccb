"""The fake provider's HTTP server: OpenAI, Azure OpenAI and Anthropic endpoints, control
endpoints, and the CLI.

HTTP/1.1 with keep-alive (the gateway pools upstream connections), Content-Length for whole
answers and chunked transfer for SSE streams, exactly as api.openai.com and api.anthropic.com do.
Over TLS (``tls=TLSFiles(cert, key)``) it speaks HTTP/1.1 and, with ``http2=True``, HTTP/2 to
clients that offer ``h2`` in ALPN (fakeprovider/h2wire.py), as those APIs do: the same routes
and faults on either wire (``Routes`` below), each request's protocol recorded.

    python -m fakeprovider.server --port 0     # prints "READY <port>" once listening
    python -m fakeprovider.server --tls-cert server.pem --tls-key server.key --http2

Endpoints: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, POST /v1/responses
and GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items (OpenAI);
POST /openai/deployments/{deployment}/chat/completions?api-version=V and .../embeddings
(Azure OpenAI: the deployment is the model, ``api-key`` header), and Azure's v1 API
POST /openai/v1/responses (the deployment is the body's model, no api-version); POST /v1/messages
(Anthropic: ``x-api-key`` and ``anthropic-version`` headers). Control: POST /_fake/next (queue a
fault, see faults.Fault), GET /_fake/requests, GET /_fake/connections (TCP connections accepted
since the last reset), POST /_fake/reset.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import signal
import ssl
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlsplit

from . import anthropic_shapes as anthropic
from . import bedrock
from . import google_routes
from . import moderations
from . import openai_shapes as shapes
from . import responses_shapes as responses
from .connection import GONE_ERRORS, ClientConnection, PeerGone, TLSClientConnection
from .faults import Fault, FaultQueue
from .recorder import RequestLog
from .tlsfiles import TLSFiles

DEFAULT_MODELS = ["upstream-local", "upstream-smol", "fake-model"]
CONTROL_PREFIX = "/_fake/"
HEALTH_PROBE_USER_AGENT = "sluice-health-probe"  # what the gateways' health probes send (OpenAIWire)
AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings)$")


def azure_deployment(path: str) -> str | None:
    match = AZURE_PATH.match(path)
    return match.group(1) if match else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, provider: "FakeProvider", tls: ssl.SSLContext | None):
        self.provider = provider
        self.tls = tls
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        self.provider.count_connection()
        super().process_request(request, client_address)

    def finish_request(self, request, client_address) -> None:
        """Runs in the connection's own thread: the TLS handshake, then HTTP/2 if ALPN chose it."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        secure = self.tls.wrap_socket(request, server_side=True)  # takes over (detaches) the socket
        try:
            secure.settimeout(None)
            if secure.selected_alpn_protocol() == "h2":
                from .h2wire import H2Wire  # the one module that needs more than the stdlib (h2)
                H2Wire(secure, client_address, self, _H2Exchange).serve()
            else:
                super().finish_request(secure, client_address)
        finally:
            try:
                secure.close()
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        """Peers vanishing between keep-alive requests, or refusing our test certificate, are
        routine here, not errors to print."""
        if not isinstance(sys.exc_info()[1], (*GONE_ERRORS, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class Routes:
    """The fake's endpoints and faults, whatever the wire: ``_Handler`` (HTTP/1.1, over TLS or
    not) and ``_H2Exchange`` (one HTTP/2 stream) give them ``command``, ``path``,
    ``client_address``, ``server`` and the five methods that touch the wire: ``_read_body``,
    ``_lower_headers``, ``_send_head``, ``_write_body`` and ``_client_connection``."""

    server: _Server
    protocol = "HTTP/1.1"        # what the record says the request came over
    close_connection = False
    _record: dict | None = None  # the log record of the request being answered
    _anthropic = False           # answering in Anthropic's dialect (POST /v1/messages)

    # --- plumbing ---------------------------------------------------------------------------

    def _start(self, status: int, content_type: str, length: int | None, extra: dict | None = None) -> None:
        """Sends the head: ``length`` None for a body sent in pieces (``conn.send_chunk``)."""
        headers = [("Content-Type", content_type)]
        if length is None:
            headers.append(("Cache-Control", "no-cache"))
        if self._anthropic:
            headers.append(("request-id", f"req_{uuid.uuid4().hex[:24]}"))
        else:
            headers += [("x-request-id", f"req_{uuid.uuid4().hex}"), ("openai-processing-ms", "1")]
        headers += list((extra or {}).items())
        self._send_head(status, headers, length)

    def _send_whole(self, status: int, body: Any, extra: dict | None = None) -> None:
        """Sends a complete JSON (or verbatim str) answer and records it on the current request.

        The record says completed *before* the write (undone if the write fails), so a client
        that holds the whole answer always finds ``completed`` already true.
        """
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        extra = dict(extra or {})
        content_type = next((extra.pop(name) for name in list(extra) if name.lower() == "content-type"), "application/json")
        self._start(status, content_type, len(data), extra)
        self._note(status=status, completed=True)
        self._write_body(data)

    def _note(self, **changes: Any) -> None:
        if self._record is not None:
            self.server.provider.log.update(self._record, **changes)

    def _error(self, status: int, message: str, type_: str = "invalid_request_error",
               param: str | None = None, code: str | None = None) -> None:
        if self._anthropic:
            self._send_whole(status, anthropic.error_body(anthropic.ERROR_TYPES.get(status, type_), message))
        else:
            self._send_whole(status, shapes.error_body(message, type_, param, code))

    # --- dispatch ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._record = None
        url = urlsplit(self.path)
        self._anthropic = url.path == anthropic.PATH
        raw = self._read_body()
        if url.path.startswith(CONTROL_PREFIX):
            self._control(url.path, raw)
            return

        provider = self.server.provider
        headers = self._lower_headers()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._record = provider.log.add(
            method=self.command, path=url.path, query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=headers, body=body, body_size=len(raw), peer="%s:%s" % self.client_address[:2],
            protocol=self.protocol, tls=self.server.tls is not None)

        try:
            model = (azure_deployment(url.path) or google_routes.model_in_path(url.path)
                     or (body.get("model") if isinstance(body, dict) else None))
            fault = Fault.from_headers(headers) or provider.faults.take(
                url.path, model if isinstance(model, str) else None,
                probe=headers.get("user-agent") == HEALTH_PROBE_USER_AGENT)
        except ValueError as exc:
            self._error(400, f"bad x-fake-* header: {exc}")
            return
        if fault is not None:
            self._note(fault={k: v for k, v in fault.to_json().items() if k != "count"})
        fault = fault or Fault()

        conn = self._client_connection()
        try:
            if fault.delay_ms:
                conn.wait(fault.delay_ms / 1000)
            if fault.drop_after_chunks is not None and not self._is_stream_request(url.path, body):
                self._drop(conn)
            elif fault.canned:
                status = fault.status if fault.status is not None else 200
                default = anthropic.default_error_for_status if self._anthropic else shapes.default_error_for_status
                self._send_whole(status, fault.body if fault.body is not None else default(status), fault.headers)
            else:
                self._route(self.command, url.path, raw, body, fault, conn)
        except (PeerGone, *GONE_ERRORS):
            self._note(completed=False, client_disconnected=True, stream_aborted=bool(self._record["stream"]))
            self.close_connection = True

    @staticmethod
    def _is_stream_request(path: str, body: Any) -> bool:
        return ((path.endswith("/chat/completions") or path in (anthropic.PATH, responses.PATH, responses.AZURE_PATH))
                and isinstance(body, dict) and body.get("stream") is True)

    def _drop(self, conn: ClientConnection) -> None:
        self._note(dropped=True)
        self.close_connection = True
        conn.reset()

    def _route(self, method: str, path: str, raw: bytes, body: Any, fault: Fault,
               conn: ClientConnection) -> None:
        google = google_routes.route(self, method, path)  # Gemini, Vertex AI and their token endpoint
        if google is not None:
            google(raw, body, fault, conn)
            return
        routes = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
            ("POST", anthropic.PATH): self._messages,
            ("POST", responses.PATH): self._responses,
            ("POST", responses.AZURE_PATH): self._azure_v1(self._responses),
            ("POST", moderations.PATH): lambda body, fault, conn: moderations.respond(self, body),
        }
        handler = routes.get((method, path))
        if bedrock.matches(path):
            bedrock.handle(self, method, path, raw, body, fault, conn)
            return
        deployment = azure_deployment(path)
        if deployment is not None and method == "POST":
            handler = self._azure(deployment, path.endswith("/embeddings"))
        stored = responses.STORED_PATH.match(path)
        if stored is not None and (method, stored.group(3)) in (("GET", None), ("DELETE", None), ("GET", "/input_items")):
            serve = self._stored_response(stored.group(2), method, bool(stored.group(3)))
            handler = self._azure_v1(serve) if stored.group(1) == "/openai/v1" else serve
        if handler is None:
            self._error(404, f"Invalid URL ({method} {path})")
        elif method == "POST" and raw and body is None:
            self._error(400, "We could not parse the JSON body of your request. (HINT: This likely means "
                             "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                             "payload, but what was sent was not valid JSON.)")
        elif method == "POST" and not isinstance(body, dict):
            self._error(400, "The request body must be a JSON object.")
        else:
            handler(body, fault, conn)

    # --- OpenAI endpoints -------------------------------------------------------------------

    def _require(self, body: dict, name: str, kind: type) -> bool:
        if name not in body:
            self._error(400, f"Missing required parameter: '{name}'.", param=name,
                        code="missing_required_parameter")
            return False
        if not isinstance(body[name], kind):
            self._error(400, f"Invalid type for '{name}'.", param=name, code="invalid_type")
            return False
        return True

    def _chat(self, body: dict, fault: Fault, conn: ClientConnection) -> None:
        if not self._require(body, "model", str) or not self._require(body, "messages", list):
            return
        if not body["messages"]:
            self._error(400, "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                        param="messages", code="empty_array")
            return
        problem = shapes.check_messages(body["messages"]) or shapes.check_tools(body.get("tools"))
        if problem is not None:
            self._error(400, problem[0], param=problem[1], code=problem[2])
            return
        reply = shapes.plan_reply(body, fault.stream_words)
        usage = shapes.reply_usage(body["messages"], reply)
        self._note(usage=usage)
        if body.get("stream") is True:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(shapes.iter_chat_stream_events(body["model"], reply, usage, include_usage),
                         shapes.chat_stream_event_count(reply, include_usage), fault, conn,
                         error_event=lambda _: shapes.error_body(
                             "The server had an error while processing your request. Sorry about that!",
                             "server_error"))
        else:
            self._send_whole(200, shapes.chat_completion(body["model"], reply, usage))

    def _azure(self, deployment: str, embeddings: bool):
        """Azure OpenAI: the deployment in the path is the model; ``api-version`` is required, and
        so is a key (``api-key``, or an Entra ID bearer token)."""
        def handle(body: dict, fault: Fault, conn: ClientConnection) -> None:
            query = self._record["query"] if self._record else {}
            headers = self._record["headers"] if self._record else {}
            if not query.get("api-version"):
                self._send_whole(404, {"error": {"code": "404", "message": "Resource not found"}})
            elif not headers.get("api-key") and not headers.get("authorization"):
                self._send_whole(401, {"error": {"code": "401", "message": (
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                    "a valid key for an active subscription and use a correct regional API endpoint for your "
                    "resource.")}})
            else:
                body = {**body, "model": deployment}  # a copy: the record keeps what was sent
                (self._embeddings if embeddings else self._chat)(body, fault, conn)
        return handle

    def _stream(self, events: Iterable[dict], event_count: int, fault: Fault, conn: ClientConnection,
                named_events: bool = False, error_event=None) -> None:
        """Writes SSE events as HTTP chunks, one event per chunk, honouring the fault's pacing.

        Events are encoded one at a time, so a padded stream of 50,000 events costs no memory.
        OpenAI chat streams are ``data: {...}`` events closed by ``data: [DONE]``; Anthropic and
        Responses streams are ``event: TYPE`` + ``data: {...}`` events (``named_events``) with no
        terminator (message_stop, response.completed is last). A ``stream_error_after`` fault
        cuts the stream after that many events and ends it with ``error_event(events_sent)``
        (no ``[DONE]``). ``total_chunks`` (every event, ``[DONE]`` included) is recorded before
        the first write.
        """
        cut = fault.stream_error_after
        if cut is not None and error_event is not None:
            sent = min(cut, event_count)

            def cut_events(events=events):
                for i, event in enumerate(events):
                    if i >= sent:
                        break
                    yield event
                yield error_event(sent)

            events, total, terminator = cut_events(), sent + 1, None
        else:
            total = event_count if named_events else event_count + 1
            terminator = None if named_events else b"data: [DONE]\n\n"
        self._note(stream=True, total_chunks=total)
        if fault.drop_after_chunks == 0:
            self._drop(conn)
            return
        self._start(200, "text/event-stream; charset=utf-8", None)
        self._note(status=200)
        pad = "x" * fault.chunk_pad_bytes if fault.chunk_pad_bytes else None

        def payloads():
            for event in events:
                if pad is not None:
                    event["x_fake_pad"] = pad
                data = b"data: " + json.dumps(event).encode() + b"\n\n"
                yield b"event: " + event["type"].encode() + b"\n" + data if named_events else data
            if terminator is not None:
                yield terminator

        last = total - 1
        for i, payload in enumerate(payloads()):
            if i and fault.chunk_delay_ms:
                conn.wait(fault.chunk_delay_ms / 1000)
            if i == last:
                # The last event and the last-chunk marker go out in one write, and the record says
                # completed (and counts the chunk) before it: a client that saw the end may hang up,
                # and look at the record, at once.
                self._note(completed=True, chunks_sent=i + 1)
                try:
                    conn.send_chunk(payload, last=True)
                except BaseException:
                    self._note(chunks_sent=i)  # completed=False is noted by the caller
                    raise
                return
            conn.send_chunk(payload)
            self._note(chunks_sent=i + 1)
            if fault.drop_after_chunks is not None and i + 1 >= fault.drop_after_chunks:
                self._drop(conn)
                return

    def _embeddings(self, body: dict, fault: Fault, conn: ClientConnection) -> None:
        if not self._require(body, "model", str):
            return
        if "input" not in body:
            self._error(400, "Missing required parameter: 'input'.", param="input",
                        code="missing_required_parameter")
            return
        texts = shapes.embedding_inputs(body["input"])
        if texts is None:
            self._error(400, "'input' : input must be a string, an array of strings, or token arrays",
                        param="input", code="invalid_type")
            return
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            self._error(400, f"Invalid value for 'encoding_format': {encoding!r}.", param="encoding_format")
            return
        dims = body.get("dimensions") or shapes.DEFAULT_EMBEDDING_DIMENSIONS
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= shapes.MAX_EMBEDDING_DIMENSIONS:
            self._error(400, "Invalid value for 'dimensions'.", param="dimensions")
            return
        self._send_whole(200, shapes.embeddings_response(body["model"], texts, encoding, dims))

    def _models(self, body: Any, fault: Fault, conn: ClientConnection) -> None:
        self._send_whole(200, shapes.models_list(self.server.provider.models))

    # --- Responses endpoints ----------------------------------------------------------------

    def _responses(self, body: dict, fault: Fault, conn: ClientConnection) -> None:
        """POST /v1/responses: checks as OpenAI's, previous_response_id from what the fake kept,
        the reply planned as on the chat endpoint, a whole Response or its event stream."""
        provider = self.server.provider
        problem = responses.check_request(body)
        if problem is not None:
            self._error(400, problem[0], param=problem[1], code=problem[2])
            return
        history: list[dict] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            kept = provider.stored_response(previous)
            if kept is None:
                self._error(400, f"Previous response with id '{previous}' not found.", param="previous_response_id",
                            code="previous_response_not_found")
                return
            history = kept["input"] + kept["response"]["output"]
        items = history + responses.with_ids(responses.input_items(body.get("input")))
        problem = responses.check_pairing(items)
        if problem is not None:
            self._error(400, problem[0], param=problem[1], code=problem[2])
            return
        chat = responses.as_chat(body, items)
        reply = shapes.plan_reply(chat, fault.stream_words)
        usage = responses.usage(shapes.reply_usage(chat["messages"], reply))
        self._note(usage=usage)
        answer = responses.Answer(body, reply, usage)
        if body.get("store", True) is not False:
            provider.keep_response(answer.id, responses.stored(answer, items))
        if body.get("stream") is True:
            self._stream(answer.events(), answer.event_count(), fault, conn, named_events=True,
                         error_event=lambda sent: answer.failure_event(fault.stream_error, sent))
        else:
            self._send_whole(200, answer.response())

    def _stored_response(self, response_id: str, method: str, input_items: bool):
        """GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items (newest first, as
        OpenAI lists them by default; ``order=asc`` for oldest first)."""
        def handle(body: Any, fault: Fault, conn: ClientConnection) -> None:
            provider = self.server.provider
            kept = provider.stored_response(response_id)
            if kept is None:
                self._send_whole(404, responses.not_found(response_id))
            elif method == "DELETE":
                provider.forget_response(response_id)
                self._send_whole(200, {"id": response_id, "object": "response", "deleted": True})
            elif input_items:
                query = self._record["query"] if self._record else {}
                data = kept["input"] if query.get("order") == "asc" else list(reversed(kept["input"]))
                self._send_whole(200, {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                                       "last_id": data[-1]["id"] if data else None, "has_more": False})
            else:
                self._send_whole(200, kept["response"])
        return handle

    def _azure_v1(self, handler):
        """Azure OpenAI's v1 API (/openai/v1/...): no api-version, the model in the body, and a key
        (``api-key``, or an Entra ID bearer token)."""
        def handle(body: Any, fault: Fault, conn: ClientConnection) -> None:
            headers = self._record["headers"] if self._record else {}
            if not headers.get("api-key") and not headers.get("authorization"):
                self._send_whole(401, {"error": {"code": "401", "message": (
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                    "a valid key for an active subscription and use a correct regional API endpoint for your "
                    "resource.")}})
            else:
                handler(body, fault, conn)
        return handle

    # --- Anthropic endpoint -----------------------------------------------------------------

    def _messages(self, body: dict, fault: Fault, conn: ClientConnection) -> None:
        headers = self._record["headers"] if self._record else {}
        if not headers.get("x-api-key") and not headers.get("authorization"):  # newer SDKs send a bearer
            self._error(401, "x-api-key header is required")
            return
        if not headers.get("anthropic-version"):
            self._error(400, "anthropic-version: header is required")
            return
        problem = anthropic.check_request(body)
        if problem is not None:
            self._error(400, problem)
            return
        reply = anthropic.plan_reply(body, fault.stream_words)
        input_count, output_count = anthropic.input_tokens(body), anthropic.output_tokens(reply)
        usage = anthropic.usage(input_count, output_count)
        self._note(usage=usage)
        if body.get("stream") is True:
            self._stream(anthropic.iter_stream_events(body["model"], reply, input_count, output_count),
                         anthropic.stream_event_count(reply), fault, conn, named_events=True,
                         error_event=lambda _: anthropic.error_body("overloaded_error", "Overloaded"))
        else:
            self._send_whole(200, anthropic.message(body["model"], reply, usage))

    # --- control endpoints ------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        provider = self.server.provider
        if self.command == "GET" and path == "/_fake/requests":
            self._send_whole(200, provider.requests())
        elif self.command == "GET" and path == "/_fake/connections":
            self._send_whole(200, {"accepted": provider.connections_accepted()})
        elif self.command == "GET" and path == "/_fake/faults":
            self._send_whole(200, provider.faults.pending())
        elif self.command == "POST" and path == "/_fake/reset":
            provider.reset()
            self._send_whole(200, {"reset": True})
        elif self.command == "POST" and path == "/_fake/next":
            try:
                data = json.loads(raw or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("expected a JSON object")
                queued = provider.faults.push(Fault.from_json(data))
            except (ValueError, TypeError) as exc:
                self._error(400, f"bad fault: {exc}")
                return
            self._send_whole(200, {"queued": queued})
        else:
            self._error(404, f"Invalid URL ({self.command} {path})")


class _Handler(Routes, BaseHTTPRequestHandler):
    """The routes over HTTP/1.1 (TLS or not): one instance per connection, requests in turn."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body would wait for the
    # client's delayed ACK of the headers, 40 ms per answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server_version = "fake-openai/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.provider.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _lower_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = f"{out[key]}, {value}" if key in out else value
        return out

    def _send_head(self, status: int, headers: list[tuple[str, str]], length: int | None) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _write_body(self, data: bytes) -> None:
        self.wfile.write(data)

    def _client_connection(self) -> ClientConnection:
        return (TLSClientConnection if self.server.tls is not None else ClientConnection)(self.connection)


class _H2Exchange(Routes):
    """The routes over one HTTP/2 stream (h2wire.H2Wire makes one per request)."""

    protocol = "HTTP/2"

    def __init__(self, stream, server: _Server) -> None:
        self._h2_stream = stream
        self.server = server
        self.command = stream.method
        self.path = stream.path
        self.client_address = stream.wire.client_address

    def _read_body(self) -> bytes:
        return bytes(self._h2_stream.body)

    def _lower_headers(self) -> dict[str, str]:
        return dict(self._h2_stream.headers)

    def _send_head(self, status: int, headers: list[tuple[str, str]], length: int | None) -> None:
        self._h2_stream.send_head(status, headers, length)

    def _write_body(self, data: bytes) -> None:
        self._h2_stream.send_data(data, end_stream=True)

    def _client_connection(self):
        return self._h2_stream

    def handle(self) -> None:
        self._dispatch()
        self._h2_stream.finish()


class FakeProvider:
    """The fake provider, run in a background thread (tests) or in the foreground (CLI).

        fake = FakeProvider().start()
        fake.base_url              # "http://127.0.0.1:PORT/v1"
        fake.enqueue(status=500)   # next request gets a 500
        fake.requests()            # what was received
        fake.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, models: list[str] | None = None,
                 verbose: bool = False, tls: TLSFiles | None = None, http2: bool = False,
                 max_concurrent_streams: int = 256):
        self.host = host
        self.models = list(models or DEFAULT_MODELS)
        self.verbose = verbose
        self.log = RequestLog()
        self.faults = FaultQueue()
        # What an HTTP/2 connection's SETTINGS allow a client (h2wire.H2Wire).
        self.max_concurrent_streams = max_concurrent_streams
        self._responses_lock = threading.Lock()
        self._responses: dict[str, dict] = {}  # what POST /v1/responses kept (store not false)
        self._connections = 0  # TCP connections accepted since the last reset
        context = tls.server_context(http2) if tls is not None else None
        if context is None and http2:
            raise ValueError("HTTP/2 is offered over TLS (ALPN) only: give tls too")
        self._server = _Server((host, port), self, context)
        self._thread: threading.Thread | None = None
        # The CA a client must trust (a gateway's ca_file); None over plain HTTP.
        self.ca_file = tls.ca if tls is not None else None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self._server.tls is not None else 'http'}://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client (or the gateway's manifest) uses as the OpenAI base URL."""
        return f"{self.url}/v1"

    def start(self) -> "FakeProvider":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fakeprovider:{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- what tests use ---------------------------------------------------------------------

    def enqueue(self, **fault: Any) -> None:
        """Queues a fault for the next matching request(s); same fields as POST /_fake/next."""
        self.faults.push(Fault.from_json(fault))

    def requests(self, path: str | None = None, include_probes: bool = False) -> list[dict]:
        """A copy of every request received (optionally only those to ``path``), oldest first.
        Gateways' background health probes (user-agent ``sluice-health-probe``) are left out unless asked for."""
        records = self.log.snapshot()
        return [r for r in records if (path is None or r["path"] == path)
                and (include_probes or r["headers"].get("user-agent") != HEALTH_PROBE_USER_AGENT)]

    def wait_for(self, predicate, timeout: float = 5.0):
        """Waits until ``predicate(requests)`` is truthy and returns its value (None on timeout)."""
        return self.log.wait_for(predicate, timeout)

    def reset(self) -> None:
        self.log.clear()
        self.faults.clear()
        with self._responses_lock:
            self._responses.clear()
            self._connections = 0

    def count_connection(self) -> None:
        with self._responses_lock:
            self._connections += 1

    def connections_accepted(self) -> int:
        """TCP connections accepted since the last reset (HTTP/2 streams share theirs)."""
        with self._responses_lock:
            return self._connections

    # --- the Responses API's own store --------------------------------------------------------

    def keep_response(self, response_id: str, record: dict) -> None:
        with self._responses_lock:
            self._responses[response_id] = record

    def stored_response(self, response_id: str) -> dict | None:
        """What the fake kept of a response: {"input": items, "response": the Response}, or None."""
        with self._responses_lock:
            record = self._responses.get(response_id)
            return copy.deepcopy(record) if record is not None else None

    def forget_response(self, response_id: str) -> None:
        with self._responses_lock:
            self._responses.pop(response_id, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakeprovider.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--model", action="append", dest="models",
                        help="a model id for GET /v1/models (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    parser.add_argument("--tls-cert", help="serve TLS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="... and this PEM private key")
    parser.add_argument("--http2", action="store_true", help="offer HTTP/2 (ALPN h2) over TLS")
    parser.add_argument("--max-concurrent-streams", type=int, default=256,
                        help="HTTP/2 streams a client may open on one connection")
    args = parser.parse_args(argv)

    tls = TLSFiles(args.tls_cert, args.tls_key) if args.tls_cert else None
    provider = FakeProvider(args.host, args.port, args.models, args.verbose, tls=tls, http2=args.http2,
                            max_concurrent_streams=args.max_concurrent_streams)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=provider._server.shutdown).start())
    print(f"READY {provider.port}", flush=True)
    try:
        provider.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        provider._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
