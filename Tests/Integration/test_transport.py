"""The gateway's transport duties (docs/ARCHITECTURE.md, "Threads and tasks"): pooling, timeouts, retries, cancellation,
back-pressure, drain, and the server's own idle/header timeouts.

Each test is bounded in time: a gateway that hangs fails the test, it never stalls the suite.
Tests that need special settings start their own gateway (``start_sluice``, ~0.1 s each).
"""

from __future__ import annotations

import json
import select
import signal
import socket
import threading
import time
from typing import Callable

import httpx
import openai
import pytest

from fakeprovider import openai_shapes as shapes
from harness.constants import SLUICE_TEST_KEY
from harness.manifest import fake_connection
from harness.net import free_port, head_arrived, parse_response, recv_until_closed, request_head

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
MB = 1 << 20


# --- helpers ----------------------------------------------------------------------------------

def sdk(gw, timeout: float = 10) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=timeout)


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert isinstance(body.get("error"), dict), body
    return body["error"]


def chat_request(port: int, payload: dict) -> bytes:
    """A complete raw HTTP/1.1 chat request (head and body)."""
    body = json.dumps(payload).encode()
    head = request_head("POST", CHAT, port, {**AUTH, "content-type": "application/json",
                                              "content-length": str(len(body))})
    return head + body


def sse_text(raw: str) -> tuple[str, bool]:
    """(the concatenated delta contents, whether ``data: [DONE]`` was seen) of an SSE body."""
    text, done = [], False
    for line in raw.splitlines():
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        for choice in event.get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text), done


def set_model_config(manifest: dict, models: dict, providers: dict, retries: int) -> None:
    manifest["providers"] = providers
    manifest["models"] = models
    router = next(p for p in manifest["pipeline"] if p["plugin"] == "router")
    router["config"]["retries"] = retries


def two_providers(fake) -> dict:
    """Two providers on the same fake, each tagging its requests with a header of its own."""
    return {
        name: {"plugin": "openai-compatible",
               "config": {**fake_connection(fake.base_url, fake.ca_file), "api_key": {"env": "FAKE_PROVIDER_KEY"},
                          "headers": {"x-sluice-target": name}}}
        for name in ("alpha", "beta")
    }


ROUTED_MODELS = {
    "dual": {"targets": [{"provider": "alpha", "model": "up-alpha", "weight": 1},
                         {"provider": "beta", "model": "up-beta", "weight": 1}]},
    "primary": {"targets": [{"provider": "alpha", "model": "up-primary"}], "fallbacks": ["backup"]},
    "backup": {"targets": [{"provider": "beta", "model": "up-backup"}]},
}
PROVIDER_OF = {"up-alpha": "alpha", "up-beta": "beta", "up-primary": "alpha", "up-backup": "beta"}


@pytest.fixture
def routed(start_sluice, fake) -> Callable[[int], object]:
    """``routed(retries)``: a gateway with two providers, a two-target model and a fallback chain."""
    def start(retries: int):
        return start_sluice(lambda m: set_model_config(m, ROUTED_MODELS, two_providers(fake), retries),
                            name=f"routed-r{retries}-")
    return start


# --- 1. connection reuse ----------------------------------------------------------------------

@pytest.mark.both_transports
def test_upstream_connections_are_reused(client, fake):
    for _ in range(5):
        assert client.chat.completions.create(model="local", messages=HELLO).choices[0].message.content
    upstream = fake.requests(CHAT)
    assert len(upstream) == 5
    peers = [r["peer"] for r in upstream]
    assert len(set(peers)) <= 2, f"5 sequential requests used {len(set(peers))} upstream connections: {peers}"


# --- 2. first-byte timeout --------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_slow_provider_is_504(start_sluice, fake, stream):
    gw = start_sluice(lambda m: m["providers"]["fake"]["config"].update(timeout_s=1))
    fake.enqueue(delay_ms=3000, path=CHAT)
    start = time.monotonic()
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="local", messages=HELLO, stream=stream)
    elapsed = time.monotonic() - start
    assert err.value.status_code == 504, err.value.response.text
    assert error_of(err.value)["type"] == "timeout_error"
    assert 0.8 < elapsed < 2.5, f"504 after {elapsed:.2f}s with timeout_s 1"
    # The gateway gave up on the transfer: the provider sees its client leave before answering.
    gone = fake.wait_for(lambda rs: [r for r in rs if r["path"] == CHAT and r["client_disconnected"]], 3)
    assert gone, f"upstream transfer still open after the 504: {fake.requests(CHAT)}"


