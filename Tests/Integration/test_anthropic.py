"""Anthropic both ways (docs/ARCHITECTURE.md, "The HTTP surface"): the front door ``POST /v1/messages`` and the ``anthropic`` provider.

- The official ``anthropic`` SDK talks to the gateway's /v1/messages, routed to an OpenAI-compatible
  upstream (the fake's /v1/chat/completions): the gateway translates requests and answers, whole and
  streamed, tools included.
- The official ``openai`` SDK talks to /v1/chat/completions routed to an ``anthropic`` provider (the
  fake's /v1/messages), which answers like the real Messages API and refuses what it would refuse
  (extra fields, a ``system`` role among the messages, a tool_use without its tool_result, ...).
- Same dialect on both sides: the client's body goes upstream as it was sent, but for ``model``.

One gateway serves the module (one per upstream transport: the tests marked ``both_transports``
also run against the TLS fake over HTTP/2, see conftest.py); the fake is reset before every test.
"""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest

from harness.constants import FAKE_PROVIDER_KEY, SLUICE_TEST_KEY
from harness.manifest import default_manifest, fake_connection
from harness.net import free_port
from harness.sluice import Sluice, SluiceError, sluice_env
from harness.sse import anthropic_events, openai_chunks

ANTHROPIC_PROVIDER_KEY = "anth-prov-secret-456"
ANTHROPIC_VERSION = "2023-06-01"  # the provider's default anthropic-version
DEFAULT_MAX_TOKENS = 4096         # the provider's default max_tokens for OpenAI requests without one

VIA_OPENAI = "claude-on-openai"   # public model -> the OpenAI-compatible provider "fake"
VIA_CLAUDE = "gpt-on-claude"      # public model -> the anthropic provider "claude"
UP_OPENAI, UP_CLAUDE = "up-oai", "claude-up"

CHAT, MESSAGES = "/v1/chat/completions", "/v1/messages"
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOL_RESULT_TEXT = "18 degrees and sunny"
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_SCHEMA}
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                                "parameters": WEATHER_SCHEMA}}
PIXEL_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
TIMEOUT_S = 15


# --- the gateway and its clients --------------------------------------------------------------

@pytest.fixture(scope="module")
def gateways(sluice_bin, tmp_path_factory) -> dict:
    """The module's gateways, one per fake provider, each started when first asked for."""
    started: dict[str, Sluice] = {}
    yield started
    for gateway in started.values():
        gateway.stop()


@pytest.fixture
def gw(gateways, fake, upstream_transport, sluice_bin, tmp_path_factory) -> Sluice:
    if upstream_transport in gateways:
        return gateways[upstream_transport]
    manifest = default_manifest(free_port(), fake.base_url, fake.ca_file)
    manifest["providers"]["claude"] = {"plugin": "anthropic", "config": {
        **fake_connection(fake.url, fake.ca_file), "api_key": {"env": "FAKE_ANTHROPIC_KEY"}}}
    manifest["models"][VIA_OPENAI] = {"targets": [{"provider": "fake", "model": UP_OPENAI}]}
    manifest["models"][VIA_CLAUDE] = {"targets": [{"provider": "claude", "model": UP_CLAUDE}]}
    try:
        gateways[upstream_transport] = Sluice(
            sluice_bin, manifest, tmp_path_factory.mktemp("anthropic"), name=f"anthropic-{upstream_transport}",
            env=sluice_env({"FAKE_ANTHROPIC_KEY": ANTHROPIC_PROVIDER_KEY})).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    return gateways[upstream_transport]


@pytest.fixture
def claude(gw) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=gw.url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S) as c:
        yield c


@pytest.fixture
def oai(gw) -> openai.OpenAI:
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S) as c:
        yield c


@pytest.fixture
def raw(gw) -> httpx.Client:
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        yield c


ANTHROPIC_HEADERS = {"x-api-key": SLUICE_TEST_KEY, "anthropic-version": ANTHROPIC_VERSION}


# --- helpers ----------------------------------------------------------------------------------

def only(records: list[dict]) -> dict:
    assert len(records) == 1, f"expected one upstream request, got {len(records)}: {[r['path'] for r in records]}"
    return records[0]


def texts(content) -> list[str]:
    """The texts of an OpenAI or Anthropic content value (a string, or a list of parts/blocks)."""
    if isinstance(content, str):
        return [content]
    assert isinstance(content, list), content
    return [p["text"] for p in content if p.get("type") == "text"]


