"""A tiny OTLP/HTTP trace receiver: enough of a collector to check the spans Sluice sends. JSON
(`http/json`) is read by hand, as OTLP/JSON defines it; protobuf (`http/protobuf`, the default)
by the official opentelemetry-proto package, so the gateway's hand-written encoding is checked
against the project's own generated code."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _hex_id(value: str) -> str:
    """OTLP/JSON ids are hex; a protobuf-JSON encoder may send base64 instead: accept both."""
    if value and all(c in "0123456789abcdefABCDEF" for c in value) and len(value) in (16, 32):
        return value.lower()
    return base64.b64decode(value).hex() if value else ""


def _attribute(value: dict):
    for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if kind in value:
            return int(value[kind]) if kind == "intValue" else value[kind]
    return value


def _any_value(value):
    """A protobuf AnyValue's scalar (the gateway sends only strings, ints, doubles and bools)."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class OTLPReceiver:
    """Collects spans posted to /v1/traces; `spans` is a flat list of dicts with hex ids, whichever
    the encoding. `content_types` has each export's content type; `errors`, what could not be read."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.content_types: list[str] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                content_type = self.headers.get("content-type", "")
                protobuf = content_type.startswith("application/x-protobuf")
                with receiver.lock:
                    receiver.content_types.append(content_type)
                try:
                    if protobuf:
                        receiver._take_protobuf(body)
                    else:
                        receiver._take(json.loads(body or b"{}"))
                except Exception as error:  # noqa: BLE001 (any decoding failure is the test's to report)
                    with receiver.lock:
                        receiver.errors.append(f"{content_type}: {error!r}")
                    self.send_response(400)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                # An empty ExportTraceServiceResponse is zero bytes in protobuf, {} in JSON.
                answer = b"" if protobuf else b"{}"
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf" if protobuf else "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _take(self, payload: dict) -> None:
        for resource in payload.get("resourceSpans", []):
            service = {a["key"]: _attribute(a["value"]) for a in resource.get("resource", {}).get("attributes", [])}
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    with self.lock:
                        self.spans.append({
                            "trace_id": _hex_id(span.get("traceId", "")),
                            "span_id": _hex_id(span.get("spanId", "")),
                            "parent_id": _hex_id(span.get("parentSpanId", "")),
                            "name": span.get("name"),
                            "kind": span.get("kind"),
                            "attributes": {a["key"]: _attribute(a["value"]) for a in span.get("attributes", [])},
                            "status": span.get("status", {}),
                            "service": service.get("service.name"),
                            "trace_state": span.get("traceState", ""),
                            "scope": scope.get("scope", {}).get("name"),
                            "start": int(span.get("startTimeUnixNano", 0)),
                            "end": int(span.get("endTimeUnixNano", 0)),
                        })

    def _take_protobuf(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: _any_value(a.value) for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    with self.lock:
                        self.spans.append({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "attributes": {a.key: _any_value(a.value) for a in span.attributes},
                            "status": {"code": span.status.code, "message": span.status.message} if span.HasField("status") else {},
                            "service": service.get("service.name"),
                            "trace_state": span.trace_state,
                            "scope": scope.scope.name,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                        })

    def stop(self) -> None:
        self.server.shutdown()