# --- 3. retries and fallbacks -----------------------------------------------------------------

@pytest.mark.both_transports
def test_retry_goes_to_the_next_target(routed, fake):
    gw = routed(1)
    fake.enqueue(status=500, path=CHAT)
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="dual", messages=HELLO)
    answer = raw.parse()
    upstream = fake.requests(CHAT)
    assert [r["status"] for r in upstream] == [500, 200]
    models = [r["body"]["model"] for r in upstream]
    # The order of the two targets is weighted-random; the retry must go to the *other* one.
    assert sorted(models) == ["up-alpha", "up-beta"], models
    assert answer.model == models[1]
    assert answer.choices[0].message.content == "echo: hello there"
    assert raw.headers.get("x-sluice-provider") == PROVIDER_OF[models[1]]
    # Each provider's configured extra headers went with its own attempt.
    assert [r["headers"].get("x-sluice-target") for r in upstream] == [PROVIDER_OF[m] for m in models]


def test_fallback_model_answers_when_the_own_target_fails(routed, fake):
    gw = routed(1)
    fake.enqueue(status=503, model="up-primary", count=100)  # the primary's target always fails
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="primary", messages=HELLO)
    answer = raw.parse()
    assert answer.model == "up-backup"
    assert answer.choices[0].message.content == "echo: hello there"
    assert raw.headers.get("x-sluice-provider") == "beta"
    models = [r["body"]["model"] for r in fake.requests(CHAT)]
    assert models == ["up-primary", "up-primary", "up-backup"], models  # retries 1: two tries, then fallback


def test_no_retries_means_one_attempt(routed, fake):
    gw = routed(0)
    fake.enqueue(status=500, path=CHAT)
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="dual", messages=HELLO)
    assert err.value.status_code == 502
    assert error_of(err.value)["type"] == "upstream_error"
    assert len(fake.requests(CHAT)) == 1, "retries 0 must not walk to the second target"


@pytest.mark.both_transports
def test_upstream_429_keeps_retry_after(client, fake):
    fake.enqueue(status=429, headers={"retry-after": "7"}, path=CHAT)  # the session gateway: retries 0
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "7"
    assert error_of(err.value)["type"] == "rate_limit_error"
    assert len(fake.requests(CHAT)) == 1


def test_upstream_400_is_not_retried(routed, fake):
    gw = routed(1)
    fake.enqueue(status=400, path=CHAT, body={"error": {
        "message": "Invalid value for 'temperature': 7 is greater than the maximum of 2.",
        "type": "invalid_request_error", "param": "temperature", "code": "invalid_value"}})
    with sdk(gw) as c, pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model="dual", messages=HELLO)
    assert err.value.status_code == 400
    error = error_of(err.value)
    assert "7 is greater than the maximum of 2" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert len(fake.requests(CHAT)) == 1, "a 400 is the client's fault: retrying cannot help"


# --- 4. connection refused --------------------------------------------------------------------

def test_connection_refused_is_503_provider_unavailable(start_sluice, fake):
    """Nothing listening means the provider is down (a dead local model server): 503, at once."""
    closed = free_port()  # bound and released: nothing listens there
    gw = start_sluice(lambda m: m["providers"]["fake"]["config"].update(base_url=f"http://127.0.0.1:{closed}/v1"))
    start = time.monotonic()
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="local", messages=HELLO)
    elapsed = time.monotonic() - start
    assert err.value.status_code == 503, err.value.response.text
    assert error_of(err.value)["code"] == "provider_unavailable"
    assert elapsed < 2, f"a refused connection took {elapsed:.2f}s to report"


# --- 5. client gone during a slow whole answer ------------------------------------------------