def blocks(content) -> list[dict]:
    """Anthropic content as blocks (a plain string is one text block)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def assert_no_client_key(record: dict) -> None:
    leaked = sorted(k for k, v in record["headers"].items() if SLUICE_TEST_KEY in v)
    assert not leaked, f"client key forwarded upstream in headers {leaked}"
    assert SLUICE_TEST_KEY not in json.dumps(record["body"]), "client key forwarded upstream in the body"


def assert_anthropic_upstream_auth(record: dict) -> None:
    assert record["path"] == MESSAGES
    assert record["headers"].get("x-api-key") == ANTHROPIC_PROVIDER_KEY
    assert record["headers"].get("anthropic-version") == ANTHROPIC_VERSION
    assert_no_client_key(record)


def assert_openai_upstream_auth(record: dict) -> None:
    assert record["path"] == CHAT
    assert record["headers"].get("authorization") == f"Bearer {FAKE_PROVIDER_KEY}"
    assert_no_client_key(record)


def upstream_max_tokens(body: dict):
    return body.get("max_completion_tokens", body.get("max_tokens"))


def stop_values(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def check_anthropic_stream(events: list[dict]) -> list[dict]:
    """Asserts the Messages stream grammar; returns the content blocks' (start, deltas) in order.

    message_start, then for each block i = 0, 1, ...: content_block_start(i), content_block_delta(i)*,
    content_block_stop(i); then message_delta and message_stop. ``ping`` may come anywhere after
    message_start.
    """
    assert events, "empty stream"
    assert events[0]["type"] == "message_start", [e["type"] for e in events]
    start = events[0]["message"]
    assert (start["type"], start["role"], start["content"]) == ("message", "assistant", [])
    rest = [e for e in events[1:] if e["type"] != "ping"]
    assert [e["type"] for e in rest[-2:]] == ["message_delta", "message_stop"], [e["type"] for e in events]
    found, current = [], None
    for e in rest[:-2]:
        if current is None:
            assert e["type"] == "content_block_start" and e["index"] == len(found), e
            current = {"start": e["content_block"], "deltas": []}
        elif e["type"] == "content_block_delta":
            assert e["index"] == len(found), e
            current["deltas"].append(e["delta"])
        else:
            assert e["type"] == "content_block_stop" and e["index"] == len(found), e
            found.append(current)
            current = None
    assert current is None, "a content block was never stopped"
    assert found, "no content block"
    return found


def stream_raw(raw: httpx.Client, path: str, body: dict, headers: dict) -> tuple[httpx.Response, str, Exception | None]:
    """POSTs a streamed request and reads all of it; (response, text read, transport error if it broke)."""
    with raw.stream("POST", path, json=body, headers=headers) as resp:
        got, error = [], None
        try:
            for piece in resp.iter_text():
                got.append(piece)
        except httpx.TransportError as exc:
            error = exc
        return resp, "".join(got), error


# --- anthropic SDK -> /v1/messages -> OpenAI-compatible upstream ---------------------------------

@pytest.mark.both_transports
def test_messages_text_translated_to_openai(claude, fake):
    raw_resp = claude.messages.with_raw_response.create(model=VIA_OPENAI, max_tokens=50, messages=HELLO)
    msg = raw_resp.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.id
    assert [(b.type, b.text) for b in msg.content] == [("text", "echo: hello there")]
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.model == UP_OPENAI  # the upstream name, as the provider said it
    assert raw_resp.headers.get("x-sluice-provider") == "fake"
    assert raw_resp.headers.get("x-request-id")

    up = only(fake.requests(CHAT))
    assert_openai_upstream_auth(up)
    assert up["body"]["model"] == UP_OPENAI
    assert [(m["role"], texts(m["content"])) for m in up["body"]["messages"]] == [("user", ["hello there"])]
    assert upstream_max_tokens(up["body"]) == 50
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (up["usage"]["prompt_tokens"],
                                                                 up["usage"]["completion_tokens"]) == (2, 3)


@pytest.mark.both_transports
def test_messages_stream_with_the_sdk(claude, fake):
    with claude.messages.stream(model=VIA_OPENAI, max_tokens=50, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there"
    assert [(b.type, b.text) for b in final.content] == [("text", "echo: hello there")]
    assert final.stop_reason == "end_turn"
    up = only(fake.requests(CHAT))
    assert up["body"]["stream"] is True
    assert (up["body"].get("stream_options") or {}).get("include_usage") is True, \
        "the gateway must ask the OpenAI upstream for usage to report it in message_delta"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (up["usage"]["prompt_tokens"],
                                                                     up["usage"]["completion_tokens"]) == (2, 3)


def test_messages_stream_wire_format(raw, fake):
    resp, text, error = stream_raw(raw, MESSAGES, {"model": VIA_OPENAI, "max_tokens": 50, "stream": True,
                                                   "messages": HELLO}, ANTHROPIC_HEADERS)
    assert error is None and resp.status_code == 200, (resp.status_code, text[:300], error)
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = anthropic_events(text)
    [block] = check_anthropic_stream(events)
    assert block["start"] == {"type": "text", "text": ""}
    assert all(d["type"] == "text_delta" for d in block["deltas"])
    assert "".join(d["text"] for d in block["deltas"]) == "echo: hello there"
    assert len(block["deltas"]) >= 2, "the text was buffered, not streamed"
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == only(fake.requests(CHAT))["usage"]["completion_tokens"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_messages_tool_use_then_tool_result(claude, fake, stream):
    if stream:
        with claude.messages.stream(model=VIA_OPENAI, max_tokens=100, tools=[ANTHROPIC_TOOL], messages=WEATHER) as s:
            json_pieces = [e.partial_json for e in s if e.type == "input_json" and e.partial_json]
            msg = s.get_final_message()
        assert len(json_pieces) >= 2, f"tool input was not streamed in pieces: {json_pieces}"
    else:
        msg = claude.messages.create(model=VIA_OPENAI, max_tokens=100, tools=[ANTHROPIC_TOOL], messages=WEATHER)
    assert msg.stop_reason == "tool_use"
    [use] = [b for b in msg.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"location": "Paris"} and use.id

    [first] = fake.requests(CHAT)
    assert first["body"]["tools"] == [OPENAI_TOOL]

    follow_up = WEATHER + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT_TEXT}]}]
    answer = claude.messages.create(model=VIA_OPENAI, max_tokens=100, tools=[ANTHROPIC_TOOL], messages=follow_up)
    assert answer.stop_reason == "end_turn"
    assert [b.text for b in answer.content if b.type == "text"] == [f"echo: {TOOL_RESULT_TEXT}"]

    second = fake.requests(CHAT)[1]["body"]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool"]
    [call] = second[1]["tool_calls"]
    assert call["id"] == use.id and call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert second[2]["tool_call_id"] == use.id and texts(second[2]["content"]) == [TOOL_RESULT_TEXT]


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"),
    ({"type": "any"}, "required"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
], ids=["auto", "any", "tool"])
def test_messages_tool_choice_translated(claude, fake, choice, expected):
    msg = claude.messages.create(model=VIA_OPENAI, max_tokens=100, tools=[ANTHROPIC_TOOL], tool_choice=choice,
                                 messages=HELLO)  # no "weather": only a forced choice calls the tool
    body = only(fake.requests(CHAT))["body"]
    assert body.get("tool_choice", "auto") == expected
    assert msg.stop_reason == ("end_turn" if choice["type"] == "auto" else "tool_use")


@pytest.mark.parametrize("system", ["You are terse.", [{"type": "text", "text": "Rule one."},
                                                      {"type": "text", "text": "Rule two."}]],
                         ids=["string", "blocks"])
def test_messages_system_prompt_becomes_a_system_message(claude, fake, system):
    msg = claude.messages.create(model=VIA_OPENAI, max_tokens=50, system=system, messages=HELLO)
    assert msg.content[0].text == "echo: hello there"
    messages = only(fake.requests(CHAT))["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    said = " ".join(texts(messages[0]["content"]))
    if isinstance(system, str):
        assert said == system
    else:
        assert "Rule one." in said and "Rule two." in said and said.index("Rule one.") < said.index("Rule two.")


def test_messages_stop_sequences_become_stop(claude, fake):
    msg = claude.messages.create(model=VIA_OPENAI, max_tokens=50, stop_sequences=["there"], messages=HELLO)
    assert stop_values(only(fake.requests(CHAT))["body"].get("stop")) == ["there"]
    assert msg.content[0].text == "echo: hello "
    # OpenAI says "stop" for both a natural end and a stop string; either Anthropic reason is honest.
    assert msg.stop_reason in ("end_turn", "stop_sequence")


def test_messages_length_becomes_max_tokens(claude, fake):
    msg = claude.messages.create(model=VIA_OPENAI, max_tokens=2, messages=HELLO)
    assert upstream_max_tokens(only(fake.requests(CHAT))["body"]) == 2
    assert (msg.content[0].text, msg.stop_reason) == ("echo: hello", "max_tokens")


def test_messages_multi_turn_and_image_parts(claude, fake):
    msg = claude.messages.create(model=VIA_OPENAI, max_tokens=50, metadata={"user_id": "user-42"}, messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello, what can I do?"},
        {"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG}},
            {"type": "text", "text": "this"}]}])
    assert msg.content[0].text == "echo: describe this"
    messages = only(fake.requests(CHAT))["body"]["messages"]
    assert [(m["role"], texts(m["content"])) for m in messages] == [
        ("user", ["hi"]), ("assistant", ["hello, what can I do?"]), ("user", ["describe", "this"])]
    parts = messages[2]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text"]
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{PIXEL_PNG}"


# --- openai SDK -> /v1/chat/completions -> anthropic provider ------------------------------------

@pytest.mark.both_transports
def test_chat_text_translated_to_anthropic(oai, fake):
    raw_resp = oai.chat.completions.with_raw_response.create(model=VIA_CLAUDE, messages=HELLO)
    answer = raw_resp.parse()
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == UP_CLAUDE
    assert raw_resp.headers.get("x-sluice-provider") == "claude"

    up = only(fake.requests(MESSAGES))
    assert_anthropic_upstream_auth(up)
    assert up["body"]["model"] == UP_CLAUDE
    assert up["body"]["max_tokens"] == DEFAULT_MAX_TOKENS  # the client set none; Anthropic requires one
    assert [(m["role"], texts(m["content"])) for m in up["body"]["messages"]] == [("user", ["hello there"])]
    assert "system" not in up["body"]
    usage = up["usage"]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == \
        (usage["input_tokens"], usage["output_tokens"], usage["input_tokens"] + usage["output_tokens"]) == (2, 3, 5)


@pytest.mark.both_transports
def test_chat_stream_translated_from_anthropic(oai, fake):
    chunks = list(oai.chat.completions.create(model=VIA_CLAUDE, messages=HELLO, stream=True,
                                              stream_options={"include_usage": True}))
    up = only(fake.requests(MESSAGES))
    assert_anthropic_upstream_auth(up)
    assert up["body"]["stream"] is True and "stream_options" not in up["body"]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == "echo: hello there"
    assert len([c for c in with_choices if c.choices[0].delta.content]) >= 2, "the text was buffered, not streamed"
    assert [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason] == ["stop"]
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1], "exactly one usage chunk, last"
    u = usage_chunks[0].usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (
        up["usage"]["input_tokens"], up["usage"]["output_tokens"],
        up["usage"]["input_tokens"] + up["usage"]["output_tokens"])


def test_chat_stream_without_include_usage_has_no_usage_chunk(raw, fake):
    resp, text, error = stream_raw(raw, CHAT, {"model": VIA_CLAUDE, "messages": HELLO, "stream": True},
                                   {"authorization": f"Bearer {SLUICE_TEST_KEY}"})
    assert error is None and resp.status_code == 200, (resp.status_code, text[:300], error)
    chunks, done = openai_chunks(text)
    assert done, "an OpenAI stream ends with data: [DONE]"
    assert [c for c in chunks if not c["choices"]] == [], "usage chunk sent to a client that did not ask"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "echo: hello there"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_chat_tool_calls_then_tool_result(oai, fake, stream):
    if stream:
        chunks = list(oai.chat.completions.create(model=VIA_CLAUDE, messages=WEATHER, tools=[OPENAI_TOOL], stream=True))
        deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert deltas and deltas[0].id and deltas[0].function.name == "get_weather" and deltas[0].type == "function"
        assert {d.index for d in deltas} == {0}
        pieces = [d.function.arguments for d in deltas if d.function and d.function.arguments]
        assert len(pieces) >= 2, f"tool arguments were not streamed in pieces: {pieces}"
        call_id, name, arguments = deltas[0].id, deltas[0].function.name, "".join(pieces)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=WEATHER, tools=[OPENAI_TOOL])
        [call] = answer.choices[0].message.tool_calls
        assert call.type == "function" and call.id
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        finish = [answer.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    assert name == "get_weather" and json.loads(arguments) == {"location": "Paris"}

    [first] = fake.requests(MESSAGES)
    assert first["body"]["tools"] == [ANTHROPIC_TOOL]

    follow_up = WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT_TEXT}]
    answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=follow_up, tools=[OPENAI_TOOL])
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == f"echo: {TOOL_RESULT_TEXT}"

    second = fake.requests(MESSAGES)[1]["body"]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    [use] = [b for b in blocks(second[1]["content"]) if b["type"] == "tool_use"]
    assert (use["id"], use["name"], use["input"]) == (call_id, "get_weather", {"location": "Paris"})
    [result] = blocks(second[2]["content"])
    assert result["type"] == "tool_result" and result["tool_use_id"] == call_id
    assert texts(result["content"]) == [TOOL_RESULT_TEXT]


@pytest.mark.parametrize("choice, expected", [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
], ids=["auto", "required", "named"])
def test_chat_tool_choice_translated(oai, fake, choice, expected):
    answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=HELLO, tools=[OPENAI_TOOL], tool_choice=choice)
    body = only(fake.requests(MESSAGES))["body"]
    assert body.get("tool_choice", {"type": "auto"}) == expected
    assert answer.choices[0].finish_reason == ("stop" if choice == "auto" else "tool_calls")


def test_chat_system_message_becomes_system(oai, fake):
    answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=[{"role": "system", "content": "You are terse."},
                                                                     *HELLO])
    assert answer.choices[0].message.content == "echo: hello there"
    body = only(fake.requests(MESSAGES))["body"]
    assert " ".join(texts(body["system"])) == "You are terse."
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert answer.usage.prompt_tokens == fake.requests(MESSAGES)[0]["usage"]["input_tokens"] == 5


def test_chat_stop_becomes_stop_sequences(oai, fake):
    answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=HELLO, stop=["there"])
    assert only(fake.requests(MESSAGES))["body"].get("stop_sequences") == ["there"]
    assert answer.choices[0].message.content == "echo: hello "
    assert answer.choices[0].finish_reason == "stop"  # stop_sequence -> stop


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_chat_max_tokens_becomes_length(oai, fake, param):
    answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=HELLO, **{param: 2})
    assert only(fake.requests(MESSAGES))["body"]["max_tokens"] == 2
    assert answer.choices[0].message.content == "echo: hello"
    assert answer.choices[0].finish_reason == "length"  # max_tokens -> length


def test_chat_multi_part_content_with_image(oai, fake):
    answer = oai.chat.completions.create(model=VIA_CLAUDE, messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello, what can I do?"},
        {"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}},
            {"type": "text", "text": "this"}]}])
    assert answer.choices[0].message.content == "echo: describe this"
    messages = only(fake.requests(MESSAGES))["body"]["messages"]
    assert [(m["role"], texts(m["content"])) for m in messages] == [
        ("user", ["hi"]), ("assistant", ["hello, what can I do?"]), ("user", ["describe", "this"])]
    parts = messages[2]["content"]
    assert [p["type"] for p in parts] == ["text", "image", "text"]
    assert parts[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG}


# --- same dialect: the body goes through as sent ----------------------------------------------

def test_anthropic_to_anthropic_passes_the_body_through(gw, fake):
    sent: list[bytes] = []
    hooks = {"request": [lambda request: sent.append(request.read())]}
    # DefaultHttpxClient: the SDK's own HTTP client class (httpx, or httpx2 in SDK 2.x).
    with anthropic.DefaultHttpxClient(event_hooks=hooks, trust_env=False, timeout=TIMEOUT_S) as http, \
            anthropic.Anthropic(base_url=gw.url, api_key=SLUICE_TEST_KEY, max_retries=0, http_client=http) as c:
        raw_resp = c.messages.with_raw_response.create(
            model=VIA_CLAUDE, max_tokens=300, metadata={"user_id": "user-42"},
            system=[{"type": "text", "text": "You are terse."}], stop_sequences=["zzz"],
            tools=[ANTHROPIC_TOOL], tool_choice={"type": "auto"},
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": [{"type": "text", "text": "and the weather in Paris?"}]}],
            extra_body={"service_tier": "auto", "temperature": 0.5, "top_k": 5})  # not SDK arguments in 2.x
    msg = raw_resp.parse()
    assert raw_resp.headers.get("x-sluice-provider") == "claude"
    assert msg.stop_reason == "tool_use" and msg.content[0].input == {"location": "Paris"}
    assert msg.model == UP_CLAUDE

    up = only(fake.requests(MESSAGES))
    assert_anthropic_upstream_auth(up)
    client_body = json.loads(sent[-1])
    assert client_body["model"] == VIA_CLAUDE and up["body"]["model"] == UP_CLAUDE
    assert {k: v for k, v in up["body"].items() if k != "model"} == \
        {k: v for k, v in client_body.items() if k != "model"}
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (up["usage"]["input_tokens"],
                                                                 up["usage"]["output_tokens"])


@pytest.mark.both_transports
def test_anthropic_to_anthropic_stream(claude, fake):
    with claude.messages.stream(model=VIA_CLAUDE, max_tokens=50, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there" and final.stop_reason == "end_turn"
    up = only(fake.requests(MESSAGES))
    assert_anthropic_upstream_auth(up)
    assert up["body"]["stream"] is True and up["completed"]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (up["usage"]["input_tokens"],
                                                                     up["usage"]["output_tokens"])


def test_x_api_key_auth_on_messages(raw, fake):
    """Anthropic clients before SDK 2.x send their key as x-api-key (2.x sends a bearer token)."""
    resp = raw.post(MESSAGES, headers=ANTHROPIC_HEADERS, json={"model": VIA_OPENAI, "max_tokens": 20,
                                                               "messages": HELLO})
    assert resp.status_code == 200, resp.text
    assert resp.json()["content"] == [{"type": "text", "text": "echo: hello there"}]
    assert_openai_upstream_auth(only(fake.requests(CHAT)))


# --- errors, Anthropic-shaped ------------------------------------------------------------------

def anthropic_error(exc: anthropic.APIStatusError) -> dict:
    body = exc.response.json()
    assert body.get("type") == "error" and isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("type"), str) and isinstance(body["error"].get("message"), str), body
    return body["error"]


def test_wrong_key_is_anthropic_401(gw, fake):
    with anthropic.Anthropic(base_url=gw.url, api_key="not-a-key", max_retries=0, timeout=TIMEOUT_S) as c, \
            pytest.raises(anthropic.AuthenticationError) as err:
        c.messages.create(model=VIA_OPENAI, max_tokens=10, messages=HELLO)
    assert err.value.status_code == 401
    assert anthropic_error(err.value)["type"] == "authentication_error"
    assert fake.requests() == []


def test_unknown_model_is_anthropic_404(claude, fake):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="no-such-model", max_tokens=10, messages=HELLO)
    error = anthropic_error(err.value)
    assert err.value.status_code == 404 and error["type"] == "not_found_error"
    assert "no-such-model" in error["message"]
    assert fake.requests() == []


@pytest.mark.both_transports
@pytest.mark.parametrize("upstream, status, kind", [(500, 502, "api_error"), (429, 429, "rate_limit_error")])
def test_upstream_failure_is_anthropic_shaped(claude, fake, upstream, status, kind):
    fake.enqueue(status=upstream, path=CHAT, headers={"retry-after": "7"} if upstream == 429 else None)
    with pytest.raises(anthropic.APIStatusError) as err:
        claude.messages.create(model=VIA_OPENAI, max_tokens=10, messages=HELLO)
    error = anthropic_error(err.value)
    assert err.value.status_code == status and error["type"] == kind, error
    if upstream == 429:
        assert err.value.response.headers.get("retry-after") == "7"
    else:
        assert VIA_OPENAI in error["message"], f"the error does not name the public model: {error}"


@pytest.mark.parametrize("model, path, drop_after", [(VIA_OPENAI, CHAT, 3), (VIA_CLAUDE, MESSAGES, 4)],
                         ids=["openai-upstream", "anthropic-upstream"])
def test_upstream_drop_mid_stream_is_an_error_event(claude, raw, fake, model, path, drop_after):
    fake.enqueue(drop_after_chunks=drop_after, path=path)
    start = time.monotonic()
    with pytest.raises(anthropic.APIStatusError):  # raised by the SDK on `event: error`
        with claude.messages.stream(model=model, max_tokens=50, messages=HELLO) as stream:
            "".join(stream.text_stream)
    assert time.monotonic() - start < 10
    assert only(fake.requests(path))["dropped"]

    fake.reset()
    fake.enqueue(drop_after_chunks=drop_after, path=path)
    resp, text, error = stream_raw(raw, MESSAGES, {"model": model, "max_tokens": 50, "stream": True,
                                                   "messages": HELLO}, ANTHROPIC_HEADERS)
    assert resp.status_code == 200
    events = anthropic_events(text)
    assert events[0]["type"] == "message_start"
    assert events[-1]["type"] == "error", f"stream ended without an error event: {[e['type'] for e in events]}"
    assert isinstance(events[-1]["error"].get("type"), str) and events[-1]["error"].get("message")
    assert "message_stop" not in [e["type"] for e in events]
