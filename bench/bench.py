#!/usr/bin/env python3
"""Sluice benchmark suite: sluice against nginx (the floors) and optionally LiteLLM, on 127.0.0.1.

Run through ``bench/run`` (or ``make bench``); see ``bench/run --help``. Everything is bounded in
count and time; every process this script starts is stopped by its pid when it ends. Raw output
goes to bench/out/, the summary to bench/RESULTS.md.

It judges issue #26's targets, each a ratio to (or a margin over) the SwiftNIO floor measured in
the same run, so a busy or slow machine moves goal and figure together:
  CPU/req at 32 connections       auth + router ≤ 1.5× the floor; full pipeline ≤ 2× the floor
  each plugin (+CPU µs/req over   tracing ≤ 25, access-log ≤ 10, metrics ≤ 10, validation ≤ 15,
    auth + router, wrk -c32)        rate-limit ≤ 15
  long conversations              CPU per extra KB of request body (1 KB vs 200 KB bodies, wrk at
                                    2 connections): auth + router ≤ 3 µs (200 KB within 1.0 ms of
                                    1 KB at p50); auth + validation + router ≤ 8 µs
  latency at 1 connection         auth + router p50 ≤ the floor's p50 + 40 µs; full pipeline
                                    added p99 (over the upstream direct) ≤ 1 ms
  memory                          ≤ 20 KB per open http:// stream (full pipeline; 10,000 streams
                                    ≤ 250 MB), ≤ 40 KB per open https:// stream; RSS after the load
                                    runs ≤ 60 MB
  HTTP/2                          1,000 concurrent streams to one TLS upstream ride ≤ 4 connections
  streaming                       TTFB overhead ≤ 0.5 ms; longest-held chunk (median of the rounds' longest) within 1 ms of the floor's
Beside the targets, a diagnostic: the 1-connection latency again with each process pinned
(`taskset`), in two placements, the floor and sluice alike. With wrk, the upstream and the server all
on CPU 0, no wake-up crosses vCPUs: a request's own work. With the server alone on CPU 1 and wrk and
the upstream on CPU 0, every wake-up crosses: a gateway on a core of its own. Together they separate
what sluice adds from where the scheduler happened to put the three processes, which on a small VM
moves the spread p50 by tens of µs.
Each row of the targets table shows nginx's and the floor's figure beside sluice's, and LiteLLM's
(--with-litellm) and the baseline binary's (--baseline-bin) when measured. The https:// streams go
to the slow upstream through nginx terminating TLS with HTTP/2 (a certificate made for the run,
which sluice trusts by `ca_file`), through a fresh sluice with the full pipeline.

Before/after in one run: --baseline-bin PATH (say a release build of an older commit) runs that
binary's auth + router and full pipeline beside the current one's, interleaved in the same load
runs, and reports throughput, CPU/req, latency, per-KB body cost, streaming and memory per stream
side by side.

Wall time: about 10 minutes by default, 12-13 with --baseline-bin, ~15 with it and --with-litellm
(plus up to 10 minutes waiting for a quiet machine; --no-wait skips it). To fit, each target's
load is 20 s after a 3 s warm-up (CPU/req and the 1-connection p50/p99 settle well within that at
these rates: tens of thousands of requests per run), as five runs of 4 s in rounds that take every
target in turn, so that the machine's drift over the minutes of the runs falls on all alike; each
plugin pipeline 10 s (five rounds of 2 s, as the load runs), each body-size run 5 s
(the 200 KB runs still make hundreds of requests); the long-conversation stream hold is 2,000
streams, not 10,000, and only the current binary does it.

What runs (ports BENCH_PORT_BASE + n, default 28100 + n):
  +0  nginx: fixed OpenAI chat.completion JSON           (the upstream; "direct" = the physical floor)
  +1  nginx: fixed SSE stream of 20 chunks + [DONE]       (the fast streaming provider)
  +2  nginx: proxy_pass to +0 with a keep-alive pool      (the proxy floor)
  +3  sse_upstream.py: paced SSE (stamped chunks) and slow SSE (1 chunk/s, for many open streams)
  +4  sluice: api-key-auth + router
  +5  sluice: the full pipeline (every pipeline plugin `sluice plugins` lists that applies)
  +6  sluice: one pipeline at a time (start-up timing, auth + validation + router)
  +7  LiteLLM proxy (optional; bench/.venv-litellm)
  +8  nginx: OTLP/HTTP sink for the tracing plugin (answers 200, discards)
  +9  nio-floor: a bare SwiftNIO proxy to +0                (the framework floor; bench/nio-floor)
  +10 nio-floor: the same, to +3                            (its paced streams and open streams)
  +11 nginx: proxy_pass to +3, buffering off               (nginx's paced streams)
  +12 sluice: the full pipeline again, fresh, for the long-conversation hold
  +13 nio-floor: the same, to +1                            (its time to first byte)
  +14 nginx: proxy_pass to +1, buffering off               (nginx's time to first byte)
  +15 baseline sluice: api-key-auth + router              (--baseline-bin)
  +16 baseline sluice: the full pipeline                  (--baseline-bin)
  +20… sluice: one per pipeline that `what each plugin costs` measures, all running together

The floors say what a target costs before any gateway logic: nginx is the proxy floor; nio-floor,
a minimal HTTP/1.1 proxy written directly on SwiftNIO (the server sluice is built on), is the
floor of the framework. A target that the framework floor misses on this machine cannot be met
by code on top of it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
OUT = BENCH / "out"
LUA = BENCH / "wrk_chat.lua"
LITELLM_VENV = BENCH / ".venv-litellm"
KEY = "sk-bench-" + secrets.token_hex(12)
HISTORY_BYTES = 16_000  # earlier turns sent with each request in the long-conversation hold
# The per-KB body cost: a 1 KB and a 200 KB conversation (KiB, so the difference is 199 KB exactly),
# at a few connections so latency stays close to one request's while the CPU figure has many requests.
BODY_SMALL, BODY_LARGE = 1024, 200 * 1024
BODY_CONNS = 2

CHAT_JSON = ('{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-upstream",'
             '"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},'
             '"logprobs":null,"finish_reason":"stop"}],'
             '"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28},"system_fingerprint":"fp_bench"}')


def sse_body() -> str:
    """20 chunks (role, 18 words, finish) then [DONE], as one nginx config string (\\n escapes)."""
    head = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-upstream","choices":[{"index":0,'
    words = "Hello there! This is a fixed streamed answer from the benchmark upstream, sent in twenty small chunks.".split()
    events = [head + '"delta":{"role":"assistant","content":""},"finish_reason":null}]}']
    events += [head + '"delta":{"content":"%s "},"finish_reason":null}]}' % w for w in words[:18]]
    events += [head + '"delta":{},"finish_reason":"stop"}]}']
    events += ["[DONE]"]
    return "".join(f"data: {e}\\n\\n" for e in events)


# --- small helpers ----------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def proc_status(pid: int) -> dict:
    """VmRSS/VmHWM in MB, threads and open fds of a process."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[name] = round(int(value.split()[0]) / 1024, 1)
            elif name == "Threads":
                out["threads"] = int(value)
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return out


def process_tree(pid: int) -> list[int]:
    """pid and its children (nginx workers, uvicorn workers)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return [pid] + kids


def cpu_snapshot(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds used, context switches) summed over the processes and all their threads."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu, switches = 0.0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{pid}/task"):
                for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return cpu, switches


def rss_by_mapping(pid: int, top: int = 8) -> list[tuple[str, float]]:
    """Resident MB per mapped file (anonymous memory as [anon]/[heap]), largest first, from /proc/PID/smaps."""
    sizes: dict[str, int] = {}
    name = "?"
    try:
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            first = line.split(None, 1)[0]
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", first):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else "[anon]"
                name = os.path.basename(name) if name.startswith("/") else name
            elif first == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(line.split()[1])
    except OSError:
        return []
    return [(n, round(kb / 1024, 1)) for n, kb in sorted(sizes.items(), key=lambda kv: -kv[1])[:top]]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def chat_once(port: int, key: str | None, model: str = "bench", stream: bool = False) -> tuple[int, dict, bytes]:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 32}
    if stream:
        body["stream"] = True
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json",
                                          **({"authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        return 0, {}, str(e).encode()


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- processes --------------------------------------------------------------------------------

class Procs:
    """Every process the suite starts; stopped by pid (SIGTERM, then SIGKILL) at the end."""

    def __init__(self) -> None:
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
        f = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, preexec_fn=raise_nofile, cwd=REPO)
        f.close()
        self.items.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except ProcessLookupError:
                pass
        self.items = [(n, q) for n, q in self.items if q is not p]

    def stop_all(self) -> None:
        for _, p in reversed(list(self.items)):
            self.stop(p)


def wait_until(check, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


def ready_200(port: int, path: str = "/ready", timeout: float = 0.5) -> bool:
    """GET path over a raw socket; True on 200 (cheap enough to poll every half millisecond)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode())
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# --- the suite --------------------------------------------------------------------------------

def stream_stats(label: str, results: list[dict], failures: list[str]) -> dict:
    """A path's stream timings over its rounds (each a `stream_client.py timing` result): the
    percentiles of every stream and chunk together, the longest delay of all, and each round's
    longest with their median."""
    errors = [e for res in results for e in res["errors"]]
    if errors:
        failures.append(f"streaming {label}: {len(errors)} failed streams, e.g. {errors[0][:200]}")
    s = [x for res in results for x in res["streams"]]
    ttfb = [x["ttfb_us"] for x in s]
    total = [x["total_us"] for x in s]
    gaps = [g for x in s for g in x["gaps_us"]]
    delays = [d for x in s for d in x["delays_us"]]
    round_max = [max(d for x in res["streams"] for d in x["delays_us"]) for res in results
                 if any(x["delays_us"] for x in res["streams"])]
    return {"n": len(s), "errors": len(errors), "events_median": statistics.median([x["events"] for x in s]) if s else None,
            "ttfb_p50": pct(ttfb, 50), "ttfb_p99": pct(ttfb, 99), "total_p50": pct(total, 50), "total_p99": pct(total, 99),
            "gap_max": max(gaps) if gaps else None, "delay_p50": pct(delays, 50), "delay_p99": pct(delays, 99),
            "delay_max": max(delays) if delays else None, "delays": len(delays),
            "delay_max_rounds": round_max, "delay_max_median": statistics.median(round_max) if round_max else None}


def merged_rounds(runs: list[dict]) -> dict:
    """One target's wrk rounds as one figure: requests, time, CPU and errors summed (so CPU/req is
    the whole CPU over every request); each latency percentile the median of the rounds' own, and
    the extremes the extremes. Each round's figures are kept under "rounds"."""
    res = dict(runs[-1])
    for field in ("requests", "duration_us", "bytes", "non2xx", "error_total", "cpu_s", "ctx"):
        res[field] = sum(r.get(field, 0) for r in runs)
    res["errors"] = {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]}
    latency = {k: statistics.median(r["latency_us"][k] for r in runs) for k in runs[0]["latency_us"]}
    latency["min"] = min(r["latency_us"]["min"] for r in runs)
    latency["max"] = max(r["latency_us"]["max"] for r in runs)
    res["latency_us"] = {k: (round(v) if k not in ("mean", "stdev") else v) for k, v in latency.items()}
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6) if res["duration_us"] else 0
    if res["requests"]:
        res["cpu_us_per_req"] = res["cpu_s"] * 1e6 / res["requests"]
        res["ctx_per_req"] = res["ctx"] / res["requests"]
        res["cpu_cores"] = res["cpu_s"] / (res["duration_us"] / 1e6)
    res["rounds"] = [{"requests": r["requests"], "rps": r["rps"], "latency_us": r["latency_us"],
                      "cpu_us_per_req": r["cpu_s"] * 1e6 / r["requests"] if r["requests"] else None} for r in runs]
    return res


