#!/usr/bin/env python3
"""Open streams to one TLS upstream over HTTP/2: connections used and gateway memory per stream.

Issue #26's targets: 1,000 concurrent streams to one https:// provider ride at most 4 TCP
connections (HTTP/2 multiplexing), and cost the gateway at most 40 KB of memory each.

    Tests/Integration/.venv or any python with h2 and cryptography:
    python bench/h2_streams.py [--sluice .build/release/sluice] [--n 1000] [--plain]

It starts, all on 127.0.0.1: the integration suite's fake provider over TLS with HTTP/2
(fakeprovider.server --http2, its certificate from a throwaway CA made now), sluice (release
build) with one openai-compatible provider at that https:// URL trusting the CA by ``ca_file``,
and bench/stream_client.py ``hold``, which opens N streams through sluice (one client connection
each; the provider paces every stream at one event a second, so all stay open). Once all are
open it reads sluice's VmRSS and asks the fake how many TCP connections it accepted and how many
distinct peers its N requests came from. ``--plain`` runs the same against the fake over plain
HTTP/1.1, for comparison (one upstream connection per stream). Every process it starts is stopped
by its pid at the end. Prints one JSON object; the figures go in bench/H2.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INTEGRATION = REPO / "Tests" / "Integration"
sys.path.insert(0, str(INTEGRATION))

from harness.net import free_port  # noqa: E402
from harness.tls import make_test_ca  # noqa: E402

CHAT = "/v1/chat/completions"


def proc_kb(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{proc.args[:3]} ended before printing {prefix!r}")
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no {prefix!r} from {proc.args[:3]} in {timeout} s")


def fake_call(url: str, path: str, body: dict | None = None):
    import ssl
    context = ssl.create_default_context(cafile=fake_call.ca_file) if url.startswith("https") else None
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=30, context=context) as resp:
        return json.loads(resp.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sluice", default=str(REPO / ".build" / "release" / "sluice"))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--plain", action="store_true", help="the fake over plain HTTP/1.1 instead")
    parser.add_argument("--hold-s", type=float, default=10)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sluice-h2-bench-"))
    ca = make_test_ca(work / "tls")
    procs: list[subprocess.Popen] = []
    key = "sk-bench-" + secrets.token_hex(12)
    try:
        fake_cmd = [sys.executable, "-m", "fakeprovider.server", "--port", "0"]
        if not args.plain:
            fake_cmd += ["--tls-cert", ca.server.cert, "--tls-key", ca.server.key, "--http2",
                         "--max-concurrent-streams", "256"]
        fake = subprocess.Popen(fake_cmd, cwd=INTEGRATION, stdout=subprocess.PIPE, text=True)
        procs.append(fake)
        fake_port = int(wait_for_line(fake, "READY ", 20).split()[1])
        fake_url = f"{'http' if args.plain else 'https'}://127.0.0.1:{fake_port}"
        fake_call.ca_file = str(ca.ca_file)
        # Every stream: 300 events a second apart, longer than the run.
        fake_call(fake_url, "/_fake/next", {"stream_words": 300, "chunk_delay_ms": 1000, "count": 1_000_000, "path": CHAT})

        port = free_port()
        provider = {"base_url": fake_url + "/v1", "api_key": "upstream-key"}
        if not args.plain:
            provider["ca_file"] = str(ca.ca_file)
        manifest = {
            "server": {"listen": [f"127.0.0.1:{port}"]},
            "providers": {"fake": {"plugin": "openai-compatible", "config": provider}},
            "models": {"bench-slow": {"targets": [{"provider": "fake", "model": "up-slow"}]}},
            "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [{"name": "bench", "key": key}]}},
                         {"plugin": "router", "config": {"retries": 0}}],
        }
        (work / "plugins.json").write_text(json.dumps(manifest))
        sluice = subprocess.Popen([args.sluice, "serve", "--config", str(work / "plugins.json")],
                                  stdout=open(work / "sluice.log", "w"), stderr=subprocess.STDOUT)
        procs.append(sluice)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or sluice.poll() is not None:
                    raise RuntimeError(f"sluice did not start: {(work / 'sluice.log').read_text()[-2000:]}")
                time.sleep(0.1)

        # One whole answer first: curl's thread, the TLS session and the upstream connection are
        # set up before the baseline, so the per-stream figure is what each stream adds.
        warm = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
                                      data=json.dumps({"model": "bench-slow", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                      headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
        urllib.request.urlopen(warm, timeout=30).read()
        time.sleep(1)
        rss_idle = proc_kb(sluice.pid)
        client = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "stream_client.py"), "hold", "--url", f"http://127.0.0.1:{port}/v1",
             "--key", key, "--model", "bench-slow", "--n", str(args.n), "--open-concurrency", "200",
             "--open-timeout-s", "120", "--hold-s", str(args.hold_s)],
            stdout=subprocess.PIPE, text=True)
        procs.append(client)
        ready = json.loads(wait_for_line(client, "READY ", 180)[len("READY "):])
        time.sleep(2)
        rss_holding, hwm = proc_kb(sluice.pid), proc_kb(sluice.pid, "VmHWM")
        records = fake_call(fake_url, "/_fake/requests")
        connections = fake_call(fake_url, "/_fake/connections")["accepted"]
        alive = json.loads(wait_for_line(client, "ALIVE ", args.hold_s + 60)[len("ALIVE "):])
        chat = [r for r in records if r["path"] == CHAT]
        result = {
            "transport": "http/1.1" if args.plain else "https, HTTP/2",
            "streams": args.n, "opened": ready["opened"], "failed": ready["failed"], "alive_after_hold": alive["alive"],
            "upstream_requests": len(chat),
            "protocols": sorted({r["protocol"] for r in chat}),
            "upstream_connections_accepted": connections,
            "upstream_peers": len({r["peer"] for r in chat}),
            "sluice_rss_idle_mb": round(rss_idle / 1024, 1),
            "sluice_rss_holding_mb": round(rss_holding / 1024, 1),
            "sluice_hwm_mb": round(hwm / 1024, 1),
            "sluice_kb_per_stream": round((rss_holding - rss_idle) / max(1, ready["opened"]), 1),
        }
        print(json.dumps(result, indent=2))
        return 0 if ready["failed"] == 0 else 1
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
