#!/usr/bin/env python3
"""Streaming clients for the benchmark (stdlib only, 127.0.0.1 only).

  timing  N streamed chat completions one after another over one kept-alive connection; prints one
          JSON object: per stream the time to the first SSE event (ttfb_us), to ``data: [DONE]``
          (total_us), the gaps between events (gaps_us) and, for an upstream that stamps its
          chunks with CLOCK_MONOTONIC (sse_upstream.py /paced/), how long each chunk took from the
          upstream's write to this client (delays_us).
  hold    opens N concurrent streams (asyncio), keeps them open, and reports on stdout:
          ``PROGRESS {...}`` while opening, ``READY {...}`` once all are open (or the open timeout
          passed), ``ALIVE {...}`` after --hold-s (how many streams still received a chunk lately),
          then closes every stream and exits. Bounded by --open-timeout-s + --hold-s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import resource
import statistics
import sys
import time
import urllib.parse


def request_body(model: str, history_bytes: int = 0) -> bytes:
    """A chat request; with history_bytes, earlier turns of about that size come first, as a chat
    client sends them."""
    messages = []
    turn = "Tell me more about the history of the printing press and its effect on Europe. " * 8
    while sum(len(m["content"]) for m in messages) < history_bytes:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}]
    messages.append({"role": "user", "content": "Say hello in one short sentence."})
    return json.dumps({"model": model, "stream": True, "max_tokens": 64, "messages": messages}).encode()


def headers_for(key: str | None) -> dict:
    h = {"content-type": "application/json", "accept": "text/event-stream"}
    if key:
        h["authorization"] = f"Bearer {key}"
    return h


# --- timing -----------------------------------------------------------------------------------

def one_stream(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> dict:
    start = time.perf_counter_ns()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    arrivals: list[int] = []
    delays: list[int] = []
    done_at = None
    while True:
        line = resp.readline()
        if not line:
            break
        now = time.perf_counter_ns()
        mono = time.monotonic_ns()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done_at = now
            arrivals.append(now)
            break
        arrivals.append(now)
        try:
            content = json.loads(data)["choices"][0]["delta"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError):
            content = ""
        if content.startswith("t") and content[1:].isdigit():
            delays.append(mono - int(content[1:]))
    resp.read()  # the rest (chunked trailer), so the connection can be reused
    if done_at is None:
        raise RuntimeError("stream ended without data: [DONE]")
    return {
        "ttfb_us": (arrivals[0] - start) / 1000,
        "total_us": (done_at - start) / 1000,
        "events": len(arrivals),
        "gaps_us": [(b - a) / 1000 for a, b in zip(arrivals, arrivals[1:])],
        "delays_us": [d / 1000 for d in delays],
    }


def timing(args) -> None:
    url = urllib.parse.urlsplit(args.url)
    path = url.path.rstrip("/") + "/chat/completions"
    body, headers = request_body(args.model), headers_for(args.key)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    streams, errors = [], []
    deadline = time.monotonic() + args.max_s
    for i in range(args.warmup + args.n):
        if time.monotonic() > deadline:
            errors.append(f"stopped after {args.max_s}s")
            break
        try:
            result = one_stream(conn, path, body, headers)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            errors.append(f"{type(e).__name__}: {e}")
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            continue
        if i >= args.warmup:
            streams.append(result)
    json.dump({"url": args.url, "model": args.model, "streams": streams, "errors": errors}, sys.stdout)
    print()


# --- hold -------------------------------------------------------------------------------------

async def hold(args) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = urllib.parse.urlsplit(args.url)
    path = url.path.rstrip("/") + "/chat/completions"
    body = request_body(args.model, args.history_bytes)
    head = (f"POST {path} HTTP/1.1\r\nhost: {url.hostname}:{url.port}\r\ncontent-type: application/json\r\n"
            f"accept: text/event-stream\r\nauthorization: Bearer {args.key}\r\ncontent-length: {len(body)}\r\n\r\n").encode()
    opened = 0
    failures: dict[str, int] = {}
    last_chunk: dict[int, float] = {}
    chunks: dict[int, int] = {}
    writers = []
    stop = asyncio.Event()
    sem = asyncio.Semaphore(args.open_concurrency)

    async def stream(i: int) -> None:
        nonlocal opened
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port), 30)
                writers.append(writer)
                writer.write(head + body)
                status = await asyncio.wait_for(reader.readline(), 30)
                if b" 200 " not in status:
                    failures[status.decode(errors="replace").strip()[:60]] = failures.get(status.decode(errors="replace").strip()[:60], 0) + 1
                    writer.close()
                    return
                while True:  # until the first SSE event
                    line = await asyncio.wait_for(reader.readline(), 30)
                    if not line:
                        raise ConnectionError("closed before the first event")
                    if line.startswith(b"data:"):
                        break
            except Exception as e:  # noqa: BLE001
                key = type(e).__name__ + (f": {e}" if str(e) else "")
                failures[key[:80]] = failures.get(key[:80], 0) + 1
                return
            opened += 1
            chunks[i] = 1
            last_chunk[i] = time.monotonic()
        try:
            while not stop.is_set():
                line = await reader.readline()
                if not line:
                    break
                if line.startswith(b"data:"):
                    chunks[i] += 1
                    last_chunk[i] = time.monotonic()
        except Exception:  # noqa: BLE001
            pass

    t0 = time.monotonic()
    tasks = [asyncio.create_task(stream(i)) for i in range(args.n)]

    def status() -> dict:
        return {"opened": opened, "failed": sum(failures.values()), "failures": failures,
                "elapsed_s": round(time.monotonic() - t0, 2)}

    open_deadline = t0 + args.open_timeout_s
    while opened + sum(failures.values()) < args.n and time.monotonic() < open_deadline:
        await asyncio.sleep(1)
        print("PROGRESS " + json.dumps(status()), flush=True)
    print("READY " + json.dumps(status()), flush=True)
    await asyncio.sleep(args.hold_s)
    now = time.monotonic()
    alive = sum(1 for t in last_chunk.values() if now - t < 2.5 * args.expect_interval_s)
    counts = sorted(chunks.values()) or [0]
    print("ALIVE " + json.dumps({**status(), "alive": alive, "chunks_min": counts[0],
                                 "chunks_median": statistics.median(counts), "chunks_max": counts[-1]}), flush=True)
    stop.set()
    for w in writers:
        w.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print("CLOSED", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("timing")
    t.add_argument("--url", required=True, help="API root, e.g. http://127.0.0.1:8080/v1")
    t.add_argument("--key")
    t.add_argument("--model", default="bench-stream")
    t.add_argument("--n", type=int, default=50)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--max-s", type=float, default=120)
    h = sub.add_parser("hold")
    h.add_argument("--url", required=True)
    h.add_argument("--key", required=True)
    h.add_argument("--model", default="bench-slow")
    h.add_argument("--n", type=int, default=10000)
    h.add_argument("--open-concurrency", type=int, default=200)
    h.add_argument("--open-timeout-s", type=float, default=120)
    h.add_argument("--hold-s", type=float, default=10)
    h.add_argument("--expect-interval-s", type=float, default=1.0)
    h.add_argument("--history-bytes", type=int, default=0, help="earlier turns of about this size in each request")
    args = p.parse_args()
    if args.mode == "timing":
        timing(args)
    else:
        asyncio.run(hold(args))


if __name__ == "__main__":
    main()
