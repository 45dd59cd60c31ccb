"""The ``gemini`` provider (Google AI Studio's Gemini API) through the real binary, against the
fake provider's Gemini endpoints (fakeprovider/google_routes.py, gemini_shapes.py).

The official ``openai`` SDK (strict response validation) and the ``anthropic`` SDK talk to the
gateway; the gateway translates chat completions to ``generateContent`` and back, whole and
streamed, tools and embeddings included, and the Kernel brings Messages requests to chat
completions first. The fake answers and refuses as Gemini does (``x-goog-api-key``, schema keys
it does not know, a wrong key as 400 ``API_KEY_INVALID``, 429 with ``RetryInfo``).

One gateway serves the module; the fake is reset before every test.
"""

from __future__ import annotations

import base64
import json
import struct
import time

import anthropic
import httpx
import openai
import pytest

from fakeprovider import gemini_shapes, openai_shapes
from harness.constants import SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.sluice import Sluice, SluiceError, sluice_env

GEMINI_KEY = "gem-prov-secret-789"
GEM, GEM_EMBED, GEM_BAD_KEY, GEM_THINKING = "gem", "gem-embed", "gem-bad-key", "gem-thinking"
UP_GEM, UP_EMBED, UP_THINKING = "gemini-fake-flash", "text-embedding-fake", "gemini-fake-thinking-cached"
GENERATE = f"/v1beta/models/{UP_GEM}:generateContent"
STREAM = f"/v1beta/models/{UP_GEM}:streamGenerateContent"
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"],
                  "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                                "parameters": WEATHER_SCHEMA, "strict": True}}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_SCHEMA}
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
TIMEOUT_S = 15


@pytest.fixture(scope="module")
def gw(sluice_bin, fake_provider, tmp_path_factory) -> Sluice:
    manifest = default_manifest(free_port(), fake_provider.base_url)
    manifest["server"]["health_probe_interval_s"] = 0.2
    manifest["pipeline"].insert(0, {"plugin": "access-log", "config": {}})
    manifest["providers"]["google"] = {"plugin": "gemini", "config": {
        "base_url": fake_provider.url, "api_key": {"env": "FAKE_GEMINI_KEY"}}}
    manifest["providers"]["google-bad"] = {"plugin": "gemini", "config": {
        "base_url": fake_provider.url, "api_key": "an-invalid-key"}}
    manifest["models"][GEM] = {"targets": [{"provider": "google", "model": UP_GEM}]}
    manifest["models"][GEM_EMBED] = {"targets": [{"provider": "google", "model": UP_EMBED}]}
    manifest["models"][GEM_THINKING] = {"targets": [{"provider": "google", "model": UP_THINKING}]}
    manifest["models"][GEM_BAD_KEY] = {"targets": [{"provider": "google-bad", "model": UP_GEM}]}
    try:
        gateway = Sluice(sluice_bin, manifest, tmp_path_factory.mktemp("gemini"), name="gemini",
                         env=sluice_env({"FAKE_GEMINI_KEY": GEMINI_KEY})).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield gateway
    gateway.stop()
    assert GEMINI_KEY not in gateway.stdout_text() + gateway.stderr_text(), "the Gemini key was logged"


@pytest.fixture
def oai(gw) -> openai.OpenAI:
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S,
                       _strict_response_validation=True) as client:
        yield client


@pytest.fixture
def claude(gw) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=gw.url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S,
                             _strict_response_validation=True) as client:
        yield client


def only(records: list[dict]) -> dict:
    assert len(records) == 1, [r["path"] for r in records]
    return records[0]


def access_line(gw: Sluice, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in gw.log_lines() if line.get("msg") == "request" and line.get("request_id") == request_id]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, lines
            return lines[0]
        time.sleep(0.05)


def assert_gemini_auth(record: dict) -> None:
    assert record["headers"].get("x-goog-api-key") == GEMINI_KEY
    assert "authorization" not in record["headers"]
    assert SLUICE_TEST_KEY not in json.dumps(record)


# --- chat completions ---------------------------------------------------------------------------

