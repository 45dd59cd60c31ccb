#!/usr/bin/env python3
"""What translation costs: each front door (Chat Completions, Messages, Responses) against each
kind of provider (one that speaks Chat Completions, one that speaks Responses natively, one that
speaks Anthropic Messages, and the native Gemini and Bedrock providers, which translate chat to
their own formats), whole and streamed, through the same sluice on one keep-alive connection. For each cell: p50/p99 latency and the sluice process's CPU per request. The added
cost of a translation is a cell minus its pass-through neighbour against the same upstream.

    python3 bench/translation.py [--requests N] [--sluice PATH]

The upstream is a small threaded Python server answering canned bodies (the same for every front
door that reaches it), so its own cost cancels out of each comparison. Writes bench/TRANSLATION.md
and bench/out/translation.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
KEY = "sk-bench-" + secrets.token_hex(12)

CHAT = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench-upstream",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 9, "total_tokens": 28}}
MESSAGE = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "bench-upstream",
           "content": [{"type": "text", "text": "Hello! How can I help you today?"}], "stop_reason": "end_turn",
           "stop_sequence": None, "usage": {"input_tokens": 19, "output_tokens": 9}}
RESPONSE = {"id": "resp_bench", "object": "response", "created_at": 1700000000, "status": "completed", "error": None,
            "incomplete_details": None, "instructions": None, "max_output_tokens": None, "model": "bench-upstream",
            "output": [{"id": "msg_bench", "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Hello! How can I help you today?", "annotations": []}]}],
            "parallel_tool_calls": True, "previous_response_id": None, "temperature": 1.0, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "metadata": {},
            "usage": {"input_tokens": 19, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 28}}
WORDS = "Hello there! This is a fixed streamed answer from the benchmark upstream, in small chunks.".split()


def sse(events: list[tuple[str | None, object]]) -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


def chat_stream() -> bytes:
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "bench-upstream"}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    chunks += [{**head, "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]} for w in WORDS]
    chunks += [{**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
               {**head, "choices": [], "usage": CHAT["usage"]}]
    return sse([(None, c) for c in chunks] + [(None, "[DONE]")])


def anthropic_stream() -> bytes:
    events = [("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                                                      "usage": {"input_tokens": 19, "output_tokens": 1}}}),
              ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w + " "}})
               for w in WORDS]
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": 9}}),
               ("message_stop", {"type": "message_stop"})]
    return sse(events)


def responses_stream() -> bytes:
    item = {"id": "msg_bench", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    events = [{"type": "response.created", "response": {**RESPONSE, "status": "in_progress", "output": [], "usage": None}},
              {"type": "response.in_progress", "response": {**RESPONSE, "status": "in_progress", "output": [], "usage": None}},
              {"type": "response.output_item.added", "output_index": 0, "item": item},
              {"type": "response.content_part.added", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "text": "", "annotations": []}}]
    events += [{"type": "response.output_text.delta", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
                "delta": w + " ", "logprobs": []} for w in WORDS]
    text = " ".join(WORDS) + " "
    events += [{"type": "response.output_text.done", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
                "text": text, "logprobs": []},
               {"type": "response.content_part.done", "item_id": "msg_bench", "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": text, "annotations": []}},
               {"type": "response.output_item.done", "output_index": 0, "item": RESPONSE["output"][0]},
               {"type": "response.completed", "response": RESPONSE}]
    return sse([(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events)])


GEMINI = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello! How can I help you today?"}]},
                          "finishReason": "STOP", "index": 0}],
          "usageMetadata": {"promptTokenCount": 19, "candidatesTokenCount": 9, "totalTokenCount": 28},
          "modelVersion": "bench-upstream"}
CONVERSE = {"output": {"message": {"role": "assistant", "content": [{"text": "Hello! How can I help you today?"}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 19, "outputTokens": 9, "totalTokens": 28},
            "metrics": {"latencyMs": 1}}


def gemini_stream() -> bytes:
    chunks = [{"candidates": [{"content": {"role": "model", "parts": [{"text": w + " "}]}, "index": 0}],
               "modelVersion": "bench-upstream"} for w in WORDS]
    chunks[-1]["candidates"][0]["finishReason"] = "STOP"
    chunks[-1]["usageMetadata"] = GEMINI["usageMetadata"]
    return sse([(None, c) for c in chunks])


def eventstream_frame(event_type: str, payload: dict) -> bytes:
    """One `application/vnd.amazon.eventstream` message: prelude, its CRC, headers, payload, CRC."""
    import struct
    import zlib
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


def converse_stream() -> bytes:
    frames = [eventstream_frame("messageStart", {"role": "assistant"})]
    frames += [eventstream_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w + " "}}) for w in WORDS]
    frames += [eventstream_frame("contentBlockStop", {"contentBlockIndex": 0}),
               eventstream_frame("messageStop", {"stopReason": "end_turn"}),
               eventstream_frame("metadata", {"usage": CONVERSE["usage"], "metrics": {"latencyMs": 1}})]
    return b"".join(frames)


ANSWERS = {  # path suffix → (whole, stream)
    ":generateContent": (json.dumps(GEMINI).encode(), b""),
    ":streamGenerateContent": (b"", gemini_stream()),
    "/converse": (json.dumps(CONVERSE).encode(), b""),
    "/converse-stream": (b"", converse_stream()),
    "/chat/completions": (json.dumps(CHAT).encode(), chat_stream()),
    "/messages": (json.dumps(MESSAGE).encode(), anthropic_stream()),
    "/responses": (json.dumps(RESPONSE).encode(), responses_stream()),
}


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        path = self.path.split("?")[0]
        # Gemini and Bedrock say "stream" in the path; the others in the body.
        stream = b'"stream":true' in body.replace(b" ", b"") or path.endswith((":streamGenerateContent", "/converse-stream"))
        whole, streamed = next((v for k, v in ANSWERS.items() if path.endswith(k)), (b"{}", b""))
        payload = streamed if stream else whole
        kind = "application/vnd.amazon.eventstream" if path.endswith("/converse-stream") else "text/event-stream"
        self.send_response(200)
        self.send_header("content-type", kind if stream else "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_body(door: str, stream: bool) -> tuple[str, dict]:
    if door == "chat":
        return "/v1/chat/completions", {"model": "M", "messages": [{"role": "user", "content": "Say hello"}],
                                        "max_tokens": 32, "stream": stream}
    if door == "messages":
        return "/v1/messages", {"model": "M", "max_tokens": 32, "messages": [{"role": "user", "content": "Say hello"}],
                                "stream": stream}
    return "/v1/responses", {"model": "M", "input": "Say hello", "max_output_tokens": 32, "stream": stream}


def measure(port: int, pid: int, door: str, model: str, stream: bool, n: int, body_bytes: int = 0) -> dict:
    """With body_bytes, earlier user/assistant turns (as bench/wrk_chat.lua sends them) fill a chat
    or messages body up to about that size."""
    path, body = request_body(door, stream)
    body["model"] = model
    turn = "Tell me more about the history of the printing press and its effect on Europe. " * 8
    while "messages" in body and len(json.dumps(body)) < body_bytes:
        body["messages"][-1:-1] = [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}]
    data = json.dumps(body).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i in range(n + n // 10):  # the first tenth warms up
        if i == n // 10:
            cpu0 = cpu_seconds(pid)
        start = time.perf_counter()
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise SystemExit(f"{door} → {model} stream={stream}: HTTP {response.status}: {payload[:300]!r}")
        if i >= n // 10:
            times.append(elapsed)
    cpu = cpu_seconds(pid) - cpu0
    conn.close()
    times.sort()
    return {"p50_ms": round(times[len(times) // 2] * 1000, 3), "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 3),
            "cpu_us_per_request": round(cpu / n * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell (default 2000)")
    parser.add_argument("--sluice", default=str(REPO / ".build" / "release" / "sluice"))
    args = parser.parse_args()

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    port = free_port()
    providers = {
        "chat": {"plugin": "openai-compatible", "config": {"base_url": base + "/v1"}},
        "responses": {"plugin": "openai", "config": {"base_url": base + "/v1", "api_key": "sk-upstream"}},
        "anthropic": {"plugin": "anthropic", "config": {"base_url": base, "api_key": "sk-upstream"}},
        "gemini": {"plugin": "gemini", "config": {"base_url": base, "api_key": "bench-google-key"}},
        "bedrock": {"plugin": "bedrock", "config": {"base_url": base, "region": "us-east-1", "access_key_id": "AKIDBENCH",
                                                    "secret_access_key": "bench-secret"}},
    }
    manifest = {
        "server": {"listen": [f"127.0.0.1:{port}"], "drain_timeout_s": 1},
        "providers": providers,
        "models": {name: {"targets": [{"provider": name, "model": "bench-upstream"}]} for name in providers},
        "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [{"name": "bench", "key": {"env": "SLUICE_BENCH_KEY"}}]}},
                     {"plugin": "router", "config": {"retries": 0}}],
    }
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "plugins.json"
        config.write_text(json.dumps(manifest))
        sluice = subprocess.Popen([args.sluice, "serve", "--config", str(config)], env={**os.environ, "SLUICE_BENCH_KEY": KEY},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or sluice.poll() is not None:
                        raise SystemExit("sluice did not start (run `sluice check` on the manifest)")
                    time.sleep(0.05)
            rows = []
            for provider in providers:
                for door in ("chat", "messages", "responses"):
                    for stream in (False, True):
                        result = measure(port, sluice.pid, door, provider, stream, args.requests)
                        rows.append({"provider": provider, "front_door": door, "stream": stream, **result})
                        print(f"{provider:9} {door:9} {'stream' if stream else 'whole':6} {result}", file=sys.stderr)
        finally:
            sluice.terminate()
            sluice.wait(10)
    upstream.shutdown()

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "translation.json").write_text(json.dumps(rows, indent=2))
    # Gemini and Bedrock translate chat to their own formats in the provider; their chat rows are
    # compared with the chat provider's pass-through of the same front door.
    native = {"chat": "chat", "responses": "responses", "anthropic": "messages", "gemini": "chat", "bedrock": "chat"}
    lines = [
        "# Translation cost",
        "",
        f"Measured by `bench/translation.py` on {dt.date.today()} ({os.cpu_count()} cores, {args.requests} requests per",
        "cell on one keep-alive connection, the release binary, auth + router). The provider's native front door",
        "is the pass-through row; the others are translated. Δ is against that row (for gemini and bedrock: the chat",
        "provider's chat pass-through), same kind of answer; every upstream is the same canned server.",
        "",
        "| provider speaks | front door | answer | p50 ms | p99 ms | CPU µs/request | Δ p50 ms | Δ CPU µs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        own = row["provider"] if row["provider"] in ("chat", "responses", "anthropic") else "chat"
        base_row = next(r for r in rows if r["provider"] == own and r["front_door"] == native[row["provider"]]
                        and r["stream"] == row["stream"])
        same = row is base_row
        lines.append(f"| {row['provider']} | {row['front_door']} | {'stream' if row['stream'] else 'whole'} | {row['p50_ms']} | "
                     f"{row['p99_ms']} | {row['cpu_us_per_request']} | "
                     f"{'—' if same else round(row['p50_ms'] - base_row['p50_ms'], 3)} | "
                     f"{'—' if same else round(row['cpu_us_per_request'] - base_row['cpu_us_per_request'], 1)} |")
    (REPO / "bench" / "TRANSLATION.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
