"""The log of requests the fake provider received.

Tests assert on what the gateway actually sent upstream (headers, rewritten model, body) and on
what happened to the answer (completed, or aborted because the gateway hung up mid-stream).
Records are created when a request arrives and updated in place while it is answered, so a test
can poll one that is still streaming.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._changed = threading.Condition(self._lock)

    def add(self, *, method: str, path: str, query: dict, headers: dict, body: Any,
            body_size: int, peer: str, protocol: str = "HTTP/1.1", tls: bool = False) -> dict:
        record = {
            "seq": 0,
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body": body,
            "body_size": body_size,
            "peer": peer,            # "ip:port" of the client: equal peers = a reused connection
            "protocol": protocol,    # "HTTP/1.1" or "HTTP/2"
            "tls": tls,              # whether it came over TLS
            "fault": None,           # the fault applied, if any
            "status": None,          # status sent, None if the connection dropped before
            "stream": False,
            "chunks_sent": 0,        # SSE events written (streams only)
            "total_chunks": 0,       # SSE events in the whole stream, [DONE] included (streams only)
            "completed": False,      # the whole response was written
            "dropped": False,        # we reset the connection on purpose (fault drop_after_chunks)
            "client_disconnected": False,  # the peer went away before the response was complete
            "stream_aborted": False,       # ... and it happened while streaming
            "usage": None,           # the usage the answer reports, in the endpoint's own shape
        }
        with self._lock:
            record["seq"] = len(self._records)
            self._records.append(record)
            self._changed.notify_all()
        return record

    def update(self, record: dict, **changes: Any) -> None:
        with self._lock:
            record.update(changes)
            self._changed.notify_all()

    def snapshot(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[dict]], Any], timeout: float) -> Any:
        """Blocks until ``predicate(snapshot)`` is truthy; returns it, or None on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = predicate(copy.deepcopy(self._records))
                remaining = deadline - time.monotonic()
                if result or remaining <= 0:
                    return result or None
                self._changed.wait(remaining)
