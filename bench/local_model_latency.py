#!/usr/bin/env python3
"""Latency of a real small LLM answered directly vs through Sluice (stdlib only).

Streams the same 32-token answer (temperature 0) N times from the model server itself and through
Sluice, alternating the two, and prints a Markdown table of the medians: time to first token (the
first non-empty content delta) and total time (until ``data: [DONE]``).

With `make run` serving (model server on 127.0.0.1:8081, sluice on 127.0.0.1:8080, demo key in
.sluice/demo.key), the defaults just work:

    python3 bench/local_model_latency.py --runs 20

Otherwise point it at any pair: --model-url http://127.0.0.1:PORT/v1 --sluice-url http://127.0.0.1:PORT/v1
--key KEY --model NAME (the public model routed to that model server).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def stream_once(base_url: str, key: str | None, model: str, max_tokens: int, conn_cache: dict,
                prompt: list[dict] = PROMPT) -> dict:
    """One streamed chat completion over a kept-alive connection; timings in seconds."""
    url = urllib.parse.urlsplit(base_url)
    conn = conn_cache.get(base_url)
    if conn is None:
        conn = conn_cache[base_url] = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    body = json.dumps({"model": model, "messages": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    start = time.perf_counter()
    conn.request("POST", url.path.rstrip("/") + "/chat/completions", body=body, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"{base_url}: HTTP {resp.status}: {resp.read()[:500]!r}")
    first = None
    text, usage, done, pieces = [], None, False, 0
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        event = json.loads(data)
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            if piece and first is None:
                first = time.perf_counter() - start
            pieces += bool(piece)
            text.append(piece)
        usage = event.get("usage") or usage
    resp.read()  # the rest (end of the chunked body), so the connection can be reused
    total = time.perf_counter() - start
    if not done or first is None:
        raise SystemExit(f"{base_url}: incomplete stream (done={done}, text={''.join(text)!r})")
    return {"ttft": first, "total": total, "text": "".join(text), "pieces": pieces,
            "tokens": (usage or {}).get("completion_tokens")}


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-url", default="http://127.0.0.1:8081/v1", help="the model server's /v1 URL")
    parser.add_argument("--sluice-url", default="http://127.0.0.1:8080/v1", help="sluice's /v1 URL")
    parser.add_argument("--key", default=os.environ.get("SLUICE_KEY"),
                        help="client key for sluice (default: $SLUICE_KEY, else .sluice/demo.key)")
    parser.add_argument("--model", default="local", help="public model routed to the model server")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--distinct-prompts", action="store_true",
                        help="number every request's prompt, so the server cannot reuse a cached prompt "
                             "(time to first token then includes reading the prompt)")
    args = parser.parse_args()
    key = args.key
    if key is None and (REPO_ROOT / ".sluice" / "demo.key").exists():
        key = (REPO_ROOT / ".sluice" / "demo.key").read_text().strip()
    if key is None:
        parser.error("no key: pass --key, set SLUICE_KEY, or run `make run` once to create .sluice/demo.key")

    targets = {"direct": (args.model_url, None), "through sluice": (args.sluice_url, key)}
    conns: dict = {}
    results: dict[str, list[dict]] = {name: [] for name in targets}
    n = 0
    for i in range(args.warmup + args.runs):
        for name, (url, k) in targets.items():  # alternate, so drift hits both alike
            n += 1
            prompt = PROMPT
            if args.distinct_prompts:
                prompt = [{"role": "user", "content": f"Story number {n}. {PROMPT[0]['content']}"}]
            r = stream_once(url, k, args.model, args.max_tokens, conns, prompt)
            if i >= args.warmup:
                results[name].append(r)

    texts = {r["text"] for rs in results.values() for r in rs}
    tokens = sorted({r["tokens"] if r["tokens"] is not None else r["pieces"] for rs in results.values() for r in rs})
    d, s = results["direct"], results["through sluice"]
    print(f"{args.runs} runs each (after {args.warmup} warm-up), streamed, max_tokens {args.max_tokens}, temperature 0, "
          f"{'a distinct prompt per request' if args.distinct_prompts else 'the same prompt every time'}; "
          f"tokens answered: {', '.join(map(str, tokens))}"
          + ("" if args.distinct_prompts else f"; {'identical' if len(texts) == 1 else f'{len(texts)} different'} answer texts")
          + "\n")
    print("| path | time to first token (ms, median) | total (ms, median) | total min–max (ms) |")
    print("|---|---:|---:|---:|")
    for name, rs in results.items():
        totals = [r["total"] for r in rs]
        print(f"| {name} | {ms([r['ttft'] for r in rs])} | {ms(totals)} | "
              f"{min(totals) * 1000:.1f}–{max(totals) * 1000:.1f} |")
    ttft_delta = statistics.median([b["ttft"] - a["ttft"] for a, b in zip(d, s)])
    total_delta = statistics.median([b["total"] - a["total"] for a, b in zip(d, s)])
    print(f"| sluice overhead (median of paired differences) | {ttft_delta * 1000:+.1f} | {total_delta * 1000:+.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