class Suite:
    def __init__(self, args) -> None:
        self.args = args
        self.procs = Procs()
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.r: dict = {"wrk": {}, "one_cpu": {}, "streaming": {}, "memory": {}, "startup": {}, "profile": {}, "body": {}}
        base = args.port_base
        self.port = {"json": base, "sse": base + 1, "proxy": base + 2, "py": base + 3,
                     "ar": base + 4, "full": base + 5, "start": base + 6, "litellm": base + 7, "otlp": base + 8,
                     "floor": base + 9, "floor-py": base + 10, "proxy-py": base + 11, "history": base + 12,
                     "floor-sse": base + 13, "proxy-sse": base + 14, "base-ar": base + 15, "base-full": base + 16,
                     "tls": base + 17}
        self.sluice = Path(os.environ.get("SLUICE_BIN", REPO / ".build/release/sluice"))
        self.floor = Path(os.environ.get("NIO_FLOOR_BIN", BENCH / "nio-floor/.build/release/nio-floor"))
        self.baseline = (Path(os.environ.get("BENCH_CALLER_DIR", os.getcwd())) / args.baseline_bin).resolve() \
            if args.baseline_bin else None
        self.pids: dict[str, subprocess.Popen] = {}
        # the process whose CPU a wrk target costs (the server under test, not the upstream)
        self.server_of = {"direct": "nginx-upstream", "nginx": "nginx-proxy", "floor": "floor", "sluice-ar": "ar",
                          "sluice-full": "full", "litellm": "litellm", "base-ar": "base-ar", "base-full": "base-full"}
        self.full_plugins: list[str] = []

    # ---- setup
    def preflight(self) -> None:
        for tool in ("nginx", "wrk"):
            if not shutil.which(tool):
                sys.exit(f"bench: {tool} is missing (bench/run installs it with apt-get)")
        if not self.sluice.exists():
            sys.exit(f"bench: no sluice binary at {self.sluice} (run `make release`, or set SLUICE_BIN)")
        if self.baseline and not self.baseline.exists():
            sys.exit(f"bench: no baseline binary at {self.baseline}")
        busy = [f"{k}={p}" for k, p in self.port.items() if not port_free(p)]
        if busy:
            sys.exit(f"bench: ports in use: {', '.join(busy)} (set BENCH_PORT_BASE to another base)")
        OUT.mkdir(parents=True, exist_ok=True)
        for old in OUT.glob("*"):
            if old.name in ("litellm-install.log", "nio-floor-build.log"):
                continue
            if old.is_file():
                old.unlink()
            else:
                shutil.rmtree(old, ignore_errors=True)
        # Measure a copy: a rebuild during the run must not swap the binary under the start-up runs.
        self.sluice_src = self.sluice
        (OUT / "bin").mkdir()
        self.sluice = OUT / "bin" / "sluice"
        shutil.copy2(self.sluice_src, self.sluice)
        if self.baseline:
            self.baseline_src = self.baseline
            self.baseline = OUT / "bin" / "sluice-baseline"
            shutil.copy2(self.baseline_src, self.baseline)

    def machine(self) -> dict:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
        head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "Sources", "Package.swift"],
                               capture_output=True, text=True).stdout.strip()
        versions = {
            "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().replace("nginx version: ", ""),
            "wrk": (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines() or ["?"])[0].split(" [")[0],
            "python": platform.python_version(),
        }
        st = self.sluice_src.stat()
        return {"nproc": os.cpu_count(), "cpu": model.group(1).strip() if model else "?",
                "mem_gb": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
                "kernel": platform.release(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "git": head + (" (+ uncommitted changes in Sources/)" if dirty else ""),
                "sluice_bin": str(self.sluice_src.relative_to(REPO) if self.sluice_src.is_relative_to(REPO) else self.sluice_src),
                "sluice_bin_mtime": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1], **versions,
                **({"baseline_bin": str(self.baseline_src),
                    "baseline_bin_mtime": dt.datetime.fromtimestamp(self.baseline_src.stat().st_mtime, dt.timezone.utc)
                    .strftime("%Y-%m-%d %H:%M UTC")} if self.baseline else {})}

    def wait_quiet(self) -> None:
        limit = self.args.quiet_wait
        start = time.monotonic()
        load = float(Path("/proc/loadavg").read_text().split()[0])
        first = load
        while load >= 0.7 and time.monotonic() - start < limit:
            if int(time.monotonic() - start) % 60 < 5:
                log(f"waiting for a quiet machine: 1-min load {load:.2f} (up to {limit:.0f}s)")
            time.sleep(5)
            load = float(Path("/proc/loadavg").read_text().split()[0])
        waited = time.monotonic() - start
        self.r["load_before"] = {"first": first, "at_start": load, "waited_s": round(waited), "quiet": load < 0.7}
        if load >= 0.7:
            top = subprocess.run(["ps", "-eo", "pcpu,pid,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
            (OUT / "busy-processes.txt").write_text(top)
            busiest = ", ".join(" ".join(l.split()[::2][::-1]) + "%" for l in top.splitlines()[1:5])
            self.notes.append(f"The machine was not quiet: 1-minute load {load:.2f} when measuring started "
                              f"(waited {waited:.0f}s; busiest then: {busiest}). Figures are noisier than on an idle machine.")
        log(f"1-min load {load:.2f} after waiting {waited:.0f}s; measuring")

    def write_tls(self) -> None:
        """A self-signed certificate for 127.0.0.1, which the TLS upstream serves and sluice trusts (`ca_file`)."""
        d = OUT / "tls"
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)

    def write_nginx(self) -> None:
        self.write_tls()
        for name, workers, servers in (
            ("nginx-upstream", 1, f"""
  server {{ listen 127.0.0.1:{self.port['json']} backlog=4096; default_type application/json;
           location / {{ return 200 '{CHAT_JSON}'; }} }}
  server {{ listen 127.0.0.1:{self.port['sse']} backlog=4096; default_type text/event-stream;
           location / {{ add_header cache-control no-cache; return 200 '{sse_body()}'; }} }}
  # the slow SSE upstream behind TLS and HTTP/2 (as providers serve), for the https:// streams
  server {{ listen 127.0.0.1:{self.port['tls']} ssl http2 backlog=4096;
           ssl_certificate {OUT / 'tls/cert.pem'}; ssl_certificate_key {OUT / 'tls/key.pem'};
           http2_max_concurrent_streams 1000;
           location / {{ proxy_pass http://127.0.0.1:{self.port['py']}; proxy_http_version 1.1; proxy_set_header Connection "";
                        proxy_buffering off; proxy_read_timeout 600s; }} }}
  # an OTLP/HTTP sink for the tracing plugin: accepts and discards every export
  server {{ listen 127.0.0.1:{self.port['otlp']}; client_max_body_size 0; default_type application/x-protobuf;
           location / {{ return 200 ''; }} }}"""),
            ("nginx-proxy", "auto", f"""
  upstream fake_provider {{ server 127.0.0.1:{self.port['json']}; keepalive 64; keepalive_requests 1000000; }}
  # a 200 KB conversation is held in memory, as the gateways hold it, not spooled to a temp file
  client_body_buffer_size 512k;
  server {{ listen 127.0.0.1:{self.port['proxy']} backlog=4096;
           location / {{ proxy_pass http://fake_provider; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
  # the fast SSE upstream relayed as it comes, for nginx's time to first byte
  upstream sse_provider {{ server 127.0.0.1:{self.port['sse']}; keepalive 16; }}
  server {{ listen 127.0.0.1:{self.port['proxy-sse']} backlog=4096;
           location / {{ proxy_pass http://sse_provider; proxy_http_version 1.1; proxy_set_header Connection "";
                        proxy_buffering off; }} }}
  # the paced SSE upstream, relayed as it comes (proxy_buffering off), for the chunk timings
  upstream paced_provider {{ server 127.0.0.1:{self.port['py']}; keepalive 16; }}
  server {{ listen 127.0.0.1:{self.port['proxy-py']} backlog=4096;
           location / {{ proxy_pass http://paced_provider; proxy_http_version 1.1; proxy_set_header Connection "";
                        proxy_buffering off; }} }}"""),
        ):
            d = OUT / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "nginx.conf").write_text(f"""# generated by bench/bench.py
user root;
worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {d}/client_body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
{servers}
}}
""")

    def sluice_manifest(self, port: int, pipeline: list[dict]) -> dict:
        def provider(base: str) -> dict:
            return {"plugin": "openai-compatible", "config": {"base_url": base, "timeout_s": 600}}
        return {
            "server": {"listen": [f"127.0.0.1:{port}"], "drain_timeout_s": 1, "idle_timeout_s": 600},
            "providers": {
                "fastjson": provider(f"http://127.0.0.1:{self.port['json']}/v1"),
                "fastsse": provider(f"http://127.0.0.1:{self.port['sse']}/v1"),
                "paced": provider(f"http://127.0.0.1:{self.port['py']}/paced/v1"),
                "slow": provider(f"http://127.0.0.1:{self.port['py']}/slow/v1"),
                "slow-tls": {"plugin": "openai-compatible",
                             "config": {"base_url": f"https://127.0.0.1:{self.port['tls']}/slow/v1", "timeout_s": 600,
                                        "ca_file": str(OUT / "tls/cert.pem")}},
            },
            "models": {
                "bench": {"targets": [{"provider": "fastjson", "model": "bench-upstream"}]},
                "bench-stream": {"targets": [{"provider": "fastsse", "model": "bench-upstream"}]},
                "bench-paced": {"targets": [{"provider": "paced", "model": "bench-upstream"}]},
                "bench-slow": {"targets": [{"provider": "slow", "model": "bench-upstream"}]},
                "bench-slow-tls": {"targets": [{"provider": "slow-tls", "model": "bench-upstream"}]},
            },
            "pipeline": pipeline,
        }

    def check_manifest(self, manifest: dict, path: Path, binary: Path | None = None) -> tuple[bool, str]:
        path.write_text(json.dumps(manifest, indent=2))
        p = subprocess.run([str(binary or self.sluice), "check", str(path)], capture_output=True, text=True, timeout=30,
                           env={**os.environ, "SLUICE_BENCH_KEY": KEY}, cwd=REPO)
        return p.returncode == 0, (p.stdout + p.stderr).strip()

    def write_sluice(self) -> None:
        listing = subprocess.run([str(self.sluice), "plugins"], capture_output=True, text=True, timeout=30).stdout
        (OUT / "sluice-plugins.txt").write_text(listing)
        kinds = dict(re.findall(r"^(\S+)\s+\((.*?)\)", listing, re.M))
        pipeline_plugins = [n for n, k in kinds.items() if "pipeline" in k]
        self.r["plugins_listed"] = pipeline_plugins
        auth = {"plugin": "api-key-auth", "config": {"keys": [{"name": "bench", "key": {"env": "SLUICE_BENCH_KEY"}}]}}
        router = {"plugin": "router", "config": {"retries": 1, "timeout_s": 600}}
        ok, msg = self.check_manifest(self.sluice_manifest(self.port["ar"], [auth, router]), OUT / "sluice-auth-router.json")
        if not ok:
            sys.exit(f"bench: the auth + router manifest is refused:\n{msg}")
        # The full pipeline: observability first (sees every request), then auth and policy, then the router.
        wanted = {
            "access-log": {},
            "metrics": {},
            "tracing": {"otlp_endpoint": f"http://127.0.0.1:{self.port['otlp']}"},
            "validation": {"max_tokens_cap": 8192},
            "rate-limit": {"by": "key", "requests_per_minute": 1_000_000_000, "tokens_per_minute": 1_000_000_000_000},
        }
        observability = [n for n in pipeline_plugins if re.search(r"log|metric|trac|otel|telemetry", n)]
        order = observability + ["api-key-auth"] + [n for n in ("validation", "rate-limit") if n in pipeline_plugins]
        skipped_known = [n for n in pipeline_plugins if n not in order and n not in ("router", "jwt-auth")]
        if skipped_known:
            self.notes.append(f"Pipeline plugins listed but not in the full pipeline (unknown to the suite): {', '.join(skipped_known)}.")
        for n in ("validation", "rate-limit"):
            if n not in pipeline_plugins:
                self.notes.append(f"`sluice plugins` does not list `{n}` (binary older than the source?): the full pipeline runs without it.")
        chosen: list[str] = []
        for name in order:
            trial = chosen + [name]
            pipe = [auth if n == "api-key-auth" else {"plugin": n, "config": wanted.get(n, {})} for n in trial] + [router]
            ok, msg = self.check_manifest(self.sluice_manifest(self.port["full"], pipe), OUT / "sluice-full.json")
            if ok:
                chosen = trial
            else:
                self.notes.append(f"`{name}` left out of the full pipeline: `sluice check` refused its config: {msg[:300]}")
        self.full_plugins = chosen + ["router"]
        self.entry = {n: auth if n == "api-key-auth" else {"plugin": n, "config": wanted.get(n, {})} for n in chosen}
        self.entry["router"] = router
        self.observability = observability
        pipe = [self.entry[n] for n in self.full_plugins]
        ok, msg = self.check_manifest(self.sluice_manifest(self.port["full"], pipe), OUT / "sluice-full.json")
        assert ok, msg
        # The same manifests on other ports: start-up timing, and the long-conversation hold's fresh sluice.
        for source, port, target in (("sluice-auth-router.json", "start", "sluice-startup.json"),
                                     ("sluice-full.json", "history", "sluice-history.json")):
            manifest = json.loads((OUT / source).read_text())
            manifest["server"]["listen"] = [f"127.0.0.1:{self.port[port]}"]
            (OUT / target).write_text(json.dumps(manifest, indent=2))
        log(f"full pipeline: {' → '.join(self.full_plugins)}")
        if self.baseline:
            self.write_baseline()

    def write_baseline(self) -> None:
        """The baseline binary gets the same two manifests on its own ports. An older binary may refuse
        a plugin or setting the current one has: that plugin is left out of its full pipeline, noted."""
        self.base_plugins: list[str] = []
        ok, msg = self.check_manifest(self.sluice_manifest(self.port["base-ar"], [self.entry["api-key-auth"], self.entry["router"]]),
                                      OUT / "baseline-auth-router.json", self.baseline)
        if not ok:
            self.notes.append(f"The baseline binary refused the auth + router manifest; baseline not measured: {msg[:300]}")
            self.baseline = None
            return
        chosen: list[str] = []
        for name in self.full_plugins[:-1]:
            trial = chosen + [name]
            ok, msg = self.check_manifest(self.sluice_manifest(self.port["base-full"], [self.entry[n] for n in trial] + [self.entry["router"]]),
                                          OUT / "baseline-full.json", self.baseline)
            if ok:
                chosen = trial
            else:
                self.notes.append(f"Baseline: `{name}` left out of its full pipeline: its `sluice check` refused it: {msg[:200]}")
        self.base_plugins = chosen + ["router"]
        ok, msg = self.check_manifest(self.sluice_manifest(self.port["base-full"], [self.entry[n] for n in self.base_plugins]),
                                      OUT / "baseline-full.json", self.baseline)
        assert ok, msg
        log(f"baseline full pipeline: {' → '.join(self.base_plugins)}")

    def start_servers(self) -> None:
        self.write_nginx()
        self.write_sluice()
        for name in ("nginx-upstream", "nginx-proxy"):
            d = OUT / name
            self.pids[name] = self.procs.start(name, ["nginx", "-p", str(d), "-c", str(d / "nginx.conf")], d / "stdout.log")
        self.pids["sse_upstream"] = self.procs.start(
            "sse_upstream", [sys.executable, str(BENCH / "sse_upstream.py"), "--port", str(self.port["py"]),
                             "--chunks", "20", "--gap-ms", "5", "--slow-max-s", "600", "--max-lifetime-s", "3600"],
            OUT / "sse_upstream.log")
        if self.floor.exists():
            for name, upstream in (("floor", "json"), ("floor-py", "py"), ("floor-sse", "sse")):
                self.pids[name] = self.procs.start(
                    name, [str(self.floor), "--port", str(self.port[name]), "--upstream", f"127.0.0.1:{self.port[upstream]}"],
                    OUT / f"{name}.log")
        else:
            self.notes.append(f"The SwiftNIO framework floor was not measured: no {self.floor} (bench/run builds it; "
                              "see bench/out/nio-floor-build.log).")
        floors = [(n, self.port[n]) for n in ("floor", "floor-py", "floor-sse")] if self.floor.exists() else []
        for key, port in [("json", self.port["json"]), ("sse", self.port["sse"]), ("proxy", self.port["proxy"]),
                          ("py", self.port["py"]), ("proxy-py", self.port["proxy-py"]), ("proxy-sse", self.port["proxy-sse"])] + floors:
            if not wait_until(lambda: ready_200(port, "/v1/models"), 10):
                raise SystemExit(f"bench: the {key} upstream on {port} did not come up (see bench/out/)")
        servers = [("ar", self.sluice, "sluice-auth-router.json"), ("full", self.sluice, "sluice-full.json")]
        if self.baseline:
            servers += [("base-ar", self.baseline, "baseline-auth-router.json"), ("base-full", self.baseline, "baseline-full.json")]
        for name, binary, manifest in servers:
            p = self.procs.start(f"sluice-{name}", [str(binary), "serve", "--config", str(OUT / manifest)],
                                 OUT / f"sluice-{name}.log", env={"SLUICE_BENCH_KEY": KEY})
            self.pids[name] = p
            if not wait_until(lambda: ready_200(self.port[name]), 15):
                raise SystemExit(f"bench: sluice ({name}) did not answer /ready (see bench/out/sluice-{name}.log)")
        time.sleep(1.0)
        for name, _, _ in servers:
            self.r["memory"].setdefault(name, {})["idle"] = proc_status(self.pids[name].pid)
        self.r["memory"]["full"]["idle_by_mapping"] = rss_by_mapping(self.pids["full"].pid)

    def start_litellm(self) -> None:
        exe = LITELLM_VENV / "bin" / "litellm"
        if not exe.exists():
            self.notes.append("LiteLLM not measured: bench/.venv-litellm is not installed (`bench/run --with-litellm` installs it).")
            return
        cfg = OUT / "litellm.yaml"
        cfg.write_text(f"""model_list:
  - model_name: bench
    litellm_params: {{model: openai/bench-upstream, api_base: "http://127.0.0.1:{self.port['json']}/v1", api_key: sk-upstream}}
  - model_name: bench-stream
    litellm_params: {{model: openai/bench-upstream, api_base: "http://127.0.0.1:{self.port['sse']}/v1", api_key: sk-upstream}}
general_settings:
  master_key: {KEY}
litellm_settings:
  telemetry: false
  drop_params: true
""")
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "NO_PROXY": "127.0.0.1,localhost",
               "no_proxy": "127.0.0.1,localhost", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "DISABLE_ADMIN_UI": "True",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TIKTOKEN_CACHE_DIR": str(OUT / "tiktoken")}
        t0 = time.monotonic()
        p = self.procs.start("litellm", [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port",
                                         str(self.port["litellm"]), "--num_workers", "1"], OUT / "litellm.log", env=env)
        self.pids["litellm"] = p
        if not wait_until(lambda: ready_200(self.port["litellm"], "/health/liveliness", 2), 120, 0.25):
            self.notes.append("LiteLLM did not answer /health/liveliness within 120 s; not measured (see bench/out/litellm.log).")
            self.procs.stop(p)
            del self.pids["litellm"]
            return
        self.r["litellm_startup_s"] = round(time.monotonic() - t0, 2)
        version = subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('litellm'))"], capture_output=True, text=True)
        self.r["litellm_version"] = version.stdout.strip()

    def litellm(self) -> None:
        """LiteLLM last and alone: it is started only for its own runs, so it takes no CPU from the others."""
        self.start_litellm()
        if "litellm" not in self.pids:
            return
        usable = self.sanity({"litellm": (self.port["litellm"], KEY)})
        if usable:
            self.load_runs(usable)
            log(f"streaming through LiteLLM: {self.args.streams} streams")
            res = self.stream_timing("fast-litellm", f"http://127.0.0.1:{self.port['litellm']}/v1", KEY, "bench-stream")
            if res:
                self.r["streaming"]["fast-litellm"] = res
            self.body_cost("litellm", process_tree(self.pids["litellm"].pid), self.port["litellm"], KEY)
            self.r["memory"]["litellm"] = proc_status(self.pids["litellm"].pid)
        self.procs.stop(self.pids.pop("litellm"))

    # ---- sanity
    def sanity(self, targets: dict | None = None) -> dict:
        targets = targets or {"direct": (self.port["json"], None), "nginx": (self.port["proxy"], None),
                              **({"floor": (self.port["floor"], None)} if "floor" in self.pids else {}),
                              "sluice-ar": (self.port["ar"], KEY), "sluice-full": (self.port["full"], KEY),
                              **({"base-ar": (self.port["base-ar"], KEY), "base-full": (self.port["base-full"], KEY)}
                                 if self.baseline else {})}
        usable = {}
        for name, (port, key) in targets.items():
            status, headers, body = chat_once(port, key)
            ok = status == 200 and b'"choices"' in body
            (OUT / f"sanity-{name}.txt").write_text(f"HTTP {status}\n{json.dumps(headers, indent=1)}\n{body[:2000].decode(errors='replace')}\n")
            if ok:
                usable[name] = (port, key)
            else:
                self.failures.append(f"{name}: a single chat request failed before the load runs: HTTP {status} {body[:200]!r}")
        if "sluice-ar" in usable:  # a wrong key must be refused, or auth is not in the path
            status, _, _ = chat_once(self.port["ar"], "sk-wrong")
            if status != 401:
                self.failures.append(f"sluice-ar answered HTTP {status} to a wrong key (expected 401)")
        return usable

    # ---- wrk
    def wrk(self, name: str, port: int, key: str | None, conns: int, seconds: float, tag: str,
            body_bytes: int | None = None, cpus: str | None = None) -> dict | None:
        threads = 1 if conns == 1 else 2
        # wrk takes whole seconds only
        cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s",
               "-s", str(LUA), f"http://127.0.0.1:{port}"]
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        env = {**os.environ, "BENCH_KEY": key or "none", "BENCH_MODEL": "bench", "BENCH_BODY_BYTES": str(body_bytes or "")}
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            self.failures.append(f"wrk {name} c{conns} did not finish")
            return None
        (OUT / f"wrk-{name}-c{conns}{tag}.txt").write_text(" ".join(cmd) + "\n" + p.stdout + p.stderr)
        m = re.search(r"^WRK_JSON (.*)$", p.stdout, re.M)
        if not m:
            self.failures.append(f"wrk {name} c{conns}: no summary (exit {p.returncode}): {p.stderr[:200]}")
            return None
        res = json.loads(m.group(1))
        res["rps"] = res["requests"] / (res["duration_us"] / 1e6) if res["duration_us"] else 0
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
        res["non2xx"] = int(non2xx.group(1)) if non2xx else 0
        res["error_total"] = sum(res["errors"].values()) + res["non2xx"] - res["errors"]["status"]
        return res

    def load_runs(self, usable: dict) -> None:
        """Every target at 1 and at 32 connections, in rounds that take the targets in turn: on a
        shared machine the speed drifts over minutes, and a target measured in one block would
        carry whatever drift fell on its block. In rounds, each target samples the whole span alike."""
        secs, warm, rounds = self.args.seconds, self.args.warmup, self.args.rounds
        each = max(1, round(secs / rounds))
        for conns in (1, 32):
            runs: dict[str, list[dict]] = {name: [] for name in usable}
            for name, (port, key) in usable.items():
                log(f"wrk {name} c{conns}: {warm:g}s warm-up")
                self.wrk(name, port, key, conns, warm, "-warmup")
            for round_ in range(rounds):
                log(f"wrk c{conns}, round {round_ + 1} of {rounds}: {each:g}s each")
                for name, (port, key) in usable.items():
                    pids = process_tree(self.pids[self.server_of[name]].pid)
                    cpu0 = cpu_snapshot(pids)
                    res = self.wrk(name, port, key, conns, each, f"-round{round_ + 1}")
                    cpu1 = cpu_snapshot(pids)
                    self.truncate_logs()
                    if res is not None:
                        res["cpu_s"], res["ctx"] = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
                        runs[name].append(res)
            for name, measured in runs.items():
                if not measured:
                    continue
                res = merged_rounds(measured)
                self.r["wrk"].setdefault(name, {})[conns] = res
                if res["error_total"]:
                    self.failures.append(f"wrk {name} c{conns}: {res['error_total']} errors "
                                         f"(socket {res['errors']}, non-2xx {res['non2xx']}) in {res['requests']} requests")
                p50s = ", ".join(str(r["latency_us"]["p50"]) for r in measured)
                cpus = ", ".join(f"{r['cpu_us_per_req']:.1f}" for r in res["rounds"] if r.get("cpu_us_per_req"))
                log(f"  {name} c{conns}: {res['rps']:.0f} req/s, p50 {res['latency_us']['p50']} µs (rounds {p50s}), "
                    f"CPU {res.get('cpu_us_per_req', 0):.1f} µs/req (rounds {cpus}), errors {res['error_total']}")

    # The placements of the pinned 1-connection runs: (key in the results, the server's CPU, wrk's
    # and the upstream's CPU, what the log calls it).
    PLACEMENTS = (("one_cpu", "0", "0", "all on CPU 0"), ("apart", "1", "0", "the server on CPU 1, wrk and the upstream on CPU 0"))

    def pinned_latency(self, usable: dict) -> None:
        """The 1-connection latency again with every process pinned, in each of `PLACEMENTS`.
        Spread over the vCPUs (the runs above), each request wakes a process on another vCPU two or
        three times, and how often the scheduler puts them together changes the p50 by tens of µs.
        All on one CPU, no wake-up crosses vCPUs: the request's own work. The server apart, every
        wake-up crosses. Diagnostics beside the target, which stays the spread p50."""
        if (os.cpu_count() or 1) < 2:
            return
        all_cpus = f"0-{(os.cpu_count() or 1) - 1}"
        upstream = process_tree(self.pids["nginx-upstream"].pid)
        for key_, server_cpu, other_cpu, title in self.PLACEMENTS:
            for name in ("direct", "floor", "sluice-ar", "base-ar"):
                if name not in usable:
                    continue
                port, key = usable[name]
                # the direct run has no server of its own: the upstream is the server it measures
                server = set(process_tree(self.pids[self.server_of[name]].pid))
                groups = ((server, server_cpu),) if name == "direct" else ((upstream, other_cpu), (server, server_cpu))
                for pids, cpu in groups:
                    for pid in pids:
                        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], capture_output=True)
                try:
                    log(f"wrk {name} c1, {title}: 1s warm-up + 5s")
                    self.wrk(name, port, key, 1, 1, f"-{key_}-warmup", cpus=other_cpu)
                    res = self.wrk(name, port, key, 1, 5, f"-{key_}", cpus=other_cpu)
                finally:
                    for pid in set(upstream) | server:
                        subprocess.run(["taskset", "-a", "-p", "-c", all_cpus, str(pid)], capture_output=True)
                self.truncate_logs()
                if res:
                    self.r.setdefault(key_, {})[name] = res
                    log(f"  p50 {res['latency_us']['p50']} µs, p99 {res['latency_us']['p99']} µs")

    def measured_wrk(self, name: str, pids: list[int], port: int, key: str | None, conns: int, seconds: float,
                     tag: str = "", body_bytes: int | None = None) -> dict | None:
        """A 1 s warm-up, then one wrk run with the CPU and context switches of `pids` over it."""
        self.wrk(name, port, key, conns, 1, f"{tag}-warmup", body_bytes)
        cpu0 = cpu_snapshot(pids)
        res = self.wrk(name, port, key, conns, seconds, tag, body_bytes)
        cpu1 = cpu_snapshot(pids)
        self.truncate_logs()
        if res and res["requests"]:
            res["cpu_us_per_req"] = (cpu1[0] - cpu0[0]) * 1e6 / res["requests"]
            res["ctx_per_req"] = (cpu1[1] - cpu0[1]) / res["requests"]
            res["cpu_cores"] = (cpu1[0] - cpu0[0]) / (res["duration_us"] / 1e6)
            if res["error_total"]:
                self.failures.append(f"wrk {name} c{conns}{tag}: {res['error_total']} errors "
                                     f"(socket {res['errors']}, non-2xx {res['non2xx']}) in {res['requests']} requests")
        return res

    # ---- long conversations: what each KB of request body costs
    def body_cost(self, name: str, pids: list[int], port: int, key: str | None) -> None:
        """CPU/req with a 1 KB and a 200 KB conversation; the difference over the 199 KB between them is
        the cost of a KB of body (reading, parsing, policy, forwarding), the rest of a request cancelling out."""
        secs = self.args.body_seconds
        runs = {}
        for size in (BODY_SMALL, BODY_LARGE):
            res = self.measured_wrk(f"body-{name}", pids, port, key, BODY_CONNS, secs, f"-{size // 1024}k", size)
            if not res or not res.get("cpu_us_per_req"):
                return
            runs[size] = res
        small, large = runs[BODY_SMALL], runs[BODY_LARGE]
        kb = (large["body_bytes"] - small["body_bytes"]) / 1024
        out = {"small": small, "large": large, "kb": kb,
               "per_kb_us": (large["cpu_us_per_req"] - small["cpu_us_per_req"]) / kb,
               "p50_diff_us": large["latency_us"]["p50"] - small["latency_us"]["p50"],
               "p99_diff_us": large["latency_us"]["p99"] - small["latency_us"]["p99"]}
        self.r["body"][name] = out
        log(f"  body {name}: {small['cpu_us_per_req']:.0f} → {large['cpu_us_per_req']:.0f} µs CPU/req, "
            f"{out['per_kb_us']:.2f} µs per KB, p50 +{out['p50_diff_us']} µs")

    def fresh_sluice(self, binary: Path, label: str, names: list[str]) -> subprocess.Popen | None:
        """A sluice with the pipeline `names` on the one-at-a-time port; None (noted) if it does not come up."""
        if not wait_until(lambda: port_free(self.port["start"]), 10):
            self.failures.append(f"{label}: the port {self.port['start']} stayed busy")
            return None
        path = OUT / f"sluice-{label}.json"
        path.write_text(json.dumps(self.sluice_manifest(self.port["start"], [self.entry[n] for n in names]), indent=2))
        p = self.procs.start(f"sluice-{label}", [str(binary), "serve", "--config", str(path)],
                             OUT / f"sluice-{label}.log", env={"SLUICE_BENCH_KEY": KEY})
        if not wait_until(lambda: ready_200(self.port["start"]), 15):
            self.failures.append(f"{label}: sluice did not answer /ready (bench/out/sluice-{label}.log)")
            self.procs.stop(p)
            return None
        return p

    def body_costs(self, usable: dict) -> None:
        log(f"long conversations: {BODY_SMALL // 1024} KB and {BODY_LARGE // 1024} KB bodies, "
            f"wrk -c{BODY_CONNS}, {self.args.body_seconds:g} s each")
        for name in ("nginx", "floor", "sluice-ar", "base-ar"):
            if name in usable:
                port, key = usable[name]
                self.body_cost(name, process_tree(self.pids[self.server_of[name]].pid), port, key)
        # validation reads every message: its per-KB cost on top of auth + router, in a fresh sluice
        with_validation = [("sluice-val", self.sluice, "validation" in self.full_plugins)]
        if self.baseline:
            with_validation.append(("base-val", self.baseline, "validation" in self.base_plugins))
        for name, binary, has in with_validation:
            if not has:
                self.notes.append(f"{name}: no validation plugin in this binary's full pipeline; its per-KB cost was not measured.")
                continue
            p = self.fresh_sluice(binary, name, ["api-key-auth", "validation", "router"])
            if p is None:
                continue
            try:
                self.body_cost(name, [p.pid], self.port["start"], KEY)
            finally:
                self.procs.stop(p)
            if os.path.exists(OUT / f"sluice-{name}.log"):
                os.truncate(OUT / f"sluice-{name}.log", 0)

    def truncate_logs(self) -> None:
        """Access logs under load would fill the disk: keep the head and any warning/error lines, count the rest."""
        for name in ("ar", "full", "base-ar", "base-full"):
            path = OUT / f"sluice-{name}.log"
            if not path.exists() or path.stat().st_size < 4 * 1024 * 1024:
                continue
            kept, lines, notable = [], 0, []
            with open(path, "rb") as f:
                for line in f:
                    lines += 1
                    if lines <= 20:
                        kept.append(line)
                    elif re.search(rb'"level"\s*:\s*"(warning|error|critical)"', line) and len(notable) < 50:
                        notable.append(line)
            with open(OUT / f"sluice-{name}.log.head", "ab") as f:
                f.write(b"".join(kept) + b"... (%d lines in all; warnings/errors follow)\n" % lines + b"".join(notable))
            os.truncate(path, 0)  # sluice writes with O_APPEND: it carries on at the new end

    # ---- what each plugin costs
    def plugin_costs(self) -> None:
        """auth + router, then auth + router + one plugin each, then the full pipeline: each in a sluice
        of its own, all started together, under wrk -c32 in rounds that take the pipelines in turn (as
        the load runs do); req/s and CPU per request show what each plugin adds."""
        extras = [n for n in self.full_plugins if n not in ("api-key-auth", "router")]
        if not extras:
            return
        secs, rounds = self.args.plugin_seconds, self.args.rounds
        each = max(1, round(secs / rounds))
        variants = [("auth + router", ["api-key-auth", "router"])]
        for n in extras:
            variants.append((f"+ {n}", ([n, "api-key-auth"] if n in self.observability else ["api-key-auth", n]) + ["router"]))
        variants.append(("full pipeline", self.full_plugins))
        log(f"plugin costs: {len(variants)} pipelines, {rounds} rounds of {each:g}s each at 32 connections")
        running = []  # (label, names, port, process, log)
        try:
            for i, (label, names) in enumerate(variants):
                port = self.args.port_base + 20 + i
                manifest = self.sluice_manifest(port, [self.entry[n] for n in names])
                path = OUT / f"sluice-cost-{re.sub(r'[^a-z-]', '', label.replace(' ', '-'))}.json"
                path.write_text(json.dumps(manifest, indent=2))
                log_path = OUT / f"sluice-cost-{i}.log"
                p = self.procs.start("sluice-cost", [str(self.sluice), "serve", "--config", str(path)], log_path,
                                     env={"SLUICE_BENCH_KEY": KEY})
                if not wait_until(lambda: ready_200(port), 15):
                    self.failures.append(f"plugin costs: sluice ({label}) did not answer /ready on port {port}")
                    self.procs.stop(p)
                    continue
                running.append((label, names, port, p, log_path))
            for i, (label, _, port, _, log_path) in enumerate(running):
                self.wrk(f"cost{i}", port, KEY, 32, 1, "-warmup")
                os.truncate(log_path, 0)
            measured: dict[str, list[dict]] = {label: [] for label, *_ in running}
            for round_ in range(rounds):
                for i, (label, _, port, p, log_path) in enumerate(running):
                    cpu0 = cpu_snapshot([p.pid])
                    res = self.wrk(f"cost{i}", port, KEY, 32, each, f"-round{round_ + 1}")
                    cpu1 = cpu_snapshot([p.pid])
                    os.truncate(log_path, 0)  # the access log's lines under load
                    if res and res["requests"]:
                        res["cpu_s"], res["ctx"] = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
                        measured[label].append(res)
        finally:
            for *_, p, _ in running:
                self.procs.stop(p)
        rows = []
        for label, names, *_ in running:
            if not measured[label]:
                continue
            res = merged_rounds(measured[label])
            if res["error_total"]:
                self.failures.append(f"plugin costs ({label}): {res['error_total']} errors (non-2xx {res['non2xx']})")
            rows.append({"label": label, "pipeline": names, "rps": res["rps"], "p50": res["latency_us"]["p50"],
                         "errors": res["error_total"], "cpu_us_per_req": res["cpu_us_per_req"],
                         "ctx_per_req": res["ctx_per_req"]})
            cpus = ", ".join(f"{r['cpu_us_per_req']:.1f}" for r in res["rounds"])
            log(f"  {label}: {res['rps']:.0f} req/s, {res['cpu_us_per_req']:.1f} µs CPU/req (rounds {cpus})")
        self.r["plugin_costs"] = rows

    # ---- profile
    def profile(self) -> None:
        if not shutil.which("perf"):
            self.notes.append("No profile: perf is not installed.")
            return
        pid = self.pids["ar"].pid
        secs = self.args.perf_seconds
        log(f"perf record -g on sluice (auth + router) under wrk c32 for {secs:g}s")
        env = {**os.environ, "BENCH_KEY": KEY, "BENCH_MODEL": "bench"}
        wrk = subprocess.Popen(["wrk", "-t", "2", "-c", "32", "-d", f"{secs + 3:g}s", "--timeout", "5s", "-s", str(LUA),
                                f"http://127.0.0.1:{self.port['ar']}"], stdout=open(OUT / "wrk-perf.txt", "w"),
                               stderr=subprocess.STDOUT, env=env)
        time.sleep(1.5)
        data = OUT / "perf.data"
        rec = subprocess.run(["perf", "record", "-g", "-F", "999", "-p", str(pid), "-o", str(data), "--", "sleep", f"{secs:g}"],
                             capture_output=True, text=True, timeout=secs + 60)
        wrk.wait(timeout=secs + 60)
        self.truncate_logs()
        if rec.returncode != 0 or not data.exists():
            self.notes.append(f"perf record failed: {rec.stderr[-300:]}")
            return
        demangle = shutil.which("swift-demangle") or next((str(p) for p in (Path(shutil.which("swift") or "/nonexistent").resolve().parent / "swift-demangle",) if p.exists()), None)

        def report(sort: str, extra: list[str] | None = None, demangled: bool = True) -> str:
            rep = subprocess.run(["perf", "report", "-i", str(data), "-g", "none", "--sort", sort, "--stdio",
                                  "--percent-limit", "0.3"] + (extra or ["--no-children"]),
                                 capture_output=True, text=True, timeout=300)
            text = rep.stdout
            if demangle and demangled:
                text = subprocess.run([demangle, "--simplified"], input=text, capture_output=True, text=True).stdout or text
            return text
        symbols, dsos, comms = report("symbol"), report("dso"), report("pid")
        # Threads: the curl thread inherits its creator's name, so find it by its run loop in the call graphs.
        curl_tids = set(re.findall(r"(\d+):\S+\s+\[\.\]\s+\$s6Kernel14UpstreamClientC3run",
                                   report("pid,symbol", ["--children"], demangled=False)))
        comms = "\n".join(
            re.sub(r"(\d+):(\S.*)$", lambda m: f"{m.group(1)}:" + ("libcurl thread (UpstreamClient.run)" if m.group(1) in curl_tids
                   else "Swift concurrency pool" if "default-qos" in m.group(2) else m.group(2).strip()), line)
            for line in comms.splitlines())
        # Inclusive time of sluice's own modules (Kernel, Plugins, the sluice CLI), picked by mangled prefix.
        raw = report("dso,symbol", ["--children"], demangled=False)
        own = [line for line in raw.splitlines()
               if re.match(rf"\s*[\d.]+%\s+[\d.]+%\s+{re.escape(self.sluice.name)}\s+\[\.\]\s+\$s(6Kernel|7Plugins|6sluice)", line)]
        inclusive = "\n".join(own)
        if demangle:
            inclusive = subprocess.run([demangle, "--simplified"], input=inclusive, capture_output=True, text=True).stdout or inclusive
        (OUT / "perf-symbols.txt").write_text(symbols)
        (OUT / "perf-dso.txt").write_text(dsos)
        (OUT / "perf-threads.txt").write_text(comms)
        (OUT / "perf-inclusive-sluice.txt").write_text(inclusive)

        def rows(text: str, n: int, skip: str | None = None) -> list[tuple[float, str]]:
            out = []
            for line in text.splitlines():
                m = re.match(r"\s*([\d.]+)%\s+(?:[\d.]+%\s+)?(?:\S+\s+(?=\[[.k]\]))?(.*)$", line)
                if m:
                    name = re.split(r"\s{2,}", re.sub(r"^\[[.k]\]\s+", "", m.group(2).strip()))[0]
                    if skip and re.search(skip, name):
                        continue
                    out.append((float(m.group(1)), name))
            return out[:n]
        glue = r"^(partial apply|thunk|reabstraction thunk|merged )"
        self.r["profile"] = {"symbols": rows(symbols, 25), "dsos": rows(dsos, 8), "threads": rows(comms, 8),
                             "inclusive": rows(inclusive, 25, glue),
                             "samples_note": f"perf record -g -F 999 -p <sluice> for {secs:g}s under wrk -c32"}

    # ---- streaming
    def stream_timing(self, label: str, url: str, key: str | None, model: str) -> dict | None:
        measured = self.stream_run(label, url, key, model, self.args.streams)
        return stream_stats(label, [measured], self.failures) if measured else None

    def stream_run(self, label: str, url: str, key: str | None, model: str, n: int, tag: str = "") -> dict | None:
        """n streams through `url`, one after another: each one's chunks as the client saw them."""
        cmd = [sys.executable, str(BENCH / "stream_client.py"), "timing", "--url", url, "--model", model,
               "--n", str(n), "--warmup", "3", "--max-s", "120"] + (["--key", key] if key else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            self.failures.append(f"streaming {label}{tag}: client did not finish")
            return None
        (OUT / f"stream-{label}{tag}.json").write_text(p.stdout + p.stderr)
        try:
            return json.loads(p.stdout)
        except ValueError:
            self.failures.append(f"streaming {label}{tag}: no result: {p.stderr[-300:]}")
            return None

    def streaming(self, usable: dict) -> None:
        log(f"streaming: {self.args.streams} streams each, fast (nginx SSE) and paced (20 chunks 5 ms apart)")
        runs = [("fast-direct", f"http://127.0.0.1:{self.port['sse']}/v1", None, "bench-stream"),
                ("paced-direct", f"http://127.0.0.1:{self.port['py']}/paced/v1", None, "bench-paced"),
                ("fast-nginx", f"http://127.0.0.1:{self.port['proxy-sse']}/v1", None, "bench-stream"),
                ("paced-nginx", f"http://127.0.0.1:{self.port['proxy-py']}/paced/v1", None, "bench-paced")]
        if "floor-py" in self.pids:
            runs += [("fast-floor", f"http://127.0.0.1:{self.port['floor-sse']}/v1", None, "bench-stream"),
                     ("paced-floor", f"http://127.0.0.1:{self.port['floor-py']}/paced/v1", None, "bench-paced")]
        for name in ("sluice-ar", "sluice-full", "base-ar", "base-full"):
            if name in usable:
                port = usable[name][0]
                runs += [(f"fast-{name}", f"http://127.0.0.1:{port}/v1", KEY, "bench-stream"),
                         (f"paced-{name}", f"http://127.0.0.1:{port}/v1", KEY, "bench-paced")]
        # In rounds, as the load runs: a chunk's delay is at the mercy of the machine's other work,
        # and the longest of a path's delays is the one most likely to be a moment when the host ran
        # something else. Each round's longest is kept, and the paths compared on their median.
        rounds, measured = self.args.rounds, {label: [] for label, *_ in runs}
        per_round = max(1, round(self.args.streams / rounds))
        for round_ in range(rounds):
            for label, url, key, model in runs:
                res = self.stream_run(label, url, key, model, per_round, f"-round{round_ + 1}")
                if res:
                    measured[label].append(res)
        for label, results in measured.items():
            if results:
                self.r["streaming"][label] = stream_stats(label, results, self.failures)
        self.truncate_logs()

    # ---- memory
    def many_streams(self) -> None:
        target = self.args.many_streams
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # sluice holds two descriptors per stream (the client's and the provider's connection).
        n = min(target, (hard - 200) // 2)
        if n < target:
            self.notes.append(
                f"Open streams: {target:,} asked, {n:,} measured. Each stream costs sluice two file descriptors (client "
                f"and provider connection), and the hard RLIMIT_NOFILE here is {hard:,} (this container cannot raise it: "
                f"`ulimit -Hn` is refused without CAP_SYS_RESOURCE), so {target:,} streams need ≥ {2 * target + 100:,}. "
                f"The 10,000 figure is extrapolated linearly from the measured per-stream cost.")
        self.r["memory"]["streams_target"] = target
        self.r["memory"]["streams_n"] = n
        log(f"holding {n:,} open streams through sluice (full pipeline) from the slow upstream")
        st = self.hold_streams("sluice", self.pids["full"].pid, f"http://127.0.0.1:{self.port['full']}/v1", KEY, n)
        self.r["memory"]["streams"] = st
        ready, alive = st["ready"], st["alive"]
        if ready and ready["failed"]:
            self.failures.append(f"open streams: {ready['failed']} of {n} failed to open: {ready['failures']}")
        if alive and alive["alive"] < (ready or {}).get("opened", 0):
            self.failures.append(f"open streams: only {alive['alive']} of {ready['opened']} still received chunks after {self.args.hold_seconds}s")
        log(f"  opened {ready and ready['opened']}, RSS {st['before'].get('VmRSS')} → {st['holding'].get('VmRSS')} MB → "
            f"{st['after_close'].get('VmRSS')} MB after closing")
        if "floor-py" in self.pids:
            log(f"holding {n:,} open streams through the SwiftNIO floor")
            fl = self.hold_streams("floor", self.pids["floor-py"].pid, f"http://127.0.0.1:{self.port['floor-py']}/slow/v1", None, n)
            self.r["memory"]["streams_floor"] = fl
            log(f"  opened {fl['ready'] and fl['ready']['opened']}, RSS {fl['before'].get('VmRSS')} → {fl['holding'].get('VmRSS')} MB")
        if self.baseline and "base-full" in self.pids:
            log(f"holding {n:,} open streams through the baseline sluice (full pipeline)")
            bl = self.hold_streams("baseline", self.pids["base-full"].pid, f"http://127.0.0.1:{self.port['base-full']}/v1", KEY, n)
            self.r["memory"]["streams_base"] = bl
            if bl["ready"] and bl["ready"]["failed"]:
                self.failures.append(f"open streams (baseline): {bl['ready']['failed']} of {n} failed to open")
            log(f"  opened {bl['ready'] and bl['ready']['opened']}, RSS {bl['before'].get('VmRSS')} → {bl['holding'].get('VmRSS')} MB")
        # Chat clients send the whole conversation with every request: the same streams with a long
        # one, through a fresh sluice (memory freed by the hold above would hide the cost).
        m = min(n, 2000)
        log(f"holding {m:,} open streams through a fresh sluice (full pipeline), each request carrying a "
            f"{HISTORY_BYTES // 1000} KB conversation")
        fresh = self.procs.start("sluice-history", [str(self.sluice), "serve", "--config", str(OUT / "sluice-history.json")],
                                 OUT / "sluice-history.log", env={"SLUICE_BENCH_KEY": KEY})
        if not wait_until(lambda: ready_200(self.port["history"]), 15):
            self.failures.append("the long-conversation hold: sluice did not answer /ready (bench/out/sluice-history.log)")
            self.procs.stop(fresh)
            return
        self.r["memory"]["streams_history"] = self.hold_streams(
            "history", fresh.pid, f"http://127.0.0.1:{self.port['history']}/v1", KEY, m,
            ["--history-bytes", str(HISTORY_BYTES)])
        self.procs.stop(fresh)
        hready = self.r["memory"]["streams_history"]["ready"]
        if not hready or hready["failed"]:
            self.failures.append(f"open streams with a long conversation: {hready and hready['failed']} of {m} failed to open")

    def tls_streams(self) -> None:
        """Open streams over https:// (TLS, HTTP/2) through a fresh sluice with the full pipeline: memory
        per stream, and the connections they ride."""
        n = min(1000, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 200) // 2)
        self.r["memory"]["tls_n"] = n
        log(f"holding {n:,} open streams through a fresh sluice (full pipeline) to the slow upstream over https:// (HTTP/2)")
        fresh = self.fresh_sluice(self.sluice, "tls", self.full_plugins)
        if fresh is None:
            return
        # One stream first, read to its first chunk and dropped: curl's thread, its TLS context and the
        # connection are set up once, not a cost of each stream.
        warm = http.client.HTTPConnection("127.0.0.1", self.port["start"], timeout=10)
        try:
            warm.request("POST", "/v1/chat/completions", json.dumps(
                {"model": "bench-slow-tls", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
                {"content-type": "application/json", "authorization": f"Bearer {KEY}"})
            answer = warm.getresponse()
            if answer.status != 200:
                self.failures.append(f"the https:// hold: a first stream was answered HTTP {answer.status}: {answer.read()[:300]!r}")
            answer.read1(256)
        except OSError as e:
            self.failures.append(f"the https:// hold: a first stream failed: {e}")
        finally:
            warm.close()
        time.sleep(2)
        st = self.hold_streams("tls", fresh.pid, f"http://127.0.0.1:{self.port['start']}/v1", KEY, n,
                               model="bench-slow-tls", connections_to=self.port["tls"])
        self.procs.stop(fresh)
        self.r["memory"]["streams_tls"] = st
        ready = st["ready"]
        if not ready or ready["failed"]:
            self.failures.append(f"open streams over https://: {ready and ready['failed']} of {n} failed to open "
                                 f"(bench/out/hold-tls-client.stderr)")
        log(f"  opened {ready and ready['opened']}, RSS {st['before'].get('VmRSS')} → {st['holding'].get('VmRSS')} MB, "
            f"{st['holding'].get('connections')} connections to the upstream")

    def hold_streams(self, label: str, pid: int, url: str, key: str | None, n: int, extra: list[str] | None = None,
                     model: str = "bench-slow", connections_to: int | None = None) -> dict:
        """Opens n slow streams through the server `pid` and reads its memory before, while holding, and after
        (and, given `connections_to`, how many TCP connections to that port are open while holding)."""
        before = proc_status(pid)
        client = subprocess.Popen([sys.executable, str(BENCH / "stream_client.py"), "hold", "--url", url,
                                   "--key", key or "none", "--model", model,
                                   "--n", str(n), "--open-concurrency", "200", "--open-timeout-s", str(self.args.open_timeout),
                                   "--hold-s", str(self.args.hold_seconds)] + (extra or []),
                                  stdout=subprocess.PIPE, stderr=open(OUT / f"hold-{label}-client.stderr", "w"), text=True,
                                  preexec_fn=raise_nofile)
        self.procs.items.append(("hold-client", client))
        lines, ready, alive = [], None, None
        peak = {}
        deadline = time.monotonic() + self.args.open_timeout + self.args.hold_seconds + 120
        try:
            for line in client.stdout:
                lines.append(line)
                if line.startswith("READY "):
                    ready = json.loads(line[6:])
                    time.sleep(min(3, self.args.hold_seconds / 2))
                    peak = proc_status(pid)
                    peak["upstream_fds"] = proc_status(self.pids["sse_upstream"].pid).get("fds")
                    if connections_to:
                        # this sluice's own: every sluice of the run has the provider, and its health probes keep a connection too
                        listing = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{connections_to} )"],
                                                 capture_output=True, text=True).stdout
                        peak["connections"] = sum(f"pid={pid}," in line for line in listing.splitlines())
                elif line.startswith("ALIVE "):
                    alive = json.loads(line[6:])
                    again = proc_status(pid)
                    if again.get("VmRSS", 0) > peak.get("VmRSS", 0):
                        peak.update(again)
                if time.monotonic() > deadline:
                    break
            client.wait(timeout=60)
        finally:
            self.procs.stop(client)
            (OUT / f"hold-{label}-client.log").write_text("".join(lines))
        time.sleep(3)
        return {"before": before, "holding": peak, "after_close": proc_status(pid), "ready": ready, "alive": alive}

    # ---- start-up
    def startup(self) -> None:
        runs = self.args.startup_runs
        log(f"start-up: exec → GET /ready 200, {runs} times")
        times = []
        manifest = OUT / "sluice-startup.json"
        for i in range(runs):
            if not wait_until(lambda: port_free(self.port["start"]), 10):
                self.failures.append("start-up: the port stayed busy after the previous run")
                break
            t0 = time.perf_counter()
            p = self.procs.start("sluice-startup", [str(self.sluice), "serve", "--config", str(manifest)],
                                 OUT / "sluice-startup.log", env={"SLUICE_BENCH_KEY": KEY})
            ok = wait_until(lambda: ready_200(self.port["start"]), 10, 0.0005)
            t1 = time.perf_counter()
            self.procs.stop(p)
            if ok:
                times.append((t1 - t0) * 1000)
            else:
                self.failures.append(f"start-up run {i + 1}: /ready did not answer 200 within 10 s")
        self.r["startup"] = {"runs_ms": [round(t, 1) for t in times], "median_ms": statistics.median(times) if times else None,
                             "min_ms": min(times) if times else None, "max_ms": max(times) if times else None}

    # ---- run
    def run(self) -> None:
        self.preflight()
        self.r["machine"] = self.machine()
        self.r["settings"] = {k: v for k, v in vars(self.args).items()}
        t_start = time.monotonic()
        try:
            self.start_servers()
            usable = self.sanity()
            self.wait_quiet()
            self.load_runs(usable)
            self.pinned_latency(usable)
            self.streaming(usable)
            servers = ["ar", "full"] + (["base-ar", "base-full"] if self.baseline else [])
            # RSS after the load runs is read before the body-size runs, whose 200 KB bodies would add to it
            for name in servers:
                self.r["memory"][name]["after_load"] = proc_status(self.pids[name].pid)
            # the floors' RSS after the same runs, beside sluice's (nginx: master and workers together)
            if "floor" in self.pids:
                self.r["memory"]["floor"] = {"after_load": proc_status(self.pids["floor"].pid)}
            tree = [proc_status(q) for q in process_tree(self.pids["nginx-proxy"].pid)]
            self.r["memory"]["nginx"] = {"after_load": {"VmRSS": round(sum(t.get("VmRSS", 0) for t in tree), 1)}}
            self.body_costs(usable)
            if "metrics" in self.full_plugins:
                status, body = http_get(self.port["full"], "/metrics")
                (OUT / "metrics-full.txt").write_bytes(body)
                if status != 200:
                    self.failures.append(f"GET /metrics on the full pipeline answered HTTP {status}")
            if not self.args.no_perf:
                self.profile()
            self.plugin_costs()
            self.many_streams()
            self.tls_streams()
            self.startup()
            if self.args.with_litellm:
                self.litellm()
            else:
                self.notes.append("LiteLLM not measured (run `bench/run --with-litellm`).")
            self.r["load_after"] = float(Path("/proc/loadavg").read_text().split()[0])
            for name in servers:
                if self.pids[name].poll() is not None:
                    self.failures.append(f"sluice ({name}) exited during the run with status {self.pids[name].returncode}")
        finally:
            self.procs.stop_all()
            self.truncate_logs()
        self.r["elapsed_s"] = round(time.monotonic() - t_start)
        self.r["notes"], self.r["failures"] = self.notes, self.failures
        self.r["full_pipeline"] = self.full_plugins
        self.r["baseline_pipeline"] = getattr(self, "base_plugins", None) if self.baseline else None
        (OUT / "summary.json").write_text(json.dumps(self.r, indent=2, default=str))
        results = render(self.r, self.args)
        (BENCH / "RESULTS.md").write_text(results)
        print(results)


# --- the report -------------------------------------------------------------------------------

def fmt(v, digits=0, unit="") -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{unit}"


def render(r: dict, args) -> str:
    m = r["machine"]
    w = r["wrk"]
    out = []
    add = out.append
    lb = r.get("load_before", {})
    add("# Sluice benchmark results\n")
    add(f"Generated by `bench/run{' --quick' if args.quick else ''}{' --with-litellm' if args.with_litellm else ''}` "
        f"on {m['date']} in {r.get('elapsed_s', '?')} s. Raw output: `bench/out/` (wrk text, stream timings, perf report, "
        f"summary.json). Everything on 127.0.0.1; each wrk figure is {args.rounds} runs of {max(1, round(args.seconds / args.rounds)):g} s after a "
        f"{args.warmup:g} s warm-up, in rounds that take every target in turn: CPU/req over all of them, latency percentiles the "
        f"median of the runs'.\n")
    add("| machine | |\n|---|---|")
    add(f"| CPU | {m['nproc']} × {m['cpu']} |\n| memory | {m['mem_gb']} GB |\n| kernel | {m['kernel']} |")
    add(f"| load (1 min) | {fmt(lb.get('at_start'), 2)} when measuring started"
        f"{' (quiet)' if lb.get('quiet') else ' — **not quiet**'}, waited {lb.get('waited_s', 0)} s; {fmt(r.get('load_after'), 2)} at the end |")
    add(f"| sluice | `{m['sluice_bin']}` built {m['sluice_bin_mtime']}; HEAD {m['git']} |")
    add(f"| tools | nginx {m['nginx']}, {m['wrk']}, Python {m['python']}"
        f"{', LiteLLM ' + r['litellm_version'] if r.get('litellm_version') else ''} |")
    add(f"| full pipeline | {' → '.join(r.get('full_pipeline', []))} |")
    if m.get("baseline_bin"):
        add(f"| baseline sluice | `{m['baseline_bin']}` built {m['baseline_bin_mtime']}; full pipeline "
            f"{' → '.join(r.get('baseline_pipeline') or []) or '–'} |")
    add("")

    names = {"direct": "upstream direct (physical floor)", "nginx": "nginx proxy_pass (proxy floor)",
             "floor": "SwiftNIO proxy (framework floor)", "sluice-ar": "sluice: auth + router", "sluice-full": "sluice: full pipeline",
             "base-ar": "baseline sluice: auth + router", "base-full": "baseline sluice: full pipeline", "litellm": "LiteLLM proxy"}
    add("## Non-streaming chat completions (wrk)\n")
    add("CPU/req and switches/req: CPU time (user + system, all threads; /proc/PID/stat) and context switches "
        "(/proc/PID/task/*/status) of the server under test alone — for the proxies not counting the upstream — "
        "divided by the requests served. Less sensitive to a busy machine than req/s.\n")
    add("| target | conns | req/s | × nginx | × direct | p50 µs | p99 µs | p99.9 µs | CPU µs/req | switches/req | cores busy | errors |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for conns in (1, 32):
        for name in names:
            res = w.get(name, {}).get(conns)
            if not res:
                continue
            ng = w.get("nginx", {}).get(conns, {}).get("rps")
            di = w.get("direct", {}).get(conns, {}).get("rps")
            lat = res["latency_us"]
            add(f"| {names[name]} | {conns} | {fmt(res['rps'])} | {fmt(res['rps'] / ng if ng else None, 2)} | "
                f"{fmt(res['rps'] / di if di else None, 2)} | {lat['p50']} | {lat['p99']} | {lat['p999']} | "
                f"{fmt(res.get('cpu_us_per_req'), 1)} | {fmt(res.get('ctx_per_req'), 2)} | {fmt(res.get('cpu_cores'), 2)} | "
                f"{res['error_total'] if res['error_total'] else 0}{' ⚠' if res['error_total'] else ''} |")
    add("")
    d1 = w.get("direct", {}).get(1)
    if d1:
        add("Added latency at 1 connection (percentile of the target minus the same percentile direct):\n")
        add("| target | added p50 µs | added p99 µs |\n|---|---:|---:|")
        for name in ("nginx", "floor", "sluice-ar", "sluice-full", "base-ar", "base-full", "litellm"):
            res = w.get(name, {}).get(1)
            if res:
                add(f"| {names[name]} | {res['latency_us']['p50'] - d1['latency_us']['p50']} | "
                    f"{res['latency_us']['p99'] - d1['latency_us']['p99']} |")
        add("")

    one, apart = r.get("one_cpu") or {}, r.get("apart") or {}
    if one.get("floor") or apart.get("floor"):
        add("The same at 1 connection with every process pinned, the floor and sluice alike (a diagnostic; spread "
            "over the vCPUs as above, where the scheduler puts each process moves the p50 by tens of µs). All on "
            "CPU 0, no wake-up crosses vCPUs: the request's own work. The server alone on CPU 1, with wrk and the "
            "upstream on CPU 0, every wake-up crosses, as for a gateway on a core of its own:\n")
        add("| target | all on CPU 0: p50 µs | p99 µs | + p50 vs the floor | server apart: p50 µs | p99 µs | + p50 vs the floor |\n"
            "|---|---:|---:|---:|---:|---:|---:|")

        def cells(placed: dict, name: str) -> str:
            res, floor = placed.get(name), placed.get("floor")
            if not res:
                return "| – | – | –"
            lat = res["latency_us"]
            vs = f"{lat['p50'] - floor['latency_us']['p50']:+d}" if floor else "–"
            return f"| {lat['p50']} | {lat['p99']} | {vs}"
        for name in ("direct", "floor", "sluice-ar", "base-ar"):
            if one.get(name) or apart.get(name):
                add(f"| {names[name]} {cells(one, name)} {cells(apart, name)} |")
        add("")

    ng = w.get("nginx", {}).get(32, {}).get("cpu_us_per_req")
    fl = w.get("floor", {}).get(32, {}).get("cpu_us_per_req")
    if ng or fl:
        def ratios(v):
            return ", ".join(x for x in (f"{v / fl:.2f}× the SwiftNIO floor's {fl:.1f} µs" if fl else None,
                                         f"{v / ng:.1f}× nginx's {ng:.1f} µs" if ng else None) if x)
        parts = [f"{names[n]} {w[n][32]['cpu_us_per_req']:.1f} µs ({ratios(w[n][32]['cpu_us_per_req'])})"
                 for n in ("floor", "sluice-ar", "sluice-full", "base-ar", "base-full", "litellm")
                 if w.get(n, {}).get(32, {}).get("cpu_us_per_req")]
        if parts:
            add("CPU per request at 32 connections: " + "; ".join(parts) + ".\n")

    costs = r.get("plugin_costs") or []
    if costs:
        add("### What each plugin costs (wrk -c32, a sluice of its own per pipeline, "
            f"{args.rounds} rounds of {max(1, round(args.plugin_seconds / args.rounds)):g} s that take the pipelines in turn)\n")
        add("| pipeline | req/s | p50 µs | CPU µs/req | + CPU µs/req vs auth + router | switches/req | errors |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        base = costs[0]["cpu_us_per_req"] if costs[0]["label"] == "auth + router" else None
        for c in costs:
            extra = c["cpu_us_per_req"] - base if base is not None and c is not costs[0] else None
            add(f"| {c['label']} | {fmt(c['rps'])} | {c['p50']} | {fmt(c['cpu_us_per_req'], 1)} | "
                f"{fmt(extra, 1) if extra is not None else ''} | {fmt(c['ctx_per_req'], 2)} | {c['errors']} |")
        add("")

    body = r.get("body") or {}
    if body:
        add(f"## Long conversations: what a KB of request body costs (wrk -c{BODY_CONNS}, {args.body_seconds:g} s per body size)\n")
        add(f"The same chat request with a {BODY_SMALL // 1024} KB and a {BODY_LARGE // 1024} KB conversation (earlier "
            "user/assistant turns, as a chat client sends them); CPU per KB = the difference in CPU/req over the "
            "199 KB between them. `+ validation` is auth + validation + router in a fresh sluice.\n")
        add(f"| target | CPU µs/req at {BODY_SMALL // 1024} KB | at {BODY_LARGE // 1024} KB | CPU µs per KB | "
            f"p50 µs at {BODY_SMALL // 1024} KB | at {BODY_LARGE // 1024} KB | + p50 | req/s at {BODY_LARGE // 1024} KB | errors |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        body_names = {"nginx": names["nginx"], "floor": names["floor"], "sluice-ar": names["sluice-ar"],
                      "sluice-val": "sluice: auth + validation + router", "base-ar": names["base-ar"],
                      "base-val": "baseline sluice: auth + validation + router", "litellm": names["litellm"]}
        for key, title in body_names.items():
            b = body.get(key)
            if b:
                sm, lg = b["small"], b["large"]
                add(f"| {title} | {fmt(sm['cpu_us_per_req'], 1)} | {fmt(lg['cpu_us_per_req'], 1)} | {fmt(b['per_kb_us'], 2)} | "
                    f"{sm['latency_us']['p50']} | {lg['latency_us']['p50']} | {b['p50_diff_us']} | {fmt(lg['rps'])} | "
                    f"{sm['error_total'] + lg['error_total']} |")
        add("")

    s = r["streaming"]
    if s:
        add(f"## Streaming ({args.streams} streams each, one after another on a kept-alive connection)\n")
        add("Fast: nginx's fixed 20-chunk SSE answer (all chunks at once). TTFB = request sent → first SSE event "
            "read; total = → `data: [DONE]`.\n")
        add("| path | TTFB p50 µs | TTFB p99 µs | + TTFB p50 vs direct | total p50 µs | total p99 µs | errors |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        base = s.get("fast-direct", {})
        for label, title in (("fast-direct", "direct"), ("fast-nginx", "nginx proxy_pass (proxy floor)"),
                             ("fast-floor", "SwiftNIO proxy (framework floor)"), ("fast-sluice-ar", "sluice: auth + router"),
                             ("fast-sluice-full", "sluice: full pipeline"), ("fast-base-ar", "baseline sluice: auth + router"),
                             ("fast-base-full", "baseline sluice: full pipeline"), ("fast-litellm", "LiteLLM proxy")):
            x = s.get(label)
            if x:
                added = x["ttfb_p50"] - base["ttfb_p50"] if base.get("ttfb_p50") is not None else None
                add(f"| {title} | {fmt(x['ttfb_p50'])} | {fmt(x['ttfb_p99'])} | {fmt(added) if label != 'fast-direct' else ''} | "
                    f"{fmt(x['total_p50'])} | {fmt(x['total_p99'])} | {x['errors']} |")
        add("")
        add("Paced: 20 chunks 5 ms apart from `sse_upstream.py`, each stamped with CLOCK_MONOTONIC when written; "
            "delay = arrival at the client − upstream write (same clock). Held back = a proxy's delay − the direct median. "
            "nginx relays with `proxy_buffering off`; its row and the SwiftNIO floor's show how late a chunk comes "
            "through a proxy that holds nothing back, on this machine. The paths take turns in rounds; a round's longest "
            "delay is the one most likely to be a moment the host ran other work, and the median of the rounds' longest "
            "(the streaming target's figure) is the longest a path holds a chunk back again and again.\n")
        add("| path | chunks | delay p50 µs | delay p99 µs | delay max µs | held back max µs | held back, median of the rounds' longest µs | max gap µs (sent 5,000 apart) |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|")
        pbase = s.get("paced-direct", {})
        for label, title in (("paced-direct", "direct"), ("paced-nginx", "nginx proxy_pass (proxy floor)"),
                             ("paced-floor", "SwiftNIO proxy (framework floor)"), ("paced-sluice-ar", "sluice: auth + router"),
                             ("paced-sluice-full", "sluice: full pipeline"), ("paced-base-ar", "baseline sluice: auth + router"),
                             ("paced-base-full", "baseline sluice: full pipeline")):
            x = s.get(label)
            if x:
                base = pbase.get("delay_p50")
                held = x["delay_max"] - base if (x.get("delay_max") is not None and base is not None) else None
                typical = x["delay_max_median"] - base if (x.get("delay_max_median") is not None and base is not None) else None
                add(f"| {title} | {x['delays']} | {fmt(x['delay_p50'])} | {fmt(x['delay_p99'])} | {fmt(x['delay_max'])} | "
                    f"{fmt(held) if label != 'paced-direct' else ''} | {fmt(typical) if label != 'paced-direct' else ''} | {fmt(x['gap_max'])} |")
        add("")

    mem = r["memory"]
    add("## Memory (VmRSS from /proc)\n")
    add("| process | idle | after the load runs | peak (VmHWM) | threads |\n|---|---:|---:|---:|---:|")

    def rss(x: dict) -> str:
        if not x.get("VmRSS"):
            return "–"
        return f"{x['VmRSS']:.1f} MB ({x.get('RssAnon', 0):.1f} anon + {x.get('RssFile', 0):.1f} file)"
    for name, title in (("ar", "sluice: auth + router"), ("full", "sluice: full pipeline"),
                        ("base-ar", "baseline sluice: auth + router"), ("base-full", "baseline sluice: full pipeline")):
        x = mem.get(name, {})
        if not x:
            continue
        add(f"| {title} | {rss(x.get('idle', {}))} | {rss(x.get('after_load', {}))} | "
            f"{fmt(x.get('after_load', {}).get('VmHWM'), 1, ' MB')} | {fmt(x.get('after_load', {}).get('threads'))} |")
    if mem.get("litellm"):
        x = mem["litellm"]
        add(f"| LiteLLM proxy (1 worker; started in {fmt(r.get('litellm_startup_s'), 1, ' s')}) | | {rss(x)} | "
            f"{fmt(x.get('VmHWM'), 1, ' MB')} | {fmt(x.get('threads'))} |")
    if mem.get("full", {}).get("idle_by_mapping"):
        add("\nIdle RSS of the full pipeline by mapping (MB): "
            + ", ".join(f"{n} {mb:.1f}" for n, mb in mem["full"]["idle_by_mapping"]) + ".")
    st = mem.get("streams")
    if st:
        n = mem["streams_n"]
        before, hold_, after = st["before"], st["holding"], st["after_close"]
        opened = (st.get("ready") or {}).get("opened")
        held = opened or n  # the cost is per stream actually held, when some failed to open
        per = (hold_.get("VmRSS", 0) - before.get("VmRSS", 0)) * 1024 / held if held and hold_.get("VmRSS") else None
        ext = before.get("VmRSS", 0) + per * 10000 / 1024 if per is not None else None
        mem["per_stream_kb"], mem["extrapolated_10k_mb"] = per, ext
        alive = (st.get("alive") or {})
        add("")
        add(f"Open streams through the full pipeline (slow upstream: one chunk a second): {fmt(opened)} of {n:,} opened "
            f"in {fmt((st.get('ready') or {}).get('elapsed_s'), 1)} s, {fmt(alive.get('alive'))} still receiving chunks "
            f"after {args.hold_seconds:g} s.\n")
        add("| | VmRSS | threads | fds |\n|---|---:|---:|---:|")
        add(f"| before | {fmt(before.get('VmRSS'), 1, ' MB')} | {fmt(before.get('threads'))} | {fmt(before.get('fds'))} |")
        add(f"| holding {held:,} streams | {fmt(hold_.get('VmRSS'), 1, ' MB')} | {fmt(hold_.get('threads'))} | {fmt(hold_.get('fds'))} |")
        add(f"| after they closed | {fmt(after.get('VmRSS'), 1, ' MB')} | {fmt(after.get('threads'))} | {fmt(after.get('fds'))} |")
        add(f"| per stream | {fmt(per, 1, ' KB')} | | |")
        if n < 10000:
            add(f"| 10,000 streams (extrapolated) | {fmt(ext, 1, ' MB')} | | |")
        add("")
        hi = mem.get("streams_history")
        if hi and hi["holding"].get("VmRSS"):
            h_opened = (hi.get("ready") or {}).get("opened") or 0
            h_per = (hi["holding"]["VmRSS"] - hi["before"].get("VmRSS", 0)) * 1024 / h_opened if h_opened else None
            mem["history_per_stream_kb"] = h_per
            add(f"Through a fresh sluice with the same pipeline, {h_opened:,} streams whose requests each carry a "
                f"{HISTORY_BYTES // 1000} KB conversation (as chat clients send): {fmt(hi['before'].get('VmRSS'), 1, ' MB')} → {fmt(hi['holding']['VmRSS'], 1, ' MB')}, "
                f"{fmt(h_per, 1, ' KB')} per stream. An open stream keeps nothing of its request's body; NIO keeps the "
                "receive buffer a large request grew on its connection.\n")
        fl = mem.get("streams_floor")
        if fl and fl["holding"].get("VmRSS"):
            f_opened = (fl.get("ready") or {}).get("opened") or 0
            f_per = (fl["holding"]["VmRSS"] - fl["before"].get("VmRSS", 0)) * 1024 / f_opened if f_opened else None
            f_ext = fl["before"].get("VmRSS", 0) + f_per * 10000 / 1024 if f_per is not None else None
            mem["floor_per_stream_kb"], mem["floor_extrapolated_10k_mb"] = f_per, f_ext
            at_10k = f" ({fmt(f_ext, 0, ' MB')} at 10,000)" if n < 10000 else ""
            add(f"The SwiftNIO floor holding {f_opened:,} of the same streams: {fmt(fl['before'].get('VmRSS'), 1, ' MB')} → "
                f"{fmt(fl['holding']['VmRSS'], 1, ' MB')}, {fmt(f_per, 1, ' KB')} per stream{at_10k}: two NIO channels and "
                "their buffers, with no gateway state and no curl.\n")
        tl = mem.get("streams_tls")
        if tl and tl["holding"].get("VmRSS"):
            t_opened = (tl.get("ready") or {}).get("opened") or 0
            t_per = (tl["holding"]["VmRSS"] - tl["before"].get("VmRSS", 0)) * 1024 / t_opened if t_opened else None
            mem["tls_per_stream_kb"], mem["tls_connections"] = t_per, tl["holding"].get("connections")
            add(f"Over https:// (nginx terminating TLS with HTTP/2 in front of the slow upstream), through a fresh sluice with "
                f"the full pipeline, after one stream opened and dropped (curl's thread, its TLS context and the connection set "
                f"up): {t_opened:,} of {mem.get('tls_n', 0):,} streams opened, "
                f"{fmt(tl['before'].get('VmRSS'), 1, ' MB')} → {fmt(tl['holding']['VmRSS'], 1, ' MB')}, "
                f"{fmt(t_per, 1, ' KB')} per stream, on {fmt(mem['tls_connections'])} TCP connections to the upstream "
                "(curl's multi interface, its TLS sessions and HTTP/2 streams included).\n")
        bl = mem.get("streams_base")
        if bl and bl["holding"].get("VmRSS"):
            b_opened = (bl.get("ready") or {}).get("opened") or 0
            b_per = (bl["holding"]["VmRSS"] - bl["before"].get("VmRSS", 0)) * 1024 / b_opened if b_opened else None
            mem["base_per_stream_kb"] = b_per
            mem["base_extrapolated_10k_mb"] = bl["before"].get("VmRSS", 0) + b_per * 10000 / 1024 if b_per is not None else None
            add(f"The baseline sluice (full pipeline) holding {b_opened:,} of the same streams: {fmt(bl['before'].get('VmRSS'), 1, ' MB')} → "
                f"{fmt(bl['holding']['VmRSS'], 1, ' MB')}, {fmt(b_per, 1, ' KB')} per stream.\n")

    su = r["startup"]
    if su.get("runs_ms"):
        add(f"## Start-up\n\nexec → `GET /ready` 200 (auth + router manifest), {len(su['runs_ms'])} runs: median "
            f"**{fmt(su['median_ms'], 1)} ms** (min {fmt(su['min_ms'], 1)}, max {fmt(su['max_ms'], 1)}).\n")

    # targets: issue #26's, each a ratio to, or a margin over, the SwiftNIO floor measured in this run
    lit = "litellm" in w or "fast-litellm" in s or "litellm" in body
    has_base = bool(m.get("baseline_bin"))
    add("")
    add("## Targets (issue #26)\n")
    add("Each goal is relative to the SwiftNIO framework floor measured in this run, so a slower or busier machine "
        "moves goal and figure together. Beside sluice's figure: the same figure for nginx (the proxy floor) and the "
        "SwiftNIO floor"
        + (", LiteLLM" if lit else "") + (", and the baseline binary (`--baseline-bin`)" if has_base else "")
        + ". A target the framework floor itself misses cannot be met by code built on SwiftNIO on this machine. "
        "– = not measured in this run (the row neither passes nor fails).\n")
    extra_cols = (["LiteLLM"] if lit else []) + (["baseline sluice"] if has_base else [])
    add("| target | goal | measured | | nginx | SwiftNIO floor |" + "".join(f" {c} |" for c in extra_cols))
    add("|---|---|---|---|---|---|" + "---|" * len(extra_cols))
    rows = []

    def target(name, goal, value, ok, nginx=None, floor=None, litellm=None, baseline=None):
        cells = [nginx, floor] + ([litellm] if lit else []) + ([baseline] if has_base else [])
        status = "– not measured" if ok is None else ("✅ pass" if ok else "❌ fail")
        rows.append(f"| {name} | {goal} | {value if value is not None else '–'} | {status} | "
                    + " | ".join(c if c is not None else "–" for c in cells) + " |")

    def run_of(name, conns):
        return w.get(name, {}).get(conns)

    def clean(*results):
        return all(x is not None and not x.get("error_total", x.get("errors", 0)) for x in results)

    # CPU per request at 32 connections, as a multiple of the floor's
    fcpu = (run_of("floor", 32) or {}).get("cpu_us_per_req")

    def cpu_ratio(name):
        v = (run_of(name, 32) or {}).get("cpu_us_per_req")
        return f"{v / fcpu:.2f}× ({v:.1f} µs)" if v and fcpu else None
    for name, base_name, title, goal in (("sluice-ar", "base-ar", "auth + router", 1.5), ("sluice-full", "base-full", "full pipeline", 2.0)):
        v = (run_of(name, 32) or {}).get("cpu_us_per_req")
        ratio = v / fcpu if v and fcpu else None
        target(f"CPU per request, 32 conns ({title})", f"≤ {goal:g}× the floor's",
               f"{ratio:.2f}× ({v:.1f} vs {fcpu:.1f} µs)" if ratio else None,
               None if ratio is None else ratio <= goal and clean(run_of(name, 32)),
               cpu_ratio("nginx"), cpu_ratio("floor"), cpu_ratio("litellm"), cpu_ratio(base_name))

    # each plugin: CPU per request over auth + router, each pipeline in a fresh sluice
    by_label = {c["label"]: c for c in costs}
    ar_cost = by_label.get("auth + router")
    for plugin, limit in (("tracing", 25), ("access-log", 10), ("metrics", 10), ("validation", 15), ("rate-limit", 15)):
        c = by_label.get(f"+ {plugin}")
        extra = c["cpu_us_per_req"] - ar_cost["cpu_us_per_req"] if c and ar_cost else None
        target(f"{plugin}: + CPU per request over auth + router", f"≤ {limit} µs",
               f"{extra:+.1f} µs ({c['cpu_us_per_req']:.1f} vs {ar_cost['cpu_us_per_req']:.1f} µs)" if extra is not None else None,
               None if extra is None else extra <= limit and not c["errors"] and not ar_cost["errors"])

    # long conversations: CPU per extra KB of request body, and what 199 KB more does to the p50
    def per_kb(key):
        b = body.get(key)
        return f"{b['per_kb_us']:.2f} µs" if b else None

    def p50_diff(key):
        b = body.get(key)
        return f"{b['p50_diff_us'] / 1000:+.3f} ms" if b else None
    for key, base_key, title, limit in (("sluice-ar", "base-ar", "auth + router", 3), ("sluice-val", "base-val", "auth + validation + router", 8)):
        b = body.get(key)
        target(f"CPU per extra KB of request body ({title})", f"≤ {limit} µs",
               f"{b['per_kb_us']:.2f} µs ({b['small']['cpu_us_per_req']:.0f} → {b['large']['cpu_us_per_req']:.0f} µs CPU/req)" if b else None,
               None if not b else b["per_kb_us"] <= limit and clean(b["small"], b["large"]),
               per_kb("nginx"), per_kb("floor"), per_kb("litellm"), per_kb(base_key))
        if key == "sluice-ar":
            target(f"{BODY_LARGE // 1024} KB vs {BODY_SMALL // 1024} KB conversation, p50 at {BODY_CONNS} conns (auth + router)",
                   "≤ + 1.0 ms", p50_diff(key), None if not b else b["p50_diff_us"] <= 1000 and clean(b["small"], b["large"]),
                   p50_diff("nginx"), p50_diff("floor"), p50_diff("litellm"), p50_diff(base_key))

    # latency at 1 connection
    f1, dd1 = run_of("floor", 1), run_of("direct", 1)

    def p50_vs_floor(name):
        x = run_of(name, 1)
        if not x:
            return None
        return f"{x['latency_us']['p50']} µs" + (f" ({x['latency_us']['p50'] - f1['latency_us']['p50']:+d})" if f1 and name != "floor" else "")
    a1 = run_of("sluice-ar", 1)
    margin = a1["latency_us"]["p50"] - f1["latency_us"]["p50"] if a1 and f1 else None
    target("p50 latency, 1 conn (auth + router)", "≤ the floor's + 40 µs",
           f"{a1['latency_us']['p50']} µs = floor {margin:+d} µs" if margin is not None else None,
           None if margin is None else margin <= 40 and clean(a1),
           p50_vs_floor("nginx"), p50_vs_floor("floor"), p50_vs_floor("litellm"), p50_vs_floor("base-ar"))

    def added_p99(name):
        x = run_of(name, 1)
        return f"{(x['latency_us']['p99'] - dd1['latency_us']['p99']) / 1000:.3f} ms" if x and dd1 else None
    x1 = run_of("sluice-full", 1)
    added = x1["latency_us"]["p99"] - dd1["latency_us"]["p99"] if x1 and dd1 else None
    target("added p99 latency, 1 conn (full pipeline)", "≤ 1 ms",
           f"{added / 1000:.3f} ms (p99 {x1['latency_us']['p99']} µs, direct {dd1['latency_us']['p99']} µs)" if added is not None else None,
           None if added is None else added <= 1000 and clean(x1),
           added_p99("nginx"), added_p99("floor"), added_p99("litellm"), added_p99("base-full"))

    # memory
    per = mem.get("per_stream_kb")
    opened = ((st or {}).get("ready") or {}).get("opened") or 0
    target("memory per open stream, http:// (full pipeline)", "≤ 20 KB",
           f"{per:.1f} KB ({opened:,} streams)" if per is not None else None,
           None if per is None else per <= 20 and opened >= mem.get("streams_n", 0),
           None, fmt(mem.get("floor_per_stream_kb"), 1, " KB") if mem.get("floor_per_stream_kb") is not None else None,
           None, fmt(mem.get("base_per_stream_kb"), 1, " KB") if mem.get("base_per_stream_kb") is not None else None)
    t_per, t_conns = mem.get("tls_per_stream_kb"), mem.get("tls_connections")
    t_opened = ((mem.get("streams_tls") or {}).get("ready") or {}).get("opened") or 0
    target("memory per open stream, https:// (full pipeline)", "≤ 40 KB",
           f"{t_per:.1f} KB ({t_opened:,} streams)" if t_per is not None else None,
           None if t_per is None else t_per <= 40 and t_opened >= mem.get("tls_n", 0))
    target(f"HTTP/2: {mem.get('tls_n', 1000):,} concurrent streams to one TLS upstream", "≤ 4 connections",
           f"{t_conns} connections" if t_conns is not None else None,
           None if t_conns is None else t_conns <= 4 and t_opened >= mem.get("tls_n", 0))
    if st and st["holding"].get("VmRSS"):
        n = mem["streams_n"]
        if n >= 10000:
            value, projected = f"{st['holding']['VmRSS']} MB", st["holding"]["VmRSS"]
            floor10k = f"{mem['streams_floor']['holding']['VmRSS']} MB" if (mem.get("streams_floor") or {}).get("holding", {}).get("VmRSS") else None
        else:
            projected = mem.get("extrapolated_10k_mb")
            value = f"{st['holding']['VmRSS']} MB at {opened:,} streams → {projected:.0f} MB at 10,000 (extrapolated)" if projected is not None else None
            floor10k = f"{mem['floor_extrapolated_10k_mb']:.0f} MB" if mem.get("floor_extrapolated_10k_mb") is not None else None
        base10k = f"{mem['base_extrapolated_10k_mb']:.0f} MB" if mem.get("base_extrapolated_10k_mb") is not None else None
        target("RSS with 10,000 open streams (full pipeline)", "≤ 250 MB", value,
               None if projected is None else projected <= 250 and opened >= n, None, floor10k, None, base10k)
    else:
        target("RSS with 10,000 open streams (full pipeline)", "≤ 250 MB", None, None)

    def after_load(key):
        v = (mem.get(key) or {}).get("after_load", {}).get("VmRSS")
        return f"{v} MB" if v else None
    full_after = (mem.get("full") or {}).get("after_load", {}).get("VmRSS")
    target("RSS after the load runs (full pipeline)", "≤ 60 MB", f"{full_after} MB" if full_after else None,
           None if not full_after else full_after <= 60, after_load("nginx"), after_load("floor"),
           f"{mem['litellm']['VmRSS']} MB" if (mem.get("litellm") or {}).get("VmRSS") else None, after_load("base-full"))

    # streaming
    fd, pd = s.get("fast-direct"), s.get("paced-direct")

    def ttfb(label):
        x = s.get(label)
        return f"{(x['ttfb_p50'] - fd['ttfb_p50']) / 1000:.3f} ms" if x and fd and x.get("ttfb_p50") is not None else None

    def held(label):
        x = s.get(label)
        return x["delay_max_median"] - pd["delay_p50"] if x and pd and x.get("delay_max_median") is not None and pd.get("delay_p50") is not None else None

    def held_ms(label):
        v = held(label)
        return f"{v / 1000:.3f} ms" if v is not None else None
    for name, base_name, title in (("sluice-ar", "base-ar", "auth + router"), ("sluice-full", "base-full", "full pipeline")):
        x = s.get(f"fast-{name}")
        over = x["ttfb_p50"] - fd["ttfb_p50"] if x and fd and x.get("ttfb_p50") is not None else None
        target(f"streaming TTFB overhead p50 ({title})", "≤ 0.5 ms",
               f"{over / 1000:.3f} ms (p99 {(x['ttfb_p99'] - fd['ttfb_p99']) / 1000:.3f} ms)" if over is not None else None,
               None if over is None else over <= 500 and clean(x),
               ttfb("fast-nginx"), ttfb("fast-floor"), ttfb("fast-litellm"), ttfb(f"fast-{base_name}"))
    for name, base_name, title in (("sluice-ar", "base-ar", "auth + router"), ("sluice-full", "base-full", "full pipeline")):
        mine, floors = held(f"paced-{name}"), held("paced-floor")
        target(f"longest a chunk was held, median of the rounds' ({title})", "≤ the floor's + 1 ms",
               f"{mine / 1000:.3f} ms = floor {(mine - floors) / 1000:+.3f} ms" if mine is not None and floors is not None else held_ms(f"paced-{name}"),
               None if mine is None or floors is None else mine - floors <= 1000 and clean(s.get(f"paced-{name}")),
               held_ms("paced-nginx"), held_ms("paced-floor"), None, held_ms(f"paced-{base_name}"))
    out.extend(rows)
    add("")
    judged = [row for row in rows if "– not measured" not in row]
    passed = sum("✅ pass" in row for row in judged)
    add(f"{passed} of {len(judged)} measured targets pass" + (f"; {len(rows) - len(judged)} not measured in this run" if len(rows) > len(judged) else "") + ".\n")

    if has_base:
        add("## Before/after: the baseline binary and this one, in the same run\n")
        add(f"Baseline: `{m['baseline_bin']}` (built {m['baseline_bin_mtime']}); current: `{m['sluice_bin']}`. Both served "
            "the same load runs one after the other; change = current vs baseline (lower is better except req/s).\n")
        add("| figure | baseline | current | change |\n|---|---:|---:|---:|")

        def change(b, c, higher_better=False):
            if b is None or c is None:
                return "–"
            pct_ = f" ({(c - b) / abs(b) * 100:+.0f}%)" if b else ""
            better = (c > b) if higher_better else (c < b)
            return f"{c - b:+,.1f}{pct_}" + (" ✓" if better and b and abs(c - b) / abs(b) >= 0.05 else "")

        def pair(label, b, c, digits=1, unit="", higher_better=False):
            add(f"| {label} | {fmt(b, digits, unit)} | {fmt(c, digits, unit)} | {change(b, c, higher_better)} |")

        def get(name, conns, *path):
            x = run_of(name, conns)
            for k in path:
                x = x.get(k) if isinstance(x, dict) else None
            return x
        for cur, old, title in (("sluice-ar", "base-ar", "auth + router"), ("sluice-full", "base-full", "full pipeline")):
            pair(f"{title}: req/s, 32 conns", get(old, 32, "rps"), get(cur, 32, "rps"), 0, higher_better=True)
            pair(f"{title}: CPU µs/req, 32 conns", get(old, 32, "cpu_us_per_req"), get(cur, 32, "cpu_us_per_req"))
            pair(f"{title}: p50 µs, 1 conn", get(old, 1, "latency_us", "p50"), get(cur, 1, "latency_us", "p50"), 0)
            pair(f"{title}: p99 µs, 1 conn", get(old, 1, "latency_us", "p99"), get(cur, 1, "latency_us", "p99"), 0)
            fo, fc = s.get(f"fast-{old}"), s.get(f"fast-{cur}")
            pair(f"{title}: streaming TTFB p50 µs", fo and fo.get("ttfb_p50"), fc and fc.get("ttfb_p50"), 0)
        for cur, old, title in (("sluice-ar", "base-ar", "auth + router"), ("sluice-val", "base-val", "auth + validation + router")):
            pair(f"{title}: CPU µs per KB of body", (body.get(old) or {}).get("per_kb_us"), (body.get(cur) or {}).get("per_kb_us"), 2)
        pair("full pipeline: KB per open stream", mem.get("base_per_stream_kb"), mem.get("per_stream_kb"))
        pair("full pipeline: RSS MB after the load runs", (mem.get("base-full") or {}).get("after_load", {}).get("VmRSS"), full_after)
        add("")

    prof = r.get("profile") or {}
    if prof.get("symbols"):
        add(f"## Profile: sluice (auth + router) under wrk -c32\n\n{prof['samples_note']}; self time "
            f"(`perf report --no-children`), full report in `bench/out/perf-symbols.txt`.\n")
        add("| self % | symbol |\n|---:|---|")
        for p, sym in prof["symbols"][:20]:
            add(f"| {p:.2f} | `{sym[:140]}` |")
        add("")
        if prof.get("inclusive"):
            add("Inclusive time (self + callees, from the call graphs) of sluice's own code (the Kernel, Plugins and "
                "sluice modules; partial-apply thunks left out), `bench/out/perf-inclusive-sluice.txt`:\n")
            add("| incl. % | function |\n|---:|---|")
            for p, sym in prof["inclusive"][:20]:
                add(f"| {p:.2f} | `{sym[:140]}` |")
            add("")
        if prof.get("threads"):
            add("By thread (tid:role): " + ", ".join(f"{name} {p:.1f}%" for p, name in prof["threads"]) + ".  ")
        if prof.get("dsos"):
            add("By object: " + ", ".join(f"{name} {p:.1f}%" for p, name in prof["dsos"]) + ".\n")

    add("## Notes\n")
    add("- nginx (both) has `access_log off`; the upstream nginx runs 1 worker, the proxy nginx `worker_processes auto` "
        f"({m['nproc']}); wrk uses 1 thread at 1 connection and 2 at 32. wrk, the upstream, and the proxy under test all "
        "share the same cores, so the ratios (same machine, same run) matter more than the absolute figures.")
    add("- sluice's stdout (JSON logs, access log when enabled) goes to a file in bench/out/, trimmed between runs.")
    for n in r["notes"]:
        add(f"- {n}")
    if r["failures"]:
        add("\n**Problems seen during the run (each is a failure to look at):**\n")
        for f in r["failures"]:
            add(f"- ❌ {f}")
    else:
        add("- No errors: every wrk run had 0 socket errors and 0 non-2xx responses; every stream ended with `[DONE]`.")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: ~2 minutes, short runs, 1,000 open streams (checks the suite, measures nothing)")
    p.add_argument("--with-litellm", action="store_true", help="also measure LiteLLM's proxy (installed by bench/run)")
    p.add_argument("--seconds", type=float, help="each target's wrk load, split into --rounds (default $BENCH_SECONDS or 20; --quick 3)")
    p.add_argument("--rounds", type=int, help="rounds the load runs' seconds are split into, each taking every target in "
                                             "turn (default 5; --quick 1)")
    p.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    p.add_argument("--no-perf", action="store_true", help="skip the perf profile")
    p.add_argument("--many-streams", type=int, help="open streams to hold (default 10000; --quick 1000)")
    p.add_argument("--baseline-bin", metavar="PATH",
                   help="a second sluice binary (say a release build of an older commit) measured beside "
                        "$SLUICE_BIN in the same run: auth + router and full pipeline throughput, CPU/req, latency, "
                        "per-KB body cost, streaming and memory per stream (adds 3-4 minutes)")
    args = p.parse_args()
    env_secs = os.environ.get("BENCH_SECONDS")
    q = args.quick
    args.seconds = args.seconds or (float(env_secs) if env_secs else (3 if q else 20))
    args.warmup = 1 if q else min(3, max(1, args.seconds / 5))
    args.rounds = max(1, args.rounds or (1 if q else 5))
    args.streams = 10 if q else 50
    args.many_streams = args.many_streams or (1000 if q else 10000)
    args.hold_seconds = 3 if q else 10
    args.open_timeout = 30 if q else 120
    args.startup_runs = 3 if q else 10
    args.perf_seconds = 2 if q else 8
    args.plugin_seconds = 2 if q else 10
    args.body_seconds = 2 if q else 5
    args.quiet_wait = 0 if (q or args.no_wait) else 600
    args.port_base = int(os.environ.get("BENCH_PORT_BASE", "28100"))
    suite = Suite(args)

    def on_signal(signum, frame):
        raise SystemExit(f"bench: stopped by signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    suite.run()


if __name__ == "__main__":
    main()
