"""Latency sluice adds to an MCP tools/call: the same call, one connection, straight to a
FastMCP server over Streamable HTTP and through `sluice serve` (api-key-auth, access-log,
metrics in the pipeline), p50 and p99 over N calls each after a warm-up.

    .venv/bin/python bench/mcp_latency.py --sluice .build/debug/sluice [--calls 500]
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
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "Tests" / "Integration" / "mcpservers" / "tools_server.py"
KEY = "bench-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def answer(response: httpx.Response) -> dict:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(l[5:]) for l in response.text.splitlines() if l.startswith("data:")][-1]
    return response.json()


def measure(client: httpx.Client, url: str, headers: dict, tool: str, calls: int) -> list[float]:
    init = client.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    headers = dict(headers, **{"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"})
    client.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"a": 1, "b": 2}}}
    times = []
    for index in range(calls + 50):
        started = time.perf_counter()
        result = answer(client.post(url, headers=headers, json=call))
        elapsed = time.perf_counter() - started
        assert "result" in result, result
        if index >= 50:
            times.append(elapsed * 1000)
    return times


def summary(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {statistics.median(times):.2f} ms, p99 {times[int(len(times) * 0.99) - 1]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sluice", default=str(ROOT / ".build" / "debug" / "sluice"))
    parser.add_argument("--calls", type=int, default=500)
    options = parser.parse_args()
    mcp_port, sluice_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, str(SERVER), "http", "bench", str(mcp_port)], stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as folder:
        manifest = {
            "server": {"listen": [f"127.0.0.1:{sluice_port}"]},
            "mcp_servers": {"bench": {"url": f"http://127.0.0.1:{mcp_port}/mcp"}},
            "mcp_session_key": "bench-session-key-0123456789abcdef0123",
            "pipeline": [{"plugin": "access-log"}, {"plugin": "metrics"},
                         {"plugin": "api-key-auth", "config": {"keys": [{"name": "bench", "key": KEY}]}}, {"plugin": "router"}],
        }
        (Path(folder) / "plugins.json").write_text(json.dumps(manifest))
        gateway = subprocess.Popen([options.sluice, "serve", "--config", str(Path(folder) / "plugins.json")],
                                   stdout=subprocess.DEVNULL, env=dict(os.environ))
        try:
            wait(f"http://127.0.0.1:{mcp_port}/mcp")
            wait(f"http://127.0.0.1:{sluice_port}/health")
            base = {"accept": "application/json, text/event-stream"}
            with httpx.Client(timeout=30) as client:
                direct = measure(client, f"http://127.0.0.1:{mcp_port}/mcp", base, "add", options.calls)
            with httpx.Client(timeout=30) as client:
                through = measure(client, f"http://127.0.0.1:{sluice_port}/mcp", dict(base, authorization=f"Bearer {KEY}"),
                                  "bench__add", options.calls)
            print(f"direct:        {summary(direct)}")
            print(f"through sluice: {summary(through)}")
            print(f"added:          p50 {statistics.median(through) - statistics.median(direct):.2f} ms")
        finally:
            gateway.terminate()
            gateway.wait(30)
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
