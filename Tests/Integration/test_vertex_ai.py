"""The ``vertex-ai`` provider through the real binary, against the fake provider's Vertex AI
endpoints and OAuth token endpoint (fakeprovider/google_routes.py, vertex.py).

- A service account key file made at test time (``vertex.new_service_account``): the gateway signs
  an RS256 JWT, the fake's token endpoint verifies it with the public key and issues a token, the
  model endpoints check it; the token is reused, not fetched per request.
- An ``access_token`` read from a file and re-read when it changes.
- Gemini models (``publishers/google``: generateContent, streamGenerateContent, predict for
  embeddings) with the same translation as ``gemini``; Claude models (``publishers/anthropic``:
  rawPredict, streamRawPredict) in Anthropic's format, reached by both SDKs.

One gateway serves the module; the fake is reset before every test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from fakeprovider import gemini_shapes, openai_shapes, vertex
from harness.constants import SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.sluice import Sluice, SluiceError, sluice_env

PROJECT, LOCATION = "fake-project", "us-central1"
VGEM, VCLAUDE, VEMBED, VTOKEN, VBROKEN = "vgem", "vclaude", "vembed", "vtoken", "vbroken"
UP_GEM, UP_CLAUDE, UP_EMBED = "gemini-fake-pro", "claude-fake-sonnet@20250514", "text-embedding-fake"
ROOT = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers"
GENERATE = f"{ROOT}/google/models/{UP_GEM}:generateContent"
STREAM = f"{ROOT}/google/models/{UP_GEM}:streamGenerateContent"
RAW, STREAM_RAW = f"{ROOT}/anthropic/models/{UP_CLAUDE}:rawPredict", f"{ROOT}/anthropic/models/{UP_CLAUDE}:streamRawPredict"
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"], "additionalProperties": False}}}
TIMEOUT_S = 15


class Files:
    """The key file and token file the gateway reads (made per module, never committed)."""

    def __init__(self, folder: Path, token_uri: str):
        self.key = folder / "vertex-sa.json"
        self.key.write_text(json.dumps(vertex.new_service_account(token_uri)))
        # A key file whose private key is not the account's: the token endpoint refuses its JWT.
        wrong = vertex.new_service_account(token_uri, email="wrong@fake-project.iam.gserviceaccount.com")
        wrong["private_key"] = vertex.new_service_account(token_uri, email="other@fake-project.iam.gserviceaccount.com")["private_key"]
        self.wrong_key = folder / "wrong-sa.json"
        self.wrong_key.write_text(json.dumps(wrong))
        self.private_keys = [json.loads(self.key.read_text())["private_key"], wrong["private_key"]]
        self.token = folder / "token"
        self.set_token("file-token-A")

    def set_token(self, token: str) -> None:
        vertex.allow_token(token)
        self.token.write_text(token + "\n")


@pytest.fixture(scope="module")
def files(fake_provider, tmp_path_factory) -> Files:
    return Files(tmp_path_factory.mktemp("vertex-files"), fake_provider.url + vertex.TOKEN_PATH)


@pytest.fixture(scope="module")
def gw(sluice_bin, fake_provider, files, tmp_path_factory) -> Sluice:
    manifest = default_manifest(free_port(), fake_provider.base_url)
    manifest["server"]["health_probe_interval_s"] = 0.2
    manifest["pipeline"].insert(0, {"plugin": "access-log", "config": {}})
    common = {"project": PROJECT, "location": LOCATION, "base_url": fake_provider.url}
    manifest["providers"]["vertex"] = {"plugin": "vertex-ai", "config": {**common, "credentials": {"file": str(files.key)}}}
    manifest["providers"]["vertex-token"] = {"plugin": "vertex-ai", "config": {**common, "access_token": {"file": str(files.token)}}}
    manifest["providers"]["vertex-broken"] = {"plugin": "vertex-ai", "config": {**common, "credentials": {"file": str(files.wrong_key)}}}
    manifest["models"][VGEM] = {"targets": [{"provider": "vertex", "model": UP_GEM}]}
    manifest["models"][VCLAUDE] = {"targets": [{"provider": "vertex", "model": UP_CLAUDE}]}
    manifest["models"][VEMBED] = {"targets": [{"provider": "vertex", "model": UP_EMBED}]}
    manifest["models"][VTOKEN] = {"targets": [{"provider": "vertex-token", "model": UP_GEM}]}
    manifest["models"][VBROKEN] = {"targets": [{"provider": "vertex-broken", "model": UP_GEM}]}
    try:
        gateway = Sluice(sluice_bin, manifest, tmp_path_factory.mktemp("vertex"), name="vertex", env=sluice_env()).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield gateway
    gateway.stop()
    logs = gateway.stdout_text() + gateway.stderr_text()
    for key in files.private_keys:
        assert key.splitlines()[1] not in logs, "a private key was logged"
    assert "ya29.fake-" not in logs and "file-token-" not in logs, "an access token was logged"


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


def bearer(record: dict) -> str:
    return record["headers"].get("authorization", "")


def access_line(gw: Sluice, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in gw.log_lines() if line.get("msg") == "request" and line.get("request_id") == request_id]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, lines
            return lines[0]
        time.sleep(0.05)


# --- Gemini models ------------------------------------------------------------------------------

def test_service_account_token_signed_exchanged_and_reused(oai, gw, fake, files):
    completion = oai.chat.completions.create(model=VGEM, messages=HELLO, extra_headers={"x-request-id": "vertex-1"})
    assert completion.choices[0].message.content == "echo: hello there"
    up = only(fake.requests(GENERATE))
    assert bearer(up).startswith("Bearer ya29.fake-") and SLUICE_TEST_KEY not in json.dumps(up)
    exchanges = [e for e in vertex.exchanges() if e["claims"]["iss"] == "sluice-test@fake-project.iam.gserviceaccount.com"]
    assert exchanges, "no token exchange reached the token endpoint"
    claims, header = exchanges[-1]["claims"], exchanges[-1]["header"]
    assert header["alg"] == "RS256" and header["kid"] == json.loads(files.key.read_text())["private_key_id"]
    assert claims["scope"] == vertex.SCOPE and claims["aud"] == fake.url + vertex.TOKEN_PATH
    assert claims["exp"] - claims["iat"] == 3600
    before = len(vertex.exchanges())
    for _ in range(3):
        oai.chat.completions.create(model=VGEM, messages=HELLO)
    assert len(vertex.exchanges()) == before, "the token was not reused"
    assert len({bearer(r) for r in fake.requests(GENERATE)}) == 1
    line = access_line(gw, "vertex-1")
    assert (line["provider"], line["input_tokens"], line["output_tokens"]) == ("vertex", 2, 3)


def test_gemini_stream_and_tools(oai, fake):
    chunks = list(oai.chat.completions.create(model=VGEM, messages=HELLO, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello there"
    assert chunks[-1].usage.completion_tokens == 3
    assert only(fake.requests(STREAM))["query"] == {"alt": "sse"}

    first = oai.chat.completions.create(model=VGEM, messages=WEATHER, tools=[OPENAI_TOOL])
    [call] = first.choices[0].message.tool_calls
    second = oai.chat.completions.create(model=VGEM, tools=[OPENAI_TOOL], messages=[
        *WEATHER, first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"}])
    assert second.choices[0].message.content == "echo: 18 degrees"


def test_embeddings_through_predict(oai, fake):
    result = oai.embeddings.create(model=VEMBED, input=["alpha", "beta gamma"], dimensions=4, encoding_format="float")
    assert [d.embedding for d in result.data] == [pytest.approx(openai_shapes.embedding_for(t, 4), rel=1e-12) for t in ("alpha", "beta gamma")]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)
    up = only(fake.requests(f"{ROOT}/google/models/{UP_EMBED}:predict"))
    assert up["body"] == {"instances": [{"content": "alpha"}, {"content": "beta gamma"}], "parameters": {"outputDimensionality": 4}}
    assert bearer(up).startswith("Bearer ya29.fake-")


def test_messages_sdk_reaches_gemini_on_vertex(claude, fake):
    message = claude.messages.create(model=VGEM, max_tokens=20, messages=HELLO)
    assert message.content[0].text == "echo: hello there"
    assert only(fake.requests(GENERATE))["body"]["generationConfig"] == {"maxOutputTokens": 20}


# --- Claude models ------------------------------------------------------------------------------

def test_claude_whole_and_streamed_with_the_anthropic_sdk(claude, fake):
    message = claude.messages.create(model=VCLAUDE, max_tokens=50, system="be brief", messages=HELLO)
    assert message.content[0].text == "echo: hello there" and message.stop_reason == "end_turn"
    up = only(fake.requests(RAW))
    assert "model" not in up["body"] and up["body"]["anthropic_version"] == "vertex-2023-10-16"
    assert up["body"]["system"] == "be brief" and bearer(up).startswith("Bearer ya29.fake-")

    with claude.messages.stream(model=VCLAUDE, max_tokens=50, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there" and final.usage.output_tokens == 3
    assert only(fake.requests(STREAM_RAW))["body"]["stream"] is True


def test_claude_with_the_openai_sdk(oai, gw, fake):
    completion = oai.chat.completions.create(model=VCLAUDE, messages=HELLO, extra_headers={"x-request-id": "vertex-claude-1"})
    assert completion.choices[0].message.content == "echo: hello there"
    assert only(fake.requests(RAW))["body"]["max_tokens"] == 4096
    chunks = list(oai.chat.completions.create(model=VCLAUDE, messages=WEATHER, tools=[OPENAI_TOOL], stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"location": "Paris"}
    line = access_line(gw, "vertex-claude-1")
    assert (line["upstream_model"], line["input_tokens"], line["output_tokens"]) == (UP_CLAUDE, 2, 3)


def test_claude_refuses_embeddings(oai):
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model=VCLAUDE, input="x")


# --- access_token -------------------------------------------------------------------------------

def test_access_token_file_is_reread(oai, fake, files):
    files.set_token("file-token-A")
    assert oai.chat.completions.create(model=VTOKEN, messages=HELLO).choices[0].message.content
    assert bearer(fake.requests(GENERATE)[-1]) == "Bearer file-token-A"
    files.set_token("file-token-B")
    deadline = time.monotonic() + 10
    while bearer(fake.requests(GENERATE)[-1]) != "Bearer file-token-B":
        assert time.monotonic() < deadline, "the rewritten token file was not re-read"
        time.sleep(0.5)
        oai.chat.completions.create(model=VTOKEN, messages=HELLO)


# --- errors -------------------------------------------------------------------------------------

def test_rate_limit_and_bad_request(oai, claude, fake):
    fake.enqueue(status=429, body=gemini_shapes.rate_limited(7), model=UP_GEM)
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model=VGEM, messages=HELLO)
    assert err.value.response.headers["retry-after"] == "7"

    fake.enqueue(status=400, body={"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}},
                 model=UP_CLAUDE)
    with pytest.raises(anthropic.BadRequestError) as aerr:
        claude.messages.create(model=VCLAUDE, max_tokens=10, messages=HELLO)
    assert "prompt is too long" in str(aerr.value)


def test_refused_credentials_are_a_502(oai, files):
    # The token file's token is not one Vertex takes: the model endpoint answers 401.
    files.token.write_text("never-issued\n")
    try:
        time.sleep(5.5)  # the provider re-reads the file at most every five seconds
        with pytest.raises(openai.APIStatusError) as err:
            oai.chat.completions.create(model=VTOKEN, messages=HELLO)
        assert err.value.status_code == 502 and err.value.body["code"] == "upstream_auth_failed"
    finally:
        files.set_token("file-token-A")

    with pytest.raises(openai.APIStatusError) as broken:
        oai.chat.completions.create(model=VBROKEN, messages=HELLO)
    assert broken.value.status_code == 502 and broken.value.body["code"] == "provider_credentials"
    assert broken.value.body["message"].endswith("could not obtain a Vertex AI access token: the token endpoint answered "
                                                 "HTTP 400 (invalid_grant: Invalid JWT Signature.)")


def test_ready_verbose_shows_the_token_probe(gw):
    deadline = time.monotonic() + 5
    while True:
        providers = httpx.get(f"{gw.url}/ready?verbose=1", timeout=5).json()["providers"]
        if all(providers[name]["status"] != "unknown" for name in ("vertex", "vertex-broken")):
            break
        assert time.monotonic() < deadline, providers
        time.sleep(0.1)
    assert providers["vertex"]["status"] == "up" and providers["vertex"]["detail"] == "access token obtained"
    assert providers["vertex-broken"]["status"] == "down" and "Invalid JWT Signature" in providers["vertex-broken"]["detail"]


@pytest.mark.parametrize("model", [VGEM, VCLAUDE])
def test_responses_front_door(oai, model):
    """Responses clients reach Gemini and Claude models on Vertex through the Kernel's translation."""
    whole = oai.responses.create(model=model, input="hello there", max_output_tokens=50)
    assert "hello there" in whole.output_text and whole.usage.total_tokens > 0
    with oai.responses.stream(model=model, input="hello there", max_output_tokens=50) as stream:
        assert "hello there" in "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        assert stream.get_final_response().status == "completed"
