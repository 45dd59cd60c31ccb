"""The happy path through the gateway with the official OpenAI SDK (docs/ARCHITECTURE.md, "The HTTP surface").

Only the base URL changes: answers keep OpenAI's shapes, the upstream model name comes back,
the client's key stays at the gateway and the provider's key goes upstream.
"""

from __future__ import annotations

import json

import httpx
import pytest

from fakeprovider import embedding_for
from harness.constants import FAKE_PROVIDER_KEY, PROVIDER_NAME, PUBLIC_MODELS, SLUICE_TEST_KEY

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]


def assert_no_client_key(request: dict) -> None:
    leaked = {k: v for k, v in request["headers"].items() if SLUICE_TEST_KEY in v}
    assert not leaked, f"client key forwarded upstream in headers {sorted(leaked)}"
    assert SLUICE_TEST_KEY not in json.dumps(request["body"]), "client key forwarded upstream in the body"
    assert SLUICE_TEST_KEY not in json.dumps(request["query"]), "client key forwarded upstream in the query"


@pytest.mark.both_transports
def test_chat_completion(client, fake):
    raw = client.chat.completions.with_raw_response.create(model="local", messages=HELLO)
    answer = raw.parse()

    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == PUBLIC_MODELS["local"]  # the upstream name, as the provider said it
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (2, 3, 5)
    assert raw.headers.get("x-request-id")
    assert raw.headers.get("x-sluice-provider") == PROVIDER_NAME

    [upstream] = fake.requests(CHAT)
    assert upstream["body"]["model"] == PUBLIC_MODELS["local"]
    assert upstream["body"]["messages"] == HELLO
    assert upstream["headers"].get("authorization") == f"Bearer {FAKE_PROVIDER_KEY}"
    assert_no_client_key(upstream)


@pytest.mark.parametrize("style", ["authorization", "x-api-key", "api-key"])
def test_every_key_header_works_and_none_is_forwarded(http, fake, style):
    header = {"authorization": f"Bearer {SLUICE_TEST_KEY}"} if style == "authorization" else {style: SLUICE_TEST_KEY}
    resp = http.post(CHAT, json={"model": "smol", "messages": HELLO}, headers=header)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == PUBLIC_MODELS["smol"]
    [upstream] = fake.requests(CHAT)
    assert upstream["headers"].get("authorization") == f"Bearer {FAKE_PROVIDER_KEY}"
    assert_no_client_key(upstream)


def test_client_request_id_is_echoed(client):
    raw = client.chat.completions.with_raw_response.create(
        model="local", messages=HELLO, extra_headers={"x-request-id": "client-chosen-id-42"})
    assert raw.headers.get("x-request-id") == "client-chosen-id-42"


def test_generated_request_ids_differ(client):
    ids = {client.models.with_raw_response.list().headers.get("x-request-id") for _ in range(3)}
    assert None not in ids and len(ids) == 3


@pytest.mark.both_transports
def test_streamed_chat(client, fake):
    chunks = list(client.chat.completions.create(model="local", messages=HELLO, stream=True))
    deltas = [c.choices[0] for c in chunks if c.choices]
    assert "".join(d.delta.content or "" for d in deltas) == "echo: hello there"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1].finish_reason == "stop"
    assert all(c.model == PUBLIC_MODELS["local"] for c in chunks)

    [upstream] = fake.requests(CHAT)
    assert upstream["body"]["stream"] is True
    assert upstream["completed"] and not upstream["stream_aborted"]
    assert_no_client_key(upstream)


@pytest.mark.both_transports
def test_streamed_chat_with_usage(client):
    chunks = list(client.chat.completions.create(model="local", messages=HELLO, stream=True,
                                                 stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].total_tokens == 5 and usage[-1].completion_tokens == 3


def test_streamed_chat_headers(client):
    with client.chat.completions.with_streaming_response.create(model="local", messages=HELLO,
                                                                stream=True) as resp:
        assert resp.headers.get("content-type", "").startswith("text/event-stream")
        assert resp.headers.get("x-sluice-provider") == PROVIDER_NAME
        assert resp.headers.get("x-request-id")
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == "echo: hello there"


@pytest.mark.both_transports
def test_embeddings_sdk_default_base64(client, fake):
    answer = client.embeddings.create(model="local", input="hello")  # the SDK asks for base64
    assert answer.model == PUBLIC_MODELS["local"]
    assert answer.data[0].embedding == embedding_for("hello")
    assert answer.usage.prompt_tokens == 1
    [upstream] = fake.requests("/v1/embeddings")
    assert upstream["body"]["model"] == PUBLIC_MODELS["local"]
    assert upstream["headers"].get("authorization") == f"Bearer {FAKE_PROVIDER_KEY}"


def test_embeddings_float_list(client):
    answer = client.embeddings.create(model="smol", input=["one", "two words"], encoding_format="float")
    assert answer.model == PUBLIC_MODELS["smol"]
    assert [d.index for d in answer.data] == [0, 1]
    assert [d.embedding for d in answer.data] == [embedding_for("one"), embedding_for("two words")]


def test_embeddings_raw_base64_passes_through(http):
    resp = http.post("/v1/embeddings", json={"model": "local", "input": "x", "encoding_format": "base64"},
                     headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"})
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json()["data"][0]["embedding"], str)
    assert resp.headers.get("x-sluice-provider") == PROVIDER_NAME


def test_model_list_is_the_public_models(client):
    models = list(client.models.list())
    assert {m.id for m in models} == set(PUBLIC_MODELS)
    assert all(m.object == "model" for m in models)


def test_health_and_ready_need_no_key(gateway):
    with httpx.Client(base_url=gateway.url, timeout=5, trust_env=False) as raw:
        assert raw.get("/health").status_code == 200
        assert raw.get("/ready").status_code == 200
