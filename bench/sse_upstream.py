#!/usr/bin/env python3
"""A small OpenAI-shaped SSE upstream for the benchmark (stdlib asyncio, 127.0.0.1 only).

POST <prefix>/v1/chat/completions answers a chat.completion.chunk stream whose pace depends on
the prefix:

  /paced/v1/...  ``--chunks`` chunks, ``--gap-ms`` apart, then ``data: [DONE]``. Every chunk's
                 content is ``t<CLOCK_MONOTONIC ns>`` taken just before it is written, so a
                 client on the same machine can tell how long each chunk took to reach it
                 (CLOCK_MONOTONIC is system-wide on Linux) — i.e. whether a proxy held it back.
  /slow/v1/...   one chunk at once, then one every ``--slow-interval-s`` until ``--slow-max-s``,
                 then ``data: [DONE]``: holds a connection open for the many-streams memory test.

GET anything answers ``{"object": "list", "data": []}`` (health probes). Responses use chunked
transfer encoding and keep-alive. Everything is bounded: streams end after ``--slow-max-s`` and
the process exits after ``--max-lifetime-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
import time

CHUNK_TEMPLATE = ('{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
                  '"model":"bench-upstream","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}')
FIRST = ('{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
         '"model":"bench-upstream","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}')
LAST = ('{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
        '"model":"bench-upstream","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')

SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n")

stats = {"open": 0, "served": 0, "max_open": 0}


def http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def event(data: str) -> bytes:
    return http_chunk(b"data: " + data.encode() + b"\n\n")


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:  # drain a chunked body
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return method, path


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args) -> None:
    stats["open"] += 1
    stats["max_open"] = max(stats["max_open"], stats["open"])
    try:
        while True:
            try:
                method, path = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            if method != "POST":
                body = b'{"object":"list","data":[]}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
                continue
            stats["served"] += 1
            writer.write(SSE_HEAD)
            if path.startswith("/slow/"):
                writer.write(event(FIRST))
                await writer.drain()
                deadline = time.monotonic() + args.slow_max_s
                n = 0
                while time.monotonic() < deadline:
                    await asyncio.sleep(args.slow_interval_s)
                    n += 1
                    writer.write(event(CHUNK_TEMPLATE % f"tick {n} "))
                    await writer.drain()
            else:
                writer.write(event(FIRST))
                await writer.drain()
                for _ in range(args.chunks):
                    await asyncio.sleep(args.gap_ms / 1000)
                    writer.write(event(CHUNK_TEMPLATE % f"t{time.monotonic_ns()}"))
                    await writer.drain()
            writer.write(event(LAST) + event("[DONE]") + b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        return
    finally:
        stats["open"] -= 1
        writer.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--gap-ms", type=float, default=5)
    p.add_argument("--slow-interval-s", type=float, default=1.0)
    p.add_argument("--slow-max-s", type=float, default=300)
    p.add_argument("--max-lifetime-s", type=float, default=3600)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), "127.0.0.1", args.port, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sse_upstream listening on 127.0.0.1:{args.port}", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_lifetime_s)
    except asyncio.TimeoutError:
        pass
    server.close()
    print(json.dumps({"sse_upstream_stats": stats}), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