def test_whole_chat_answer(oai, gw, fake):
    raw = oai.chat.completions.with_raw_response.create(
        model=GEM, messages=[{"role": "system", "content": "be brief"}, *HELLO], temperature=0.2, max_tokens=50,
        extra_headers={"x-request-id": "gem-whole-1"})
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion" and completion.model == UP_GEM
    assert raw.headers["x-sluice-provider"] == "google"

    up = only(fake.requests(GENERATE))
    assert_gemini_auth(up)
    assert up["body"]["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert up["body"]["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
    assert up["body"]["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 50}
    usage = up["usage"]
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (usage["promptTokenCount"],
                                                                                    usage["candidatesTokenCount"]) == (4, 3)
    line = access_line(gw, "gem-whole-1")
    assert (line["provider"], line["upstream_model"], line["input_tokens"], line["output_tokens"]) == ("google", UP_GEM, 4, 3)


def test_streamed_chat_answer(oai, gw, fake):
    stream = oai.chat.completions.create(model=GEM, messages=HELLO, stream=True, stream_options={"include_usage": True},
                                         extra_headers={"x-request-id": "gem-stream-1"})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5
    up = only(fake.requests(STREAM))
    assert up["query"] == {"alt": "sse"} and up["completed"]
    assert_gemini_auth(up)
    line = access_line(gw, "gem-stream-1")
    assert (line["input_tokens"], line["output_tokens"], line["stream"]) == (2, 3, True)


def test_stream_without_include_usage_hides_it_but_logs_it(oai, gw, fake):
    chunks = list(oai.chat.completions.create(model=GEM, messages=HELLO, stream=True,
                                              extra_headers={"x-request-id": "gem-stream-2"}))
    assert all(c.usage is None for c in chunks)
    assert access_line(gw, "gem-stream-2")["output_tokens"] == 3


def test_tool_call_round_trip(oai, fake):
    first = oai.chat.completions.create(model=GEM, messages=WEATHER, tools=[OPENAI_TOOL])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    [call] = message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    declared = fake.requests(GENERATE)[0]["body"]["tools"][0]["functionDeclarations"][0]
    assert declared["parameters"] == {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}

    second = oai.chat.completions.create(model=GEM, tools=[OPENAI_TOOL], messages=[
        *WEATHER, message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}])
    assert second.choices[0].message.content == "echo: 18 degrees and sunny"
    contents = fake.requests(GENERATE)[1]["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"location": "Paris"}}
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"content": "18 degrees and sunny"}}}]


def test_streamed_tool_call(oai, fake):
    chunks = list(oai.chat.completions.create(model=GEM, messages=WEATHER, tools=[OPENAI_TOOL], stream=True,
                                              tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].id.startswith("call_") and calls[0].index == 0
    assert json.loads(calls[0].function.arguments) == {"location": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    config = only(fake.requests(STREAM))["body"]["toolConfig"]
    assert config == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


def test_images_json_mode_and_stop(oai, fake):
    completion = oai.chat.completions.create(model=GEM, response_format={"type": "json_object"}, stop=["never"], messages=[
        {"role": "user", "content": [{"type": "text", "text": "describe"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}}]}])
    assert json.loads(completion.choices[0].message.content) == {"echo": "describe"}
    body = only(fake.requests(GENERATE))["body"]
    assert body["contents"][0]["parts"][1:] == [{"inlineData": {"mimeType": "image/png", "data": PIXEL_PNG}},
                                                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}}]
    assert body["generationConfig"] == {"stopSequences": ["never"], "responseMimeType": "application/json"}

    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model=GEM, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/picture"}}]}])
    assert err.value.body["param"] == "messages[0].content[0].image_url.url"


def test_thinking_and_cached_tokens_are_counted(oai):
    completion = oai.chat.completions.create(model=GEM_THINKING, messages=HELLO)
    assert completion.choices[0].message.content == "echo: hello there"  # the thought is not the answer
    assert completion.usage.completion_tokens == 3 + 5
    assert completion.usage.completion_tokens_details.reasoning_tokens == 5
    assert completion.usage.prompt_tokens_details.cached_tokens == 2


