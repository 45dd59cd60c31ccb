"""Faults the fake provider injects, and the queue that hands them out.

Tests talk to the fake through the gateway, which need not forward arbitrary client headers,
so faults are queued out of band (``POST /_fake/next`` or ``FakeProvider.enqueue``) and consumed
by the next matching requests. ``x-fake-*`` request headers remain as a per-request shortcut for
tests that hit the fake directly.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping


@dataclass
class Fault:
    """What to do differently for one request. All fields are optional.

    status / body / headers: answer with this canned response instead of the normal one
        (status defaults to 200 when only a body is given; body defaults to an error for the
        status in the endpoint's dialect, OpenAI's or, on /v1/messages, Anthropic's; a str body
        is sent verbatim, e.g. to serve broken JSON, or a scripted stream with headers
        ``{"content-type": "text/event-stream"}``).
    delay_ms: wait before sending the response headers.
    chunk_delay_ms: wait between SSE events of a stream.
    drop_after_chunks: reset the TCP connection after this many SSE events (0 = before any
        byte of the response; for a non-streamed request any value drops before the response).
    stream_words: make the reply exactly this many words (a long stream, with chunk_delay_ms
        a slow one).
    chunk_pad_bytes: add a string field of this many bytes to every SSE event of a stream
        (bulk, for back-pressure tests; the events are encoded lazily, so a huge stream costs
        the fake no memory).
    stream_error_after: after this many events of a stream, send an error event in the
        endpoint's dialect and end the stream there (HTTP status 200, the stream well-formed):
        OpenAI chat ``data: {"error": {...}}``, Anthropic ``event: error``, Responses an ``error``
        event numbered after the events sent (or, with ``stream_error`` "response.failed", a
        ``response.failed`` event whose response carries the error).
    stream_error: "error" (default) or "response.failed" (Responses streams only).
    path: only requests to this path consume the fault (None = any request but a gateway's
        background health probe, which would otherwise take a fault meant for a test's request).
    model: only requests whose JSON body names this model consume the fault (None = any);
        through the gateway that is the *upstream* model name, i.e. one target (for Azure
        paths, the deployment in the path).
    count: how many requests the fault applies to.
    """

    status: int | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    delay_ms: int = 0
    chunk_delay_ms: int = 0
    drop_after_chunks: int | None = None
    stream_words: int | None = None
    chunk_pad_bytes: int = 0
    stream_error_after: int | None = None
    stream_error: str = "error"
    path: str | None = None
    model: str | None = None
    count: int = 1

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Fault":
        """Builds a fault from the control endpoint's JSON, refusing unknown keys (typos)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s) {unknown}; known: {sorted(known)}")
        fault = cls(**data)
        fault.validate()
        return fault

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "Fault | None":
        """Reads ``x-fake-status``, ``x-fake-delay-ms``, ... (lower-case names) if any are set."""
        ints = {
            "x-fake-status": "status",
            "x-fake-delay-ms": "delay_ms",
            "x-fake-chunk-delay-ms": "chunk_delay_ms",
            "x-fake-drop-after-chunks": "drop_after_chunks",
            "x-fake-stream-words": "stream_words",
            "x-fake-chunk-pad-bytes": "chunk_pad_bytes",
            "x-fake-stream-error-after": "stream_error_after",
        }
        values = {field: int(headers[h]) for h, field in ints.items() if h in headers}
        return cls(**values) if values else None

    def validate(self) -> None:
        for name in ("delay_ms", "chunk_delay_ms", "chunk_pad_bytes", "count"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.stream_error not in ("error", "response.failed"):
            raise ValueError(f"stream_error must be 'error' or 'response.failed', got {self.stream_error!r}")
        for name in ("status", "drop_after_chunks", "stream_words", "stream_error_after"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or null, got {value!r}")

    @property
    def canned(self) -> bool:
        """Whether this fault replaces the normal answer with a fixed status/body."""
        return self.status is not None or self.body is not None

    def to_json(self) -> dict:
        return asdict(self)


class FaultQueue:
    """A thread-safe FIFO of faults; each is handed out ``count`` times, then dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def push(self, fault: Fault) -> int:
        with self._lock:
            self._faults.append(fault)
            return len(self._faults)

    def take(self, path: str, model: str | None = None, probe: bool = False) -> Fault | None:
        """The first queued fault matching ``path`` (and the body's ``model``), consuming one use.
        A health ``probe`` takes only a fault that names its path."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                on_path = fault.path == path if probe else fault.path in (None, path)
                if on_path and (fault.model is None or fault.model == model):
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[i]
                    return fault
            return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict]:
        with self._lock:
            return [f.to_json() for f in self._faults]