def test_client_gone_before_the_answer_cancels_upstream(gateway, fake):
    fake.enqueue(delay_ms=5000, path=CHAT)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(chat_request(gateway.port, {"model": "local", "messages": HELLO}))
        arrived = fake.wait_for(lambda rs: [r for r in rs if r["path"] == CHAT], 3)
        assert arrived, "the request never reached the provider"
        time.sleep(0.3)
    left = time.monotonic()
    gone = fake.wait_for(lambda rs: [r for r in rs if r["path"] == CHAT and r["client_disconnected"]], 3)
    assert gone, f"provider still holding the request 3 s after the client left: {fake.requests(CHAT)}"
    assert time.monotonic() - left < 3
    assert not gone[0]["completed"]


# --- 6. back-pressure -------------------------------------------------------------------------

def test_slow_reader_does_not_make_the_gateway_buffer(start_sluice, fake):
    gw = start_sluice()
    with sdk(gw) as c:  # warm up allocator, pools and the like before measuring
        list(c.chat.completions.create(model="local", messages=HELLO, stream=True))
    rss_before = gw.rss_bytes()

    fake.enqueue(stream_words=50_000, chunk_pad_bytes=4096, path=CHAT)  # ~220 MB if all sent
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", gw.port))
        sock.sendall(chat_request(gw.port, {"model": "local", "messages": HELLO, "stream": True}))
        got = 0
        deadline = time.monotonic() + 10
        while got < 64 * 1024:
            assert time.monotonic() < deadline, f"only {got} bytes of the stream in 10 s"
            data = sock.recv(65536)
            assert data, f"stream ended after {got} bytes"
            got += len(data)

        time.sleep(3)  # a client that stops reading
        [record] = fake.requests(CHAT)[-1:]
        rss_after = gw.rss_bytes()
        sent, total = record["chunks_sent"], record["total_chunks"]
        sent_mb = sent * (4096 + 250) / MB
        assert total in (50_003, 50_004)  # +1 when the gateway asks for the usage chunk
        assert sent < 0.2 * total, (f"provider sent {sent}/{total} chunks (~{sent_mb:.0f} MB) to a client "
                                    f"that read {got} bytes: the gateway is not pausing the upstream")
        growth = (rss_after - rss_before) / MB
        assert growth < 100, f"gateway RSS grew {growth:.0f} MB while its client was not reading"
    finally:
        sock.close()  # with unread data: the kernel sends RST

    aborted = fake.wait_for(lambda rs: [r for r in rs if r["path"] == CHAT and r["stream_aborted"]], 5)
    assert aborted, f"provider still streaming 5 s after the client left: {fake.requests(CHAT)[-1]['chunks_sent']} sent"
    assert not aborted[-1]["completed"]


