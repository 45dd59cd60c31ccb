#!/usr/bin/env python3
"""What `pii` costs: the sluice process's CPU per KB of prompt and per KB of streamed answer,
with `pii` (every detector on, redacting) against the same gateway without it.

    python3 bench/guardrails_pii.py [--requests N] [--kb K] [--sluice PATH]

The upstream is the integration tests' fake provider answering a canned stream of K KB in 16-byte
chunks; the prompt is K KB of prose with an e-mail address, a phone number and a card number every
~400 bytes. CPU is read from /proc (utime + stime) around N requests per variant, after a warm-up.
Prints a table; the difference between the two rows, divided by the KB moved, is what `pii` adds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "Integration"))

from fakeprovider import FakeProvider  # noqa: E402
from harness.constants import SLUICE_TEST_KEY  # noqa: E402
from harness.manifest import default_manifest  # noqa: E402
from harness.net import free_port  # noqa: E402
from harness.sluice import Sluice  # noqa: E402

SENTENCE = ("The customer wrote from jane.roe@example.com and asked us to call back on +1 415 555 0100 "
            "about the charge on card 4111 1111 1111 1111; the order shipped on 2024-03-02 and version 1.2.3 "
            "of the app crashed twice before the refund of 42.50 was approved by the support team. ")


def text_of(kb: int) -> str:
    return (SENTENCE * (kb * 1024 // len(SENTENCE) + 1))[: kb * 1024]


def stream_body(text: str, chunk: int = 16) -> str:
    def event(delta: dict, finish=None) -> str:
        return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "upstream-local",
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    return "".join([event({"content": text[i:i + chunk]}) for i in range(0, len(text), chunk)] + [event({}, "stop")]) + "data: [DONE]\n\n"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def measure(gw: Sluice, fake: FakeProvider, kb: int, requests: int, stream: bool) -> float:
    text = text_of(kb)
    body = stream_body(text)
    headers = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
    prompt = text if not stream else "go"
    with httpx.Client(base_url=gw.base_url, headers=headers, timeout=60) as client:
        def one() -> None:
            if stream:
                fake.enqueue(path="/v1/chat/completions", status=200, headers={"content-type": "text/event-stream"}, body=body)
            answer = client.post("/chat/completions", json={"model": "local", "stream": stream,
                                                            "messages": [{"role": "user", "content": prompt}]})
            assert answer.status_code == 200, answer.text[:300]
        for _ in range(3):
            one()
        before = cpu_seconds(gw.pid)
        for _ in range(requests):
            one()
        return (cpu_seconds(gw.pid) - before) / requests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--kb", type=int, default=16)
    parser.add_argument("--sluice", default=str(REPO / ".build" / "debug" / "sluice"))
    args = parser.parse_args()
    fake = FakeProvider().start()
    rows = []
    try:
        for name, pii in (("without pii", None), ("with pii", {"plugin": "pii", "config": {"detectors": {"secret": "redact", "ip": "redact"}}})):
            manifest = default_manifest(free_port(), fake.base_url)
            manifest["server"]["max_body_bytes"] = 4 * 1024 * 1024
            if pii:
                auth, router = manifest["pipeline"]
                manifest["pipeline"] = [auth, pii, router]
            gw = Sluice(Path(args.sluice), manifest, Path("/tmp"), name=f"bench-{len(rows)}").start()
            try:
                request_cpu = measure(gw, fake, args.kb, args.requests, stream=False)
                stream_cpu = measure(gw, fake, args.kb, args.requests, stream=True)
            finally:
                gw.stop()
            rows.append((name, request_cpu, stream_cpu))
    finally:
        fake.stop()
    print(f"sluice: {args.sluice}; {args.requests} requests of {args.kb} KB each")
    print(f"{'variant':<12} {'prompt CPU/req':>15} {'stream CPU/req':>15}")
    for name, request_cpu, stream_cpu in rows:
        print(f"{name:<12} {request_cpu * 1000:>12.2f} ms {stream_cpu * 1000:>12.2f} ms")
    added_request = (rows[1][1] - rows[0][1]) / args.kb
    added_stream = (rows[1][2] - rows[0][2]) / args.kb
    print(f"pii adds {added_request * 1e6:.0f} µs CPU per KB of prompt and {added_stream * 1e6:.0f} µs per KB of streamed answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
