#!/usr/bin/env python3
"""What pipeline stages cost per request: the same requests through two sluices, one with auth +
router and one with the stages added, alternating in rounds on one keep-alive connection each;
CPU time of each sluice process from /proc, and its resident memory after the run.

    python3 bench/stage_cost.py [--stages STAGES] [--requests N] [--rounds R] [--sluice PATH]

`status-page` adds the status page's counting; `budget` adds `budget` (a cap per key, in memory)
and `spend-ledger` (rows to an SQLite state database), the two plugins of spend control;
`access-log`, `metrics`, `tracing` (exporting to a sink here that discards), `rate-limit` add one
plugin each, configured as bench/run does; `full` adds all of them and `validation` (bench/run's
full pipeline).

The upstream is translation.py's canned server. Prints one line per round and the median
difference; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from translation import KEY, Upstream, free_port, measure

REPO = Path(__file__).resolve().parents[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


OTLP = "OTLP_ENDPOINT"  # replaced by the sink's address when the manifest is written
ACCESS_LOG = {"plugin": "access-log"}
METRICS = {"plugin": "metrics"}
TRACING = {"plugin": "tracing", "config": {"otlp_endpoint": OTLP}}
VALIDATION = {"plugin": "validation", "config": {"max_tokens_cap": 8192}}
RATE_LIMIT = {"plugin": "rate-limit", "config": {"by": "key", "requests_per_minute": 1_000_000_000, "tokens_per_minute": 1_000_000_000_000}}
STAGES = {
    # (stages before auth, stages before the router, whether a state database is named); the
    # observability plugins and rate-limit as bench/run configures them
    "status-page": ([{"plugin": "status-page", "config": {"public": True}}], [], False),
    "budget": ([], [{"plugin": "budget", "config": {"limits": [{"key": "*", "usd": 1_000_000}]}}, {"plugin": "spend-ledger"}], True),
    "access-log": ([ACCESS_LOG], [], False),
    "metrics": ([METRICS], [], False),
    "tracing": ([TRACING], [], False),
    "rate-limit": ([], [RATE_LIMIT], False),
    "validation": ([], [VALIDATION], False),
    "full": ([ACCESS_LOG, METRICS, TRACING], [VALIDATION, RATE_LIMIT], False),
}


class OTLPSink(BaseHTTPRequestHandler):
    """Takes every OTLP/HTTP export and discards it (as bench/run's nginx sink does)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def start(binary: str, base: str, work: Path, stages: str | None, otlp: str = "", wrapper: list[str] = ()) -> tuple[subprocess.Popen, int]:
    port = free_port()
    pipeline = [{"plugin": "api-key-auth", "config": {"keys": [{"name": "bench", "key": {"env": "SLUICE_BENCH_KEY"}}]}},
                {"plugin": "router", "config": {"retries": 0}}]
    first, before_router, database = STAGES[stages] if stages else ([], [], False)
    pipeline = first + pipeline[:1] + before_router + pipeline[1:]
    manifest = {"server": {"listen": [f"127.0.0.1:{port}"], "drain_timeout_s": 1},
                "providers": {"chat": {"plugin": "openai-compatible", "config": {"base_url": base + "/v1"}}},
                "models": {"chat": {"targets": [{"provider": "chat", "model": "bench-upstream"}],
                                    "price": {"input_per_million": 1, "output_per_million": 2}}},
                "pipeline": pipeline}
    if database:
        manifest["database"] = {"url": f"sqlite:{work / 'state.db'}"}
    config = work / f"plugins-{stages}.json"
    config.write_text(json.dumps(manifest).replace(OTLP, otlp))
    process = subprocess.Popen([*wrapper, binary, "serve", "--config", str(config)], env={**os.environ, "SLUICE_BENCH_KEY": KEY},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("sluice did not start")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", choices=sorted(STAGES), default="status-page")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and sluice (default 2000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sluice", default=str(REPO / ".build" / "release" / "sluice"))
    args = parser.parse_args()

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    sink = ThreadingHTTPServer(("127.0.0.1", 0), OTLPSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    with tempfile.TemporaryDirectory() as work:
        without, port_without = start(args.sluice, base, Path(work), None)
        with_status, port_with = start(args.sluice, base, Path(work), args.stages, otlp)
        try:
            deltas, cpu = [], {False: [], True: []}
            for round_ in range(args.rounds):
                for stream in (False, True):
                    a = measure(port_without, without.pid, "chat", "chat", stream, args.requests)
                    b = measure(port_with, with_status.pid, "chat", "chat", stream, args.requests)
                    cpu[stream] += [(a["cpu_us_per_request"], b["cpu_us_per_request"])]
                    print(f"round {round_} {'stream' if stream else 'whole'}: without {a} with {b}", file=sys.stderr)
            for stream in (False, True):
                pairs = cpu[stream]
                without_us = statistics.median(p[0] for p in pairs)
                with_us = statistics.median(p[1] for p in pairs)
                deltas.append(with_us - without_us)
                print(f"{'stream' if stream else 'whole '}: CPU µs/request without {without_us:.1f}, with {with_us:.1f}, "
                      f"Δ {with_us - without_us:+.1f} (median of {len(pairs)} rounds of {args.requests})")
            print(f"RSS after {args.rounds * 2 * args.requests * 11 // 10} requests: without {rss_kib(without.pid)} KiB, "
                  f"with {rss_kib(with_status.pid)} KiB")
        finally:
            for process in (without, with_status):
                process.terminate()
                process.wait(10)
    upstream.shutdown()
    sink.shutdown()


if __name__ == "__main__":
    main()