def test_open_streams_keep_nothing_of_their_request_bodies(start_sluice, fake):
    # A chat body carries the whole conversation and a stream lasts minutes. Once the provider
    # answers, the gateway needs none of the body: not the client's bytes, not their parsed tree,
    # not curl's. The plugins whose stream-end closures hold the request are all in the pipeline.
    # Held, 100 streams of ~256 KB bodies cost some 100 MB here; given back, about 12.
    def pipeline(manifest: dict) -> None:
        manifest["server"]["max_body_bytes"] = 1 << 20
        manifest["pipeline"][:0] = [
            {"plugin": "access-log", "config": {}},
            {"plugin": "metrics", "config": {}},
            {"plugin": "tracing", "config": {"otlp_endpoint": f"http://127.0.0.1:{free_port()}"}},
        ]
    gw = start_sluice(pipeline)
    turn = "An earlier turn of a long conversation, sent again with every request. " * 64
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": turn} for i in range(56)]
    request = chat_request(gw.port, {"model": "local", "messages": history + HELLO, "stream": True})
    assert len(request) > 250_000

    def open_stream() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        sock.sendall(request)
        got = b""
        while b"data: " not in got.partition(b"\r\n\r\n")[2]:  # the head and the first event
            data = sock.recv(65536)
            assert data, f"closed before the first event: {got[:200]!r}"
            got += data
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
        return sock

    n = 100
    fake.enqueue(stream_words=20, chunk_delay_ms=1000, count=n + 2, path=CHAT)
    socks = [open_stream() for _ in range(2)]  # warm up the allocator and the pools
    rss_before = gw.rss_bytes()
    try:
        socks += [open_stream() for _ in range(n)]
        time.sleep(1)
        growth = (gw.rss_bytes() - rss_before) / MB
        assert growth < 40, f"{n} open streams grew the gateway by {growth:.0f} MB: their request bodies are held"
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.both_transports
def test_events_larger_than_the_receive_buffer_arrive_whole(gateway, fake):
    # A streamed body is read in 2 KiB pieces (UpstreamTransfer.streamingReceiveBufferBytes):
    # events ten times that size are cut across many reads and must come out whole and in order.
    fake.enqueue(chunk_pad_bytes=20_000, path=CHAT)
    with httpx.Client(base_url=gateway.base_url, headers=AUTH, timeout=10) as http:
        body = {"model": "local", "messages": [{"role": "user", "content": "one two three four five six seven eight"}],
                "stream": True}
        with http.stream("POST", "/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            events = [e for e in resp.read().decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert len(payloads) >= 9  # a role chunk, eight words, a finish chunk
    assert all(p["x_fake_pad"] == "x" * 20_000 for p in payloads)
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads if p.get("choices"))
    assert text == "echo: one two three four five six seven eight"


# --- 7. drain on SIGTERM ----------------------------------------------------------------------

class StreamReader(threading.Thread):
    """Reads one streamed chat answer through the gateway in the background."""

    def __init__(self, gw, timeout: float = 20):
        super().__init__(daemon=True)
        self.gw, self.timeout = gw, timeout
        self.first_event = threading.Event()
        self.raw, self.status, self.error = "", None, None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as c, c.stream(
                    "POST", self.gw.url + CHAT, headers=AUTH,
                    json={"model": "local", "messages": HELLO, "stream": True}) as resp:
                self.status = resp.status_code
                for line in resp.iter_lines():
                    self.raw += line + "\n"
                    if line.startswith("data: "):
                        self.first_event.set()
        except Exception as exc:  # noqa: BLE001 - a cut stream may end in any transport error
            self.error = exc
        finally:
            self.first_event.set()


@pytest.mark.both_transports
def test_sigterm_drains_streams_in_flight(start_sluice, fake):
    gw = start_sluice(lambda m: m["server"].update(drain_timeout_s=10))
    words = 20
    fake.enqueue(chunk_delay_ms=100, stream_words=words, path=CHAT)  # ~2 s
    reader = StreamReader(gw)
    reader.start()
    assert reader.first_event.wait(5) and reader.status == 200, (reader.status, reader.error)

    signalled = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    ready = 200
    while ready == 200 and time.monotonic() - signalled < 1:
        ready, _ = gw.get("/ready", timeout=1)
    stream_running = reader.is_alive()
    assert ready in (503, None), f"/ready answered {ready} 1 s after SIGTERM"
    assert stream_running, "the stream ended before /ready could be checked (too fast to test the drain)"

    reader.join(10)
    assert not reader.is_alive(), "stream still running 10 s after SIGTERM"
    text, done = sse_text(reader.raw)
    assert reader.error is None, f"stream cut during the drain: {reader.error!r}"
    assert text == shapes.join_words(shapes.reply_words(HELLO, words))
    assert done, "stream not terminated by data: [DONE]"

    code = gw.wait_exit(max(0.5, 10 - (time.monotonic() - signalled)))
    assert code == 0, f"exit code {code} (None: still running at the end of drain_timeout_s)"
    [upstream] = fake.requests(CHAT)
    assert upstream["completed"] and not upstream["stream_aborted"]