def test_a_blocked_prompt_is_a_content_filter_answer(oai):
    completion = oai.chat.completions.create(model=GEM, messages=[{"role": "user", "content": "this is blocked"}])
    assert completion.choices[0].finish_reason == "content_filter" and completion.choices[0].message.content == ""
    chunks = list(oai.chat.completions.create(model=GEM, messages=[{"role": "user", "content": "blocked"}], stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["content_filter"]


# --- the anthropic SDK --------------------------------------------------------------------------

def test_messages_whole_and_streamed(claude, fake):
    message = claude.messages.create(model=GEM, max_tokens=50, system="be brief", messages=HELLO)
    assert [(b.type, b.text) for b in message.content] == [("text", "echo: hello there")]
    assert message.stop_reason == "end_turn" and (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    body = only(fake.requests(GENERATE))["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["generationConfig"]["maxOutputTokens"] == 50

    with claude.messages.stream(model=GEM, max_tokens=50, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there" and final.usage.output_tokens == 3


def test_messages_tool_round_trip(claude, fake):
    first = claude.messages.create(model=GEM, max_tokens=50, messages=WEATHER, tools=[ANTHROPIC_TOOL])
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"location": "Paris"}
    second = claude.messages.create(model=GEM, max_tokens=50, tools=[ANTHROPIC_TOOL], messages=[
        *WEATHER, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 degrees and sunny"}]}])
    assert second.content[0].text == "echo: 18 degrees and sunny"


# --- embeddings ---------------------------------------------------------------------------------

def test_embeddings_float_and_base64(oai, gw, fake):
    floats = oai.embeddings.create(model=GEM_EMBED, input=["alpha", "beta gamma"], dimensions=4, encoding_format="float")
    # Floats go through the gateway's JSON encoder (15 significant digits); base64 is exact.
    assert [d.embedding for d in floats.data] == [pytest.approx(openai_shapes.embedding_for("alpha", 4), rel=1e-12),
                                                  pytest.approx(openai_shapes.embedding_for("beta gamma", 4), rel=1e-12)]
    up = only(fake.requests(f"/v1beta/models/{UP_EMBED}:batchEmbedContents"))
    assert_gemini_auth(up)
    assert up["body"]["requests"][1] == {"model": f"models/{UP_EMBED}", "content": {"parts": [{"text": "beta gamma"}]},
                                         "outputDimensionality": 4}
    # base64 (what the SDK asks for by default; its strict validation cannot check it, so raw HTTP): exact float32.
    answer = httpx.post(f"{gw.base_url}/embeddings", headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"}, timeout=TIMEOUT_S,
                        json={"model": GEM_EMBED, "input": "alpha", "encoding_format": "base64"}).json()
    raw = base64.b64decode(answer["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == openai_shapes.embedding_for("alpha", openai_shapes.DEFAULT_EMBEDDING_DIMENSIONS)
    assert answer["object"] == "list" and answer["model"] == UP_EMBED


# --- errors -------------------------------------------------------------------------------------

def test_rate_limit_keeps_googles_retry_delay(oai, fake):
    fake.enqueue(status=429, body=gemini_shapes.rate_limited(30), model=UP_GEM)
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model=GEM, messages=HELLO)
    assert err.value.response.headers["retry-after"] == "30"


def test_bad_request_passes_googles_message(oai, fake):
    fake.enqueue(status=400, body=gemini_shapes.error_body(400, "Request contains an invalid argument."), model=UP_GEM)
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model=GEM, messages=HELLO)
    assert err.value.body["message"] == "Request contains an invalid argument."


def test_a_wrong_key_is_the_gateways_problem(oai, claude):
    with pytest.raises(openai.APIStatusError) as err:
        oai.chat.completions.create(model=GEM_BAD_KEY, messages=HELLO)
    assert err.value.status_code == 502 and err.value.body["code"] == "upstream_auth_failed"
    assert "invalid-key" not in json.dumps(err.value.body)
    with pytest.raises(anthropic.APIStatusError) as aerr:
        claude.messages.create(model=GEM_BAD_KEY, max_tokens=10, messages=HELLO)
    assert aerr.value.status_code == 502


def test_ready_verbose_shows_the_probe(gw, fake):
    deadline = time.monotonic() + 5
    while True:
        providers = httpx.get(f"{gw.url}/ready?verbose=1", timeout=5).json()["providers"]
        probes = [r for r in fake.requests(include_probes=True) if r["path"] == "/v1beta/models"]
        if providers["google"]["status"] != "unknown" and providers["google-bad"]["status"] != "unknown" and probes:
            break
        assert time.monotonic() < deadline, providers
        time.sleep(0.1)
    assert providers["google"]["status"] == "up" and providers["google"]["detail"] == "HTTP 200"
    assert providers["google-bad"]["detail"] == "HTTP 400"
    assert probes[-1]["query"] == {"pageSize": "1"} and probes[-1]["headers"]["x-goog-api-key"] in (GEMINI_KEY, "an-invalid-key")


def test_responses_front_door(oai, fake):
    """A Responses client reaches Gemini through the Kernel's translation (Responses → chat → Gemini)."""
    whole = oai.responses.create(model=GEM, input="hello there", instructions="be brief")
    assert whole.output_text == "echo: hello there" and whole.usage.total_tokens > 0
    assert only(fake.requests(GENERATE))["body"]["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    with oai.responses.stream(model=GEM, input="hello there") as stream:
        assert "".join(e.delta for e in stream if e.type == "response.output_text.delta") == "echo: hello there"
        assert stream.get_final_response().status == "completed"
