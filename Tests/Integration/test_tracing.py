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


def with_tracing(endpoint: str, protocol: str | None = "http/json", **extra):
    """The tracing plugin first in the pipeline; `protocol=None` leaves the default (http/protobuf)."""
    def edit(manifest: dict) -> None:
        config = {"otlp_endpoint": endpoint, "service_name": "sluice-test", "export_interval_ms": 100, **extra}
        if protocol:
            config["protocol"] = protocol
        manifest["pipeline"].insert(0, {"plugin": "tracing", "config": config})
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
            assert not collector.errors, f"the collector could not read an export: {collector.errors}"
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


def test_the_default_protobuf_export_is_read_by_opentelemetry_proto(start_sluice, fake, collector):
    """`http/protobuf` is the default, and the gateway encodes it by hand: the official generated
    code (opentelemetry-proto, in harness/otlp.py) must read every field back."""
    gw = start_sluice(with_tracing(collector.url, protocol=None))
    answer = httpx.post(gw.url + CHAT, timeout=10, headers={
        **AUTH, "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "x-request-id": "proto-1"}, json={"model": "local", "messages": [{"role": "user", "content": "hello there"}]})
    assert answer.status_code == 200, answer.text
    spans = wait_for_spans(collector, 2)
    assert set(collector.content_types) == {"application/x-protobuf"}
    server = next(s for s in spans if s["kind"] == 2)  # SPAN_KIND_SERVER
    client = next(s for s in spans if s["kind"] == 3)  # SPAN_KIND_CLIENT
    assert server["service"] == client["service"] == "sluice-test"
    assert server["scope"] == "sluice.tracing"
    assert server["trace_id"] == client["trace_id"] == TRACE_ID
    assert server["parent_id"] == CLIENT_SPAN
    assert client["parent_id"] == server["span_id"] and len(client["span_id"]) == 16 and client["span_id"] != server["span_id"]
    assert server["trace_state"] == client["trace_state"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert server["name"] == "chat local" and client["name"] == "chat upstream-local"
    assert server["start"] <= client["start"] <= client["end"] <= server["end"]
    assert abs(server["start"] / 1e9 - time.time()) < 60, "Unix nanoseconds"
    assert server["status"] == {} and client["status"] == {}
    attributes = server["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "local"
    assert attributes["gen_ai.response.model"] == "upstream-local"
    assert attributes["gen_ai.provider.name"] == "fake"
    assert attributes["sluice.request_id"] == "proto-1"
    assert attributes["sluice.front_door"] == "openai"
    assert attributes["sluice.key_name"]
    # Integers as int_value, not strings.
    assert attributes["http.response.status_code"] == 200
    assert attributes["sluice.attempts"] == 1
    assert attributes["gen_ai.usage.input_tokens"] == 2 and attributes["gen_ai.usage.output_tokens"] == 3
    assert client["attributes"] == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "fake",
                                    "gen_ai.request.model": "upstream-local", "sluice.attempt": 1,
                                    "gen_ai.usage.input_tokens": 2, "gen_ai.usage.output_tokens": 3}
    [upstream] = fake.requests(CHAT)
    assert upstream["headers"]["traceparent"] == f"00-{TRACE_ID}-{client['span_id']}-01"
    assert upstream["headers"]["tracestate"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"

    # A refusal: the error status and its type.
    refused = httpx.post(gw.url + CHAT, headers={**AUTH, "x-request-id": "proto-2"}, timeout=10,
                         json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 404
    spans = wait_for_spans(collector, 3)
    failed = next(s for s in spans if s["attributes"].get("sluice.request_id") == "proto-2")
    assert failed["status"]["code"] == 2  # STATUS_CODE_ERROR
    assert failed["status"]["message"]
    assert failed["attributes"]["error.type"] == "model_not_found"
    assert failed["attributes"]["http.response.status_code"] == 404
    assert failed["parent_id"] == "" and len(failed["trace_id"]) == 32 and failed["trace_id"] != TRACE_ID


def test_a_trace_not_sampled_is_passed_on_and_not_exported(start_sluice, fake, collector):
    gw = start_sluice(with_tracing(collector.url, sample_ratio=0))
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10) as client:
        # The client decided not to sample: its decision is followed and passed on.
        other = "0af7651916cd43dd8448eb211c80319c"
        unsampled = client.post(CHAT, headers={"traceparent": f"00-{other}-b7ad6b7169203331-00"},
                                json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
        assert unsampled.status_code == 200
        # A new trace at sample_ratio 0: not sampled either, but it has a context to pass on.
        new = client.post(CHAT, json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
        assert new.status_code == 200
        # A sampled parent is followed whatever the ratio.
        sampled = client.post(CHAT, headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
                              json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
        assert sampled.status_code == 200
    sent = [r["headers"]["traceparent"].split("-") for r in fake.requests(CHAT)]
    assert [s[3] for s in sent] == ["00", "00", "01"]
    assert sent[0][1] == other and sent[0][2] != "b7ad6b7169203331"
    assert sent[1][1] not in (other, TRACE_ID) and sent[1][1] != "0" * 32
    wait_for_spans(collector, 2)
    time.sleep(0.5)  # a few more export intervals: nothing else comes
    with collector.lock:
        assert {s["trace_id"] for s in collector.spans} == {TRACE_ID}, collector.spans


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
    # `sluice check` builds, starts and shuts down every plugin, the exporter's job included.
    # With swift-otel (before issue #26) it crashed about one run in three: its exporter stopped
    # its HTTP client synchronously when freed, which AsyncHTTPClient turns into a crash on an
    # event loop. The tracer is Sluice's own now; a start and shutdown must stay clean.
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