def test_sigterm_cancels_what_outlives_the_drain(start_sluice, fake):
    gw = start_sluice(lambda m: m["server"].update(drain_timeout_s=1))
    fake.enqueue(chunk_delay_ms=100, stream_words=100, path=CHAT)  # ~10 s
    reader = StreamReader(gw)
    reader.start()
    assert reader.first_event.wait(5) and reader.status == 200, (reader.status, reader.error)

    signalled = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    code = gw.wait_exit(3)
    exited = time.monotonic() - signalled
    assert code == 0, f"exit code {code} after {exited:.1f}s (None: still running 3 s after SIGTERM)"

    aborted = fake.wait_for(lambda rs: [r for r in rs if r["path"] == CHAT and r["stream_aborted"]], 2)
    assert aborted, f"provider still streaming after the gateway exited: {fake.requests(CHAT)}"
    reader.join(3)
    assert not reader.is_alive(), "the client's stream hung after the gateway exited"
    assert not sse_text(reader.raw)[1], "a cancelled stream must not end with [DONE]"


# --- 8. the server's own timeouts -------------------------------------------------------------

def test_idle_keep_alive_connection_is_closed(start_sluice):
    gw = start_sluice(lambda m: m["server"].update(idle_timeout_s=1))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(request_head("GET", "/health", gw.port, {}))
        buf, answer = b"", None
        deadline = time.monotonic() + 5
        while answer is None:
            assert time.monotonic() < deadline, f"no answer to GET /health: {buf!r}"
            data = sock.recv(65536)
            assert data, f"closed before answering: {buf!r}"
            buf += data
            answer = parse_response(buf, eof=False)
        assert answer.status == 200
        assert answer.headers.get("connection", "").lower() != "close", "not a keep-alive connection"

        idle_from = time.monotonic()
        rest, how = recv_until_closed(sock, 5)
        idle = time.monotonic() - idle_from
    assert how in ("eof", "reset"), f"idle connection still open after {idle:.1f}s (idle_timeout_s 1)"
    assert rest == b""
    assert 0.5 < idle < 2, f"idle connection closed after {idle:.2f}s (idle_timeout_s 1)"


def test_partial_head_is_closed_after_the_idle_timeout(start_sluice):
    gw = start_sluice(lambda m: m["server"].update(idle_timeout_s=1))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        start = time.monotonic()
        rest, how = recv_until_closed(sock, 5)
        elapsed = time.monotonic() - start
    assert how in ("eof", "reset"), f"half a request head kept a connection open {elapsed:.1f}s"
    assert elapsed < 2, f"half a request head held the connection {elapsed:.2f}s (idle_timeout_s 1)"
    if rest:
        assert 400 <= int(rest.split()[1]) < 500, rest[:200]


def test_body_that_never_completes_is_cut_off(start_sluice, fake):
    gw = start_sluice(lambda m: m["server"].update(header_timeout_s=1, idle_timeout_s=30))
    head = request_head("POST", CHAT, gw.port, {**AUTH, "content-type": "application/json",
                                                "content-length": "100"})
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(head + b'{"model": ')  # 10 of the 100 bytes promised
        start = time.monotonic()
        rest, how = recv_until_closed(sock, 5, stop=head_arrived)
        elapsed = time.monotonic() - start
    assert how != "timeout", f"incomplete body held the connection {elapsed:.1f}s: {rest[:200]!r}"
    assert elapsed < 2.5, f"incomplete body cut off only after {elapsed:.2f}s (header_timeout_s 1)"
    if rest:  # an answer is fine as long as it is a client error
        assert rest.startswith(b"HTTP/1.1 4"), f"unexpected answer to an incomplete body: {rest[:200]!r}"
    assert fake.requests(CHAT) == []


# --- 9. request ids upstream ------------------------------------------------------------------

def test_client_request_id_goes_upstream(client, fake):
    client.chat.completions.create(model="local", messages=HELLO, extra_headers={"x-request-id": "abc-123"})
    [upstream] = fake.requests(CHAT)
    assert upstream["headers"].get("x-request-id") == "abc-123"


def test_generated_request_id_goes_upstream(client, fake):
    raw = client.chat.completions.with_raw_response.create(model="local", messages=HELLO)
    [upstream] = fake.requests(CHAT)
    assert raw.headers.get("x-request-id")
    assert upstream["headers"].get("x-request-id") == raw.headers.get("x-request-id")
