"""A tiny OTLP/HTTP (JSON) trace receiver: enough of a collector to check the spans Sluice sends."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


class OTLPReceiver:
    """Collects spans posted to /v1/traces; `spans` is a flat list of dicts with hex ids."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver._take(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

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
                        })

    def stop(self) -> None:
        self.server.shutdown()
