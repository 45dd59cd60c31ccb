"""The tracing plugin: the client's W3C trace is continued, one server span per request and one
client span per upstream attempt reach an OTLP/HTTP collector with GenAI attributes, the
provider receives the attempt's traceparent, and a dead collector costs requests nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.net import free_port
from harness.otlp import OTLPReceiver
from harness.sluice import run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]

CHAT = "/v1/chat/completions"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}


def with_tracing(endpoint: str):
    def edit(manifest: dict) -> None:
        manifest["pipeline"].insert(0, {"plugin": "tracing", "config": {
            "otlp_endpoint": endpoint, "protocol": "http/json", "service_name": "sluice-test", "export_interval_ms": 100}})
    return edit


@pytest.fixture
def collector():
    receiver = OTLPReceiver()
    yield receiver
    receiver.stop()


def wait_for_spans(collector: OTLPReceiver, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with collector.lock:
            if len(collector.spans) >= count:
                return list(collector.spans)
        time.sleep(0.05)
    raise AssertionError(f"expected {count} spans, got {collector.spans}")


def test_spans_continue_the_clients_trace(start_sluice, fake, collector):
    gw = start_sluice(with_tracing(collector.url))
    answer = httpx.post(gw.url + CHAT, headers={**AUTH, "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}, timeout=10,
                        json={"model": "local", "messages": [{"role": "user", "content": "hello there"}]})
    assert answer.status_code == 200, answer.text
    spans = wait_for_spans(collector, 2)
    server = next(s for s in spans if s["kind"] in (2, "SPAN_KIND_SERVER"))
    client = next(s for s in spans if s["kind"] in (3, "SPAN_KIND_CLIENT"))
    assert server["trace_id"] == TRACE_ID and server["parent_id"] == CLIENT_SPAN
    assert client["trace_id"] == TRACE_ID and client["parent_id"] == server["span_id"]
    assert server["service"] == "sluice-test"
    assert server["name"] == "chat local"
    assert server["attributes"]["gen_ai.operation.name"] == "chat"
    assert server["attributes"]["gen_ai.request.model"] == "local"
    assert server["attributes"]["gen_ai.response.model"] == "upstream-local"
    assert server["attributes"]["gen_ai.provider.name"] == "fake"
    assert server["attributes"]["gen_ai.usage.input_tokens"] == 2
    assert server["attributes"]["gen_ai.usage.output_tokens"] == 3
    assert client["attributes"]["gen_ai.request.model"] == "upstream-local"
    assert client["attributes"]["gen_ai.provider.name"] == "fake"
    [upstream] = fake.requests(CHAT)
    traceparent = upstream["headers"]["traceparent"]
    assert traceparent.split("-")[1] == TRACE_ID and traceparent.split("-")[2] == client["span_id"]


def test_a_stream_ends_its_spans_when_it_ends(start_sluice, fake, collector):
    gw = start_sluice(with_tracing(collector.url))
    with httpx.stream("POST", gw.url + CHAT, headers=AUTH, timeout=10,
                      json={"model": "local", "stream": True, "messages": [{"role": "user", "content": "hello there"}]}) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_bytes())
    assert b"[DONE]" in body
    spans = wait_for_spans(collector, 2)
    server = next(s for s in spans if s["kind"] in (2, "SPAN_KIND_SERVER"))
    assert server["attributes"]["gen_ai.usage.output_tokens"] == 3, "usage of a stream is known when it ends"
    assert len({s["trace_id"] for s in spans}) == 1


def test_a_dead_collector_costs_requests_nothing(start_sluice, fake):
    gw = start_sluice(with_tracing(f"http://127.0.0.1:{free_port()}"))
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10) as client:
        started = time.monotonic()
        for _ in range(50):
            answer = client.post(CHAT, json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 200
        elapsed = time.monotonic() - started
    assert elapsed < 5, f"50 requests took {elapsed:.2f}s with the collector down"


def thread_cpu_ns(pid: int) -> dict[str, int]:
    """Time on CPU (ns, /proc/PID/task/TID/schedstat) of each of a process's threads, by name."""
    times: dict[str, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            times[name] = times.get(name, 0) + int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except OSError:
            continue  # a thread that ended meanwhile
    return times


def test_spans_are_batched_and_exported_off_the_event_loops(start_sluice, fake, collector):
    """Encoding and sending a batch takes milliseconds: on an event loop it held every request
    on that loop (a 10 ms 99th percentile at one connection). It runs on sluice-bgwork."""
    gw = start_sluice(with_tracing(collector.url))
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10) as client:
        for _ in range(100):
            assert client.post(CHAT, json={"model": "local", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    wait_for_spans(collector, 200)
    before = thread_cpu_ns(gw.proc.pid).get("sluice-bgwork", 0)
    assert before > 0, f"no sluice-bgwork thread at work: {thread_cpu_ns(gw.proc.pid)}"
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10) as client:
        for _ in range(100):
            assert client.post(CHAT, json={"model": "local", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    wait_for_spans(collector, 400)
    assert thread_cpu_ns(gw.proc.pid)["sluice-bgwork"] > before


@pytest.mark.parametrize("binary", ["debug", "release"])
def test_building_and_shutting_down_a_tracing_pipeline_is_clean(binary, sluice_bin, make_manifest, tmp_path, request):
    # swift-otel's exporter stops its HTTP client synchronously when it is freed, which
    # AsyncHTTPClient turns into a crash on an event loop, where sluice's tasks run. `sluice
    # check` builds, starts and shuts down every plugin; it crashed about one run in three when
    # the exporter was freed there (the static release binary showed it most).
    path = sluice_bin if binary == "debug" else Path(os.environ.get("SLUICE_RELEASE_BIN") or REPO_ROOT / ".build" / "release" / "sluice")
    if not path.is_file():
        pytest.fail(f"no {binary} binary at {path}", pytrace=False)
    manifest = make_manifest()
    with_tracing(f"http://127.0.0.1:{free_port()}")(manifest)
    config = tmp_path / "tracing.json"
    config.write_text(json.dumps(manifest))
    for run in range(12):
        checked = run_cli(path, "check", str(config))
        assert checked.returncode == 0, f"run {run}: exit {checked.returncode}\n{checked.stdout}{checked.stderr}"
