"""The ``bedrock`` provider (Amazon Bedrock Runtime) through the real binary, against the fake's
Bedrock endpoints (fakeprovider/bedrock.py), which check every request's SigV4 signature with
botocore's own signer and answer Converse, ConverseStream (binary event stream frames) and
InvokeModel (Titan and Cohere embeddings).

- The official ``openai`` SDK (strict response validation) and ``anthropic`` SDK: whole, streamed,
  and tool-call round trips; embeddings in OpenAI's shape (float and base64).
- The keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (temporary
  credentials: the session token is signed), or from the config's secret references.
- Failures: a stream with a broken checksum, an exception mid-stream, throttling (429 with
  retry-after), refused credentials (502), a refused request (400 with Bedrock's words), and a
  fallback from a failing Bedrock target to an OpenAI-compatible one, streamed.

One gateway serves the module; the fake is reset before every test.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
from unittest import mock

import anthropic
import httpx
import openai
import pytest

from fakeprovider import bedrock, embedding_for
from harness.constants import SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.sluice import Sluice, SluiceError, sluice_env
from harness.sse import parse_sse

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
CLAUDE_PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
CLAUDE_STREAM_PATH = CLAUDE_PATH + "-stream"
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
PRIMARY = "anthropic.claude-primary-v1:0"
PRIMARY_STREAM_PATH = "/model/anthropic.claude-primary-v1%3A0/converse-stream"
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                                "parameters": WEATHER_SCHEMA}}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_SCHEMA}
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
TIMEOUT_S = 15

MODELS = {
    "claude-bedrock": ("bedrock", CLAUDE),
    "claude-arn": ("bedrock", ARN),
    "claude-keys": ("bedrock-keys", CLAUDE),
    "claude-wrong-keys": ("bedrock-wrong", CLAUDE),
    "titan": ("bedrock", TITAN),
    "cohere": ("bedrock", COHERE),
    "bad-crc": ("bedrock", "fake.bad-crc"),
    "bad-prelude": ("bedrock", "fake.bad-prelude"),
    "stream-throttled": ("bedrock", "fake.stream-throttled"),
    "stream-error": ("bedrock", "fake.stream-error"),
    "backup": ("fake", "up-backup"),
}


@pytest.fixture(scope="module")
def gw(sluice_bin, fake_provider, tmp_path_factory) -> Sluice:
    manifest = default_manifest(free_port(), fake_provider.base_url)
    manifest["server"]["health_probe_interval_s"] = 0.5
    manifest["providers"]["bedrock"] = {"plugin": "bedrock", "config": {"region": "us-east-1", "base_url": fake_provider.url}}
    manifest["providers"]["bedrock-keys"] = {"plugin": "bedrock", "config": {
        "region": "us-east-1", "base_url": fake_provider.url,
        "access_key_id": {"env": "BEDROCK_KEY_ID"}, "secret_access_key": {"env": "BEDROCK_SECRET"}}}
    manifest["providers"]["bedrock-wrong"] = {"plugin": "bedrock", "config": {
        "region": "us-east-1", "base_url": fake_provider.url,
        "access_key_id": "AKIAUNKNOWNKEY000000", "secret_access_key": {"env": "BEDROCK_SECRET"}}}
    for public, (provider, upstream) in MODELS.items():
        manifest["models"][public] = {"targets": [{"provider": provider, "model": upstream}]}
    manifest["models"]["with-fallback"] = {"targets": [{"provider": "bedrock", "model": PRIMARY}], "fallbacks": ["backup"]}
    manifest["pipeline"].insert(0, {"plugin": "access-log"})
    env = sluice_env({
        # The environment's temporary credentials: a session key whose token must be signed.
        "AWS_ACCESS_KEY_ID": bedrock.SESSION_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": bedrock.SESSION_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": bedrock.SESSION_TOKEN,
        "BEDROCK_KEY_ID": bedrock.ACCESS_KEY_ID, "BEDROCK_SECRET": bedrock.SECRET_ACCESS_KEY,
    })
    try:
        gateway = Sluice(sluice_bin, manifest, tmp_path_factory.mktemp("bedrock"), name="bedrock", env=env).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield gateway
    gateway.stop()
    log = gateway.stdout_text() + gateway.stderr_text()
    for secret in (bedrock.SESSION_SECRET_ACCESS_KEY, bedrock.SECRET_ACCESS_KEY, bedrock.SESSION_TOKEN):
        assert secret not in log, "an AWS secret reached the gateway's log"


@pytest.fixture
def oai(gw) -> openai.OpenAI:
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S,
                       _strict_response_validation=True) as client:
        yield client


@pytest.fixture
def claude(gw) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=gw.url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S) as client:
        yield client


@pytest.fixture
def http(gw) -> httpx.Client:
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False,
                      headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"}) as client:
        yield client


def float32(vector: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))


def bedrock_calls(fake, path: str | None = None) -> list[dict]:
    calls = [r for r in fake.requests() if r["path"].startswith("/model/")]
    return [r for r in calls if path is None or r["path"] == path]


def only_call(fake, path: str) -> dict:
    calls = bedrock_calls(fake, path)
    assert len(calls) == 1, [c["path"] for c in bedrock_calls(fake)]
    return calls[0]


def assert_signed(record: dict, session: bool = True) -> None:
    assert record["sigv4"] == "valid", record["sigv4"]
    headers = record["headers"]
    assert len(headers["x-amz-content-sha256"]) == 64  # the fake checked it against the body
    assert ("x-amz-security-token" in headers) == session
    assert SLUICE_TEST_KEY not in json.dumps(headers)


# --- chat through the OpenAI SDK ------------------------------------------------------------

def test_chat_whole(oai, fake):
    answer = oai.chat.completions.create(model="claude-bedrock", messages=[{"role": "system", "content": "be brief"}, *HELLO],
                                         max_tokens=50, temperature=0.2, stop=["zzz"])
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == CLAUDE
    assert answer.usage.prompt_tokens == 4 and answer.usage.completion_tokens == 3  # "be brief" + "hello there"
    call = only_call(fake, CLAUDE_PATH)
    assert_signed(call)
    assert call["body"]["system"] == [{"text": "be brief"}]
    assert call["body"]["messages"] == [{"role": "user", "content": [{"text": "hello there"}]}]
    assert call["body"]["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["zzz"]}


def test_chat_streamed(oai, fake):
    stream = oai.chat.completions.create(model="claude-bedrock", messages=HELLO, stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5
    call = only_call(fake, CLAUDE_STREAM_PATH)
    assert_signed(call)
    assert call["headers"]["accept"] == "application/vnd.amazon.eventstream"
    assert call["completed"]


def test_stop_reasons_and_limits(oai, fake):
    cut = oai.chat.completions.create(model="claude-bedrock", messages=[{"role": "user", "content": "one two three four"}],
                                      max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.content == "echo: one"


def test_an_arn_model_id_is_one_signed_segment(oai, fake):
    answer = oai.chat.completions.create(model="claude-arn", messages=HELLO)
    assert answer.choices[0].message.content == "echo: hello there"
    [call] = bedrock_calls(fake)
    assert call["path"] == "/model/" + ARN.replace(":", "%3A").replace("/", "%2F") + "/converse"
    assert call["bedrock_model"] == ARN
    assert_signed(call)


def test_configured_keys_without_a_session(oai, fake):
    assert oai.chat.completions.create(model="claude-keys", messages=HELLO).choices[0].message.content == "echo: hello there"
    assert_signed(only_call(fake, CLAUDE_PATH), session=False)


def test_images_go_as_bytes(oai, fake):
    content = [{"type": "text", "text": "what is this"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}}]
    answer = oai.chat.completions.create(model="claude-bedrock", messages=[{"role": "user", "content": content}])
    assert answer.choices[0].message.content == "echo: what is this"
    blocks = only_call(fake, CLAUDE_PATH)["body"]["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png", "source": {"bytes": PIXEL_PNG}}}


def test_tool_round_trip(oai, fake):
    first = oai.chat.completions.create(model="claude-bedrock", messages=WEATHER, tools=[OPENAI_TOOL])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"location": "Paris"}
    assert call.id.startswith("tooluse_")
    sent = only_call(fake, CLAUDE_PATH)["body"]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == WEATHER_SCHEMA

    fake.reset()
    history = [*WEATHER, message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
    second = oai.chat.completions.create(model="claude-bedrock", messages=history, tools=[OPENAI_TOOL])
    assert second.choices[0].message.content == "echo: 18 degrees and sunny"
    sent = only_call(fake, CLAUDE_PATH)["body"]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][0]["toolUse"]["toolUseId"] == call.id
    assert sent["messages"][2]["content"][0]["toolResult"] == {"toolUseId": call.id, "content": [{"text": "18 degrees and sunny"}]}


def test_tool_call_streamed(oai, fake):
    stream = oai.chat.completions.create(model="claude-bedrock", messages=WEATHER, tools=[OPENAI_TOOL],
                                         tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True)
    chunks = [c for c in stream if c.choices]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id.startswith("tooluse_") and calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"location": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert only_call(fake, CLAUDE_STREAM_PATH)["body"]["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}


# --- chat through the Anthropic SDK (the Kernel translates Messages to chat) -----------------

def test_anthropic_whole_and_streamed(claude, fake):
    message = claude.messages.create(model="claude-bedrock", max_tokens=100, system="be brief", messages=HELLO)
    assert message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 4 and message.usage.output_tokens == 3
    assert only_call(fake, CLAUDE_PATH)["body"]["inferenceConfig"]["maxTokens"] == 100

    with claude.messages.stream(model="claude-bedrock", max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there"
    assert final.usage.output_tokens == 3 and final.stop_reason == "end_turn"
    assert_signed(only_call(fake, CLAUDE_STREAM_PATH))


def test_anthropic_tool_round_trip(claude, fake):
    first = claude.messages.create(model="claude-bedrock", max_tokens=100, messages=WEATHER, tools=[ANTHROPIC_TOOL])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"location": "Paris"}
    history = [*WEATHER, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 degrees and sunny"}]}]
    with claude.messages.stream(model="claude-bedrock", max_tokens=100, messages=history, tools=[ANTHROPIC_TOOL]) as stream:
        text = "".join(stream.text_stream)
    assert text == "echo: 18 degrees and sunny"


# --- embeddings ----------------------------------------------------------------------------------

def test_titan_embeddings(oai, fake):
    texts = ["first text", "second", "a third one here"]
    answer = oai.embeddings.create(model="titan", input=texts, dimensions=256, encoding_format="float")
    # Bedrock's vectors are float32; the gateway keeps every float32 digit (not every float64 one).
    assert [float32(d.embedding) for d in answer.data] == [embedding_for(t, 256) for t in texts]
    assert [d.index for d in answer.data] == [0, 1, 2]
    assert answer.usage.prompt_tokens == 2 + 1 + 4
    calls = bedrock_calls(fake, "/model/amazon.titan-embed-text-v2%3A0/invoke")
    assert sorted(c["body"]["inputText"] for c in calls) == sorted(texts)
    assert all(c["body"]["dimensions"] == 256 and c["sigv4"] == "valid" for c in calls)


def test_cohere_embeddings_base64(http, fake):
    response = http.post("/v1/embeddings", json={"model": "cohere", "input": ["alpha", "beta"], "encoding_format": "base64"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    for item, text in zip(data, ["alpha", "beta"]):
        raw = base64.b64decode(item["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == embedding_for(text, bedrock.COHERE_DIMENSIONS)
    call = only_call(fake, "/model/cohere.embed-english-v3/invoke")
    assert call["body"] == {"texts": ["alpha", "beta"], "input_type": "search_document"}


def test_embeddings_refusals(http):
    assert http.post("/v1/embeddings", json={"model": "cohere", "input": "x", "dimensions": 8}).json()["error"]["param"] == "dimensions"
    assert http.post("/v1/embeddings", json={"model": "claude-bedrock", "input": "x"}).json()["error"]["param"] == "model"


# --- usage --------------------------------------------------------------------------------------

def test_usage_in_the_access_log(gw, oai):
    raw = oai.chat.completions.with_raw_response.create(model="claude-bedrock", messages=HELLO)
    streamed = oai.chat.completions.with_raw_response.create(model="claude-bedrock", messages=HELLO, stream=True)
    list(streamed.parse())
    for request_id, stream in ((raw.headers["x-request-id"], False), (streamed.headers["x-request-id"], True)):
        assert gw.wait_for_log(request_id)
        [line] = [l for l in gw.log_lines() if l.get("logger") == "sluice.access" and l.get("request_id") == request_id]
        assert (line["input_tokens"], line["output_tokens"]) == (2, 3), line
        assert line["provider"] == "bedrock"


# --- failures -----------------------------------------------------------------------------------

def stream_events(http: httpx.Client, model: str) -> list:
    response = http.post("/v1/chat/completions", json={"model": model, "messages": HELLO, "stream": True})
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


@pytest.mark.parametrize("model", ["bad-crc", "bad-prelude"])
def test_a_broken_checksum_ends_the_stream_with_an_error(http, oai, fake, model):
    events = stream_events(http, model)
    assert events[-1].json()["error"]["code"] == "upstream_invalid", events[-1].data
    assert "checksum" in events[-1].json()["error"]["message"]
    assert not any(e.data == "[DONE]" for e in events)
    with pytest.raises(openai.APIError):
        list(oai.chat.completions.create(model=model, messages=HELLO, stream=True))


def test_an_exception_mid_stream_ends_it_with_an_error(http, claude):
    events = stream_events(http, "stream-throttled")
    assert events[-1].json()["error"]["code"] == "upstream_rate_limited"
    assert "echo:" in "".join(e.json()["choices"][0]["delta"].get("content", "") for e in events[:-1] if e.json().get("choices"))
    assert stream_events(http, "stream-error")[-1].json()["error"]["type"] == "upstream_error"
    with pytest.raises(anthropic.APIError):
        with claude.messages.stream(model="stream-error", max_tokens=10, messages=HELLO) as stream:
            list(stream.text_stream)


def test_throttling_is_429_with_retry_after(oai, fake):
    fake.enqueue(**bedrock.error_fault(429, "ThrottlingException", "Too many requests, please wait before trying again.",
                                       path=CLAUDE_PATH, retry_after="3"))
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model="claude-bedrock", messages=HELLO)
    assert err.value.response.headers["retry-after"] == "3"
    assert err.value.response.json()["error"]["message"].endswith("Too many requests, please wait before trying again.")


def test_refused_credentials_are_the_gateways_problem(oai, fake):
    with pytest.raises(openai.APIStatusError) as err:
        oai.chat.completions.create(model="claude-wrong-keys", messages=HELLO)
    assert err.value.status_code == 502
    assert err.value.response.json()["error"]["code"] == "upstream_auth_failed"
    assert only_call(fake, CLAUDE_PATH)["sigv4"] == "unknown access key"


def test_a_refused_request_carries_bedrocks_words(oai, fake):
    # Converse wants the conversation to open with the user: the fake refuses as Bedrock does.
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="claude-bedrock", messages=[{"role": "assistant", "content": "hi"}])
    assert err.value.response.json()["error"]["message"].startswith("A conversation must start with a user message")
    assert err.value.response.json()["error"]["code"] == "ValidationException"


def test_refusals_before_sending(oai, fake):
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="claude-bedrock", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert err.value.response.json()["error"]["param"] == "messages[0].content[0].image_url.url"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="claude-bedrock", messages=HELLO, response_format={"type": "json_object"})
    assert err.value.response.json()["error"]["param"] == "response_format"
    assert bedrock_calls(fake) == []


def test_a_failing_bedrock_target_falls_back_streamed(oai, fake):
    fake.enqueue(**bedrock.error_fault(503, "ServiceUnavailableException", "Bedrock is unavailable.", path=PRIMARY_STREAM_PATH))
    raw = oai.chat.completions.with_raw_response.create(model="with-fallback", messages=HELLO, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "echo: hello there"
    assert raw.headers["x-sluice-provider"] == "fake"
    assert [r["status"] for r in bedrock_calls(fake, PRIMARY_STREAM_PATH)] == [503]
    assert [r["body"]["model"] for r in fake.requests("/v1/chat/completions")] == ["up-backup"]


# --- the signature itself ------------------------------------------------------------------------

def test_the_swift_vector_is_botocores():
    """SigV4Tests.bedrockConverseMatchesBotocore's expected value, computed by botocore."""
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    request = AWSRequest(method="POST", url=f"https://bedrock-runtime.us-east-1.amazonaws.com{CLAUDE_PATH}", data=body, headers={
        "host": "bedrock-runtime.us-east-1.amazonaws.com", "content-type": "application/json",
        "x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=datetime.datetime(2024, 5, 1, 10, 11, 12)):
        SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "bedrock", "us-east-1").add_auth(request)
    assert request.headers["Authorization"].endswith("Signature=7c1fb975db2b4f45b0f5d60340461ab061fc2d46db567366ccbf9d7effbec977")


def test_the_fake_refuses_a_bad_signature(fake):
    """The fake's check is not a rubber stamp: one changed byte of the body is refused."""
    body = json.dumps({"messages": HELLO}).encode()
    headers = {"host": f"127.0.0.1:{fake.port}", "content-type": "application/json"}
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    request = AWSRequest(method="POST", url=f"{fake.url}{CLAUDE_PATH}", data=body, headers=headers)
    SigV4Auth(Credentials(bedrock.ACCESS_KEY_ID, bedrock.SECRET_ACCESS_KEY), "bedrock", "us-east-1").add_auth(request)
    signed = dict(request.headers.items())
    assert httpx.post(f"{fake.url}{CLAUDE_PATH}", content=body, headers=signed).status_code == 400  # valid; HELLO is no Converse body
    tampered = httpx.post(f"{fake.url}{CLAUDE_PATH}", content=body.replace(b"hello", b"jello"), headers=signed)
    assert tampered.status_code == 403 and tampered.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


def test_the_health_probe_proves_the_credentials(gw):
    import time
    deadline = time.monotonic() + 10
    while True:
        providers = httpx.get(f"{gw.url}/ready?verbose=1", timeout=5).json()["providers"]
        if all(providers[name]["status"] != "unknown" for name in ("bedrock", "bedrock-wrong")):
            break
        assert time.monotonic() < deadline, providers
        time.sleep(0.2)
    assert providers["bedrock"]["status"] == "up" and "credentials accepted" in providers["bedrock"]["detail"]
    assert providers["bedrock-wrong"]["status"] == "down" and "403" in providers["bedrock-wrong"]["detail"]


def test_responses_front_door(oai):
    """A Responses client reaches Bedrock through the Kernel's translation (Responses → chat → Converse)."""
    client = oai
    whole = client.responses.create(model="claude-bedrock", input="hello there", instructions="be brief")
    assert whole.output_text == "echo: hello there" and whole.usage.total_tokens > 0
    with client.responses.stream(model="claude-bedrock", input="hello there") as stream:
        assert "".join(e.delta for e in stream if e.type == "response.output_text.delta") == "echo: hello there"
        assert stream.get_final_response().status == "completed"
