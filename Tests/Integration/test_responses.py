"""The OpenAI Responses API front door, ``POST /v1/responses`` (issue #22), through the real binary.

The official ``openai`` SDK with ``_strict_response_validation=True`` (every whole answer and every
stream event validated by its pydantic models) talks to the gateway, whose models reach four kinds
of provider on the fake:

- ``native``: the ``openai`` provider (``responses_api`` on by default): the body passes through to
  the fake's ``/v1/responses``, which answers as api.openai.com does (fakeprovider/responses_shapes.py);
- ``azure``: ``azure-openai``, natively too, at Azure's v1 path ``/openai/v1/responses``;
- ``compat``: ``openai-compatible`` (``responses_api`` off by default): translated to Chat Completions;
- ``claude``: ``anthropic``: translated Responses → Chat → Messages.

Besides the SDK's models, every answer, event and error is checked against OpenAI's published
OpenAPI document (harness/openai_spec.py). The response-store plugin keeps answers, so that
``previous_response_id`` continues a conversation on any provider (in memory, or in Redis shared by
two gateways), and serves ``GET``/``DELETE /v1/responses/{id}`` and ``input_items`` to the key that
created the response.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import openai_spec
from harness.constants import FAKE_PROVIDER_KEY, SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.sluice import Sluice, SluiceError
from harness.sse import parse_sse

OTHER_KEY = "other-key-responses-555"
TIMEOUT_S = 15
HELLO = "hello there"
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
                "parameters": WEATHER_SCHEMA, "strict": False}
TOOL_RESULT = "18 degrees and sunny"


@dataclass(frozen=True)
class P:
    """A provider kind, the public model that reaches it, and what the fake sees."""
    name: str          # provider name in the manifest
    plugin: str
    model: str         # public model
    upstream: str      # the target's model (Azure: the deployment)
    path: str          # where the fake receives the request
    translated: bool

    def __str__(self) -> str:
        return self.name


NATIVE = P("native", "openai", "gpt-native", "up-native", "/v1/responses", False)
AZURE = P("azure", "azure-openai", "gpt-azure", "up-azure", "/openai/v1/responses", False)
COMPAT = P("compat", "openai-compatible", "gpt-compat", "up-compat", "/v1/chat/completions", True)
CLAUDE = P("claude", "anthropic", "gpt-claude", "up-claude", "/v1/messages", True)
PROVIDERS = [NATIVE, AZURE, COMPAT, CLAUDE]
TRANSLATED = [COMPAT, CLAUDE]
BY_PATH = {p.path for p in PROVIDERS}


def manifest_for(fake, *, store: dict | None = None, port: int | None = None) -> dict:
    """The four providers, access log and metrics, two keys, and (``store`` not None) the
    response-store plugin with that config."""
    manifest = default_manifest(port or free_port(), fake.base_url)
    key = {"env": "FAKE_PROVIDER_KEY"}
    manifest["providers"] = {
        NATIVE.name: {"plugin": "openai", "config": {"base_url": fake.base_url, "api_key": key}},
        AZURE.name: {"plugin": "azure-openai", "config": {"base_url": fake.url, "api_key": key}},
        COMPAT.name: {"plugin": "openai-compatible", "config": {"base_url": fake.base_url, "api_key": key}},
        CLAUDE.name: {"plugin": "anthropic", "config": {"base_url": fake.url, "api_key": key}},
    }
    manifest["models"] = {p.model: {"targets": [{"provider": p.name, "model": p.upstream}]} for p in PROVIDERS}
    pipeline = [
        {"plugin": "access-log"},
        {"plugin": "metrics"},
        {"plugin": "api-key-auth", "config": {"keys": [
            {"name": "tester", "key": {"env": "SLUICE_TEST_KEY"}, "models": ["*"]},
            {"name": "other", "key": OTHER_KEY, "models": ["*"]},
        ]}},
    ]
    if store is not None:
        pipeline.append({"plugin": "response-store", "config": store})
    pipeline.append({"plugin": "router", "config": {"retries": 0, "timeout_s": TIMEOUT_S, "backoff_ms": 0}})
    manifest["pipeline"] = pipeline
    return manifest


@pytest.fixture(scope="module")
def gw(sluice_bin, fake_provider, tmp_path_factory) -> Sluice:
    """The module's gateway: every provider, and the response-store plugin in memory."""
    try:
        gateway = Sluice(sluice_bin, manifest_for(fake_provider, store={}), tmp_path_factory.mktemp("responses"),
                         name="responses").start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield gateway
    gateway.stop()


def sdk_for(gateway: Sluice, key: str = SLUICE_TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=TIMEOUT_S,
                         _strict_response_validation=True)


@pytest.fixture
def client(gw) -> openai.OpenAI:
    with sdk_for(gw) as c:
        yield c


@pytest.fixture
def raw(gw) -> httpx.Client:
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False,
                      headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"}) as c:
        yield c


# --- checking answers ---------------------------------------------------------------------------

def check_response(response) -> dict:
    """A Response (SDK model or wire JSON) against OpenAI's OpenAPI document; returns the JSON."""
    data = response if isinstance(response, dict) else response.to_dict(mode="json")
    openai_spec.check("Response", data)
    assert data["object"] == "response" and data["id"].startswith("resp_"), data
    return data


def check_events(events: list) -> list[dict]:
    """Stream events (SDK models or wire JSON), each against the document, numbered 0, 1, 2, …"""
    out = [e if isinstance(e, dict) else e.to_dict(mode="json") for e in events]
    for event in out:
        openai_spec.check("ResponseStreamEvent", event)
    assert [e["sequence_number"] for e in out] == list(range(len(out))), [(e["type"], e["sequence_number"]) for e in out]
    return out


def check_complete_stream(events: list[dict]) -> dict:
    """A whole stream as OpenAI sends one; returns the completed Response."""
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    assert "error" not in types and "response.failed" not in types, types
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1, f"one response id across the stream, got {ids}"
    return check_response(events[-1]["response"])


def check_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    openai_spec.check("ErrorResponse", body)
    return body["error"]


def streamed_text(events: list[dict]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def only(records: list[dict]) -> dict:
    assert len(records) == 1, f"expected one upstream request, got {[(r['method'], r['path']) for r in records]}"
    return records[0]


def upstream(fake, p: P) -> list[dict]:
    """The requests the fake received on ``p``'s path for ``p``'s upstream model."""
    return [r for r in fake.requests(p.path) if (r["body"] or {}).get("model") == p.upstream]


def assert_upstream_auth(record: dict, p: P) -> None:
    headers = record["headers"]
    if p.plugin == "anthropic":
        assert headers.get("x-api-key") == FAKE_PROVIDER_KEY
    elif p.plugin == "azure-openai":
        assert headers.get("api-key") == FAKE_PROVIDER_KEY
        assert record["query"] == {}, "Azure's v1 API takes no api-version"
    else:
        assert headers.get("authorization") == f"Bearer {FAKE_PROVIDER_KEY}"
    leaked = sorted(k for k, v in headers.items() if SLUICE_TEST_KEY in v)
    assert not leaked, f"client key forwarded upstream in {leaked}"


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text"))
    return ""


def turns(record: dict) -> list[tuple[str, str]]:
    """(role, text) of the conversation an upstream request carries, in any of the three dialects:
    system/instructions first, then messages; a tool call is ("call", name), its result ("result", text).
    A ``developer`` message counts as ``system`` (OpenAI reads them alike)."""
    return [("system" if role == "developer" else role, text) for role, text in _turns(record)]


def _turns(record: dict) -> list[tuple[str, str]]:
    body = record["body"]
    out: list[tuple[str, str]] = []
    if record["path"].endswith("/responses"):
        if body.get("instructions"):
            out.append(("system", body["instructions"]))
        items = body.get("input")
        items = [{"type": "message", "role": "user", "content": items}] if isinstance(items, str) else items or []
        for item in items:
            kind = item.get("type", "message")
            if kind == "message":
                out.append((item["role"], _text(item["content"])))
            elif kind == "function_call":
                out.append(("call", item["name"]))
            elif kind == "function_call_output":
                out.append(("result", _text(item["output"])))
    elif record["path"].endswith("/chat/completions"):
        for m in body["messages"]:
            if m["role"] == "tool":
                out.append(("result", _text(m["content"])))
                continue
            if _text(m.get("content")):
                out.append((m["role"], _text(m["content"])))
            out += [("call", c["function"]["name"]) for c in m.get("tool_calls") or []]
    else:  # Anthropic Messages
        if body.get("system"):
            out.append(("system", _text(body["system"])))
        for m in body["messages"]:
            blocks = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
            for b in blocks:
                if b["type"] == "text":
                    out.append((m["role"], b["text"]))
                elif b["type"] == "tool_use":
                    out.append(("call", b["name"]))
                elif b["type"] == "tool_result":
                    out.append(("result", _text(b["content"])))
    return out


# --- whole and streamed, every provider ---------------------------------------------------------

@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_whole_response(client, fake, p):
    raw_answer = client.responses.with_raw_response.create(model=p.model, input=HELLO, instructions="be brief")
    wire = check_response(raw_answer.http_response.json())
    answer = raw_answer.parse()

    assert answer.status == "completed"
    assert answer.output_text == "echo: hello there"
    [message] = answer.output
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert answer.model == p.upstream, "the model the provider answered with comes back"
    assert answer.instructions == "be brief", "a Response echoes the request's instructions"
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.total_tokens) == (4, 3, 7)
    assert wire["usage"]["input_tokens_details"]["cached_tokens"] == 0
    assert raw_answer.headers.get("x-sluice-provider") == p.name

    record = only(upstream(fake, p))
    assert_upstream_auth(record, p)
    assert turns(record) == [("system", "be brief"), ("user", HELLO)]
    if not p.translated:
        assert record["body"] == {"model": p.upstream, "input": HELLO, "instructions": "be brief"}, \
            "a native provider gets the client's body but for the model"


@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_streamed_response(client, fake, p):
    events = check_events(list(client.responses.create(model=p.model, input=HELLO, stream=True)))
    final = check_complete_stream(events)

    assert streamed_text(events) == "echo: hello there"
    assert [e["text"] for e in events if e["type"] == "response.output_text.done"] == ["echo: hello there"]
    assert final["status"] == "completed" and final["model"] == p.upstream
    assert final["output"][0]["content"][0]["text"] == "echo: hello there"
    assert (final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == (2, 3)
    kinds = [e["type"] for e in events]
    for kind in ("response.output_item.added", "response.content_part.added", "response.content_part.done",
                 "response.output_item.done"):
        assert kinds.count(kind) == 1, kinds

    record = only(upstream(fake, p))
    assert record["body"]["stream"] is True and record["completed"]
    assert_upstream_auth(record, p)


@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_stream_helper_final_response(client, p):
    """``client.responses.stream``: the SDK's own accumulator rebuilds the answer from the events
    (it refuses events out of order) and agrees with the completed response."""
    with client.responses.stream(model=p.model, input=HELLO) as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    check_response(final)
    assert "".join(texts) == final.output_text == "echo: hello there"
    assert final.usage.output_tokens == 3


@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_stream_wire_format(raw, p):
    """On the wire: ``event: TYPE`` naming each data's type, numbered from 0, no ``[DONE]``."""
    with raw.stream("POST", "/v1/responses", json={"model": p.model, "input": HELLO, "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = resp.read().decode()
    sse = parse_sse(text)
    assert all(e.data != "[DONE]" for e in sse), "a Responses stream has no [DONE]"
    for e in sse:
        assert e.event == e.json()["type"], f"event {e.event!r} carries {e.json()['type']!r}"
    check_complete_stream(check_events([e.json() for e in sse]))


# --- function tools ------------------------------------------------------------------------------

def call_of(output: list[dict]) -> dict:
    [call] = [item for item in output if item["type"] == "function_call"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Paris"}, call
    assert call["call_id"], call
    return call


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_function_tool_round_trip(client, fake, p, stream):
    """The model calls get_weather (``function_call``); the client runs it and sends the call and
    its ``function_call_output`` back; the model answers from the tool's output."""
    question = {"role": "user", "content": "What is the weather in Paris?"}
    if stream:
        events = check_events(list(client.responses.create(model=p.model, input=[question], tools=[WEATHER_TOOL],
                                                           stream=True)))
        first = check_complete_stream(events)
        pieces = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
        [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
        assert json.loads(pieces) == json.loads(done["arguments"]) == {"location": "Paris"}
    else:
        first = check_response(client.responses.create(model=p.model, input=[question], tools=[WEATHER_TOOL]))
    call = call_of(first["output"])
    assert [t["name"] for t in first["tools"]] == ["get_weather"], "a Response echoes its tools"

    follow_up = [question, call, {"type": "function_call_output", "call_id": call["call_id"], "output": TOOL_RESULT}]
    if stream:
        events = check_events(list(client.responses.create(model=p.model, input=follow_up, tools=[WEATHER_TOOL],
                                                           stream=True)))
        second = check_complete_stream(events)
    else:
        second = check_response(client.responses.create(model=p.model, input=follow_up, tools=[WEATHER_TOOL]))
    assert [item["type"] for item in second["output"]] == ["message"]
    assert second["output"][0]["content"][0]["text"] == f"echo: {TOOL_RESULT}"

    first_up, second_up = upstream(fake, p)
    assert turns(first_up) == [("user", "What is the weather in Paris?")]
    assert turns(second_up) == [("user", "What is the weather in Paris?"), ("call", "get_weather"), ("result", TOOL_RESULT)]


@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_forced_tool_choice(client, p):
    answer = check_response(client.responses.create(
        model=p.model, input=HELLO, tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "get_weather"}))
    call_of(answer["output"])


# --- conversations by previous_response_id --------------------------------------------------------

THREE_TURNS = [("user", "first question"), ("assistant", "echo: first question"),
               ("user", "second question"), ("assistant", "echo: second question"), ("user", "third question")]


def converse(first: openai.OpenAI, then: openai.OpenAI, p: P, stream_second: bool = False):
    """Three turns, each continuing the last by previous_response_id (turn 3 through ``then``)."""
    r1 = first.responses.create(model=p.model, input="first question")
    if stream_second:
        with first.responses.stream(model=p.model, input="second question", previous_response_id=r1.id) as s:
            r2 = s.get_final_response()
    else:
        r2 = first.responses.create(model=p.model, input="second question", previous_response_id=r1.id)
    r3 = then.responses.create(model=p.model, input="third question", previous_response_id=r2.id)
    for r in (r1, r2, r3):
        check_response(r)
    assert len({r1.id, r2.id, r3.id}) == 3
    assert r3.output_text == "echo: third question"
    return r1, r2, r3


@pytest.mark.parametrize("p", [COMPAT, CLAUDE, NATIVE], ids=str)
def test_three_turns_by_previous_response_id(client, fake, p):
    converse(client, client, p, stream_second=True)
    records = upstream(fake, p)
    assert len(records) == 3
    assert turns(records[0]) == THREE_TURNS[:1]
    assert turns(records[1]) == THREE_TURNS[:3]
    assert turns(records[2]) == THREE_TURNS, "the third turn carries the first two"
    assert all("previous_response_id" not in (r["body"] or {}) for r in records), \
        "the store expanded the earlier turns, so no provider is asked for a response it never kept"


@pytest.mark.parametrize("p", [COMPAT, NATIVE], ids=str)
def test_continued_response_names_its_previous_response(client, p):
    """A Response echoes the previous_response_id it continued, as OpenAI's do."""
    r1 = client.responses.create(model=p.model, input="first question")
    r2 = client.responses.create(model=p.model, input="second question", previous_response_id=r1.id)
    assert r2.previous_response_id == r1.id


def test_conversation_shared_through_redis(sluice_bin, fake, redis_server, tmp_path):
    """Two gateways, one manifest, one Redis: the second continues what the first began."""
    manifest = manifest_for(fake, store={"redis_url": redis_server.url})
    second_manifest = json.loads(json.dumps(manifest))
    second_manifest["server"]["listen"] = [f"127.0.0.1:{free_port()}"]
    gateways = []
    try:
        for name, m in (("redis-a", manifest), ("redis-b", second_manifest)):
            gateways.append(Sluice(sluice_bin, m, tmp_path, name=name).start())
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        with sdk_for(gateways[0]) as a, sdk_for(gateways[1]) as b:
            r1, r2, r3 = converse(a, b, COMPAT, stream_second=True)
            assert any(r2.id in key for key in redis_server.keys()), redis_server.keys()
            assert b.responses.retrieve(r1.id).id == r1.id, "either gateway serves a stored response"
        records = upstream(fake, COMPAT)
        assert len(records) == 3 and turns(records[2]) == THREE_TURNS
    finally:
        for g in gateways:
            g.stop()


# --- stored responses ----------------------------------------------------------------------------

@pytest.mark.parametrize("p", [NATIVE, COMPAT], ids=str)
def test_stored_response_is_the_creators_only(gw, client, p):
    created = client.responses.create(model=p.model, input=[{"role": "user", "content": HELLO}],
                                      instructions="be brief")
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as http:
        mine, theirs = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}, {"authorization": f"Bearer {OTHER_KEY}"}
        path = f"/v1/responses/{created.id}"

        got = http.get(path, headers=mine)
        assert got.status_code == 200, got.text
        assert check_response(got.json()) == created.to_dict(mode="json")
        assert client.responses.retrieve(created.id).output_text == "echo: hello there"

        items = http.get(f"{path}/input_items", headers=mine)
        assert items.status_code == 200, items.text
        [item] = items.json()["data"]  # its shape: test_input_items_are_openai_shaped
        assert (item["type"], item["role"], _text(item["content"])) == ("message", "user", HELLO) and item["id"]

        for method in ("GET", "DELETE"):
            error = check_error(http.request(method, path, headers=theirs), 404)
            assert created.id in error["message"]
        check_error(http.get(f"{path}/input_items", headers=theirs), 404)
        assert http.get(path, headers=mine).status_code == 200, "another key's DELETE changed nothing"

        deleted = http.delete(path, headers=mine)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
        check_error(http.get(path, headers=mine), 404)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(created.id)


@pytest.mark.parametrize("p", [NATIVE, COMPAT], ids=str)
def test_input_items_are_openai_shaped(gw, client, p):
    created = client.responses.create(model=p.model, input=[
        {"role": "user", "content": HELLO}, {"role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}])
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as http:
        items = http.get(f"/v1/responses/{created.id}/input_items",
                         headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"})
    assert items.status_code == 200, items.text
    openai_spec.check("ResponseItemList", items.json())
    page = client.responses.input_items.list(created.id, order="asc")
    assert [(i.type, i.role, [c.text for c in i.content]) for i in page.data] == [
        ("message", "user", [HELLO]), ("message", "developer", ["be brief"])]
    assert all(i.id for i in page.data)


def test_store_false_is_not_kept(client):
    created = client.responses.create(model=NATIVE.model, input=HELLO, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


# --- without the response-store plugin -----------------------------------------------------------

@pytest.mark.parametrize("p", TRANSLATED, ids=str)
def test_previous_response_id_without_the_store_is_400(start_sluice, fake, p):
    gateway = start_sluice(manifest_for(fake), name="no-store")
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S, trust_env=False) as http:
        resp = http.post("/v1/responses", headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"},
                         json={"model": p.model, "input": "more", "previous_response_id": "resp_abc123"})
    error = check_error(resp, 400)
    assert "response-store" in error["message"], error
    assert error["param"] == "previous_response_id", error
    assert upstream(fake, p) == [], "nothing was sent upstream"


def test_native_provider_keeps_its_own_conversation_without_the_store(start_sluice, fake):
    """Without the plugin, previous_response_id passes through to a provider that speaks Responses."""
    gateway = start_sluice(manifest_for(fake), name="no-store")
    with sdk_for(gateway) as c:
        r1 = c.responses.create(model=NATIVE.model, input="first question")
        r2 = c.responses.create(model=NATIVE.model, input="second question", previous_response_id=r1.id)
        assert r2.previous_response_id == r1.id
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(r1.id)  # GET is the store's; the gateway does not ask the provider
    second = upstream(fake, NATIVE)[1]
    assert second["body"]["previous_response_id"] == r1.id and second["body"]["input"] == "second question"


# --- errors in OpenAI's shape --------------------------------------------------------------------

def test_unknown_model_is_404(client, raw):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input=HELLO)
    error = check_error(raw.post("/v1/responses", json={"model": "no-such-model", "input": HELLO}), 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")


@pytest.mark.parametrize("body, param", [
    ({"model": NATIVE.model}, "input"),
    ({"model": NATIVE.model, "input": 42}, "input"),
    ({"model": NATIVE.model, "input": {"role": "user"}}, "input"),
    ({"input": HELLO}, "model"),
], ids=["missing-input", "number", "object", "missing-model"])
def test_bad_input_is_400_naming_the_param(client, raw, fake, body, param):
    error = check_error(raw.post("/v1/responses", json=body), 400)
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    assert fake.requests(NATIVE.path) == []
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**body)
    assert caught.value.param == param


def test_provider_400_passes_through_with_its_param(client, raw):
    """A native provider's own refusal (an input item OpenAI rejects) reaches the client as sent."""
    body = {"model": NATIVE.model, "input": [{"role": "tool", "content": "x"}]}
    error = check_error(raw.post("/v1/responses", json=body), 400)
    assert (error["param"], error["code"]) == ("input[0].role", "invalid_value"), error


@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_upstream_status_is_openai_shaped(client, raw, fake, p):
    fake.enqueue(status=429, model=p.upstream)
    error = check_error(raw.post("/v1/responses", json={"model": p.model, "input": HELLO}), 429)
    assert error["type"] in ("requests", "rate_limit_error", "rate_limit_exceeded", "tokens"), error
    fake.enqueue(status=429, model=p.upstream)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=p.model, input=HELLO, stream=True)


def assert_ends_in_error(events: list[dict]) -> dict:
    """Numbered 0…n-1 with the error event last (after the events that made it)."""
    check_events(events)
    assert events[0]["type"] == "response.created", [e["type"] for e in events]
    assert events[-1]["type"] == "error", [e["type"] for e in events]
    assert all(e["type"] not in ("response.completed", "error") for e in events[:-1])
    return events[-1]


@pytest.mark.parametrize("fault", ["cut", "error-event"])
@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_fault_mid_stream_ends_with_an_error_event(client, fake, p, fault):
    """The provider fails after some events (the connection reset, or an error event in its own
    dialect): the client's stream ends with an ``error`` event numbered after the events it got,
    and the SDK's stream helper raises rather than hand back a response."""
    after = 3
    if fault == "cut":
        fake.enqueue(drop_after_chunks=after, model=p.upstream, count=2)
    else:
        fake.enqueue(stream_error_after=after, model=p.upstream, count=2)
    error = assert_ends_in_error([e.to_dict(mode="json") for e in
                                  client.responses.create(model=p.model, input=HELLO, stream=True)])
    assert error["message"] and error["code"], error

    with pytest.raises(RuntimeError, match="response.completed"):
        with client.responses.stream(model=p.model, input=HELLO) as stream:
            for _ in stream:
                pass
            stream.get_final_response()


def test_response_failed_from_a_native_provider_passes_through(client, fake):
    fake.enqueue(stream_error_after=4, stream_error="response.failed", model=NATIVE.upstream)
    events = check_events([e.to_dict(mode="json") for e in
                           client.responses.create(model=NATIVE.model, input=HELLO, stream=True)])
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["code"] == "server_error"


# --- usage in the access log and the metrics -------------------------------------------------------

def scrape(gw: Sluice) -> dict[str, dict[tuple, float]]:
    status, body = gw.get("/metrics")
    assert status == 200, body[:300]
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def access_line(gw: Sluice, request_id: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in gw.log_lines()
                 if line.get("logger") == "sluice.access" and line.get("request_id") == request_id]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, f"{len(lines)} access-log lines for {request_id}"
            return lines[0]
        time.sleep(0.05)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("p", PROVIDERS, ids=str)
def test_usage_reaches_access_log_and_metrics(gw, client, p, stream):
    def tokens(samples, direction):
        key = tuple(sorted({"direction": direction, "model": p.model, "provider": p.name, "key_name": "tester"}.items()))
        return samples.get("sluice_tokens_total", {}).get(key, 0.0)

    before = scrape(gw)
    request_id = f"responses-usage-{p.name}-{stream}-{uuid.uuid4().hex[:8]}"
    if stream:
        events = list(client.responses.create(model=p.model, input=HELLO, stream=True,
                                              extra_headers={"x-request-id": request_id}))
        assert events[-1].type == "response.completed"
    else:
        client.responses.create(model=p.model, input=HELLO, extra_headers={"x-request-id": request_id})

    line = access_line(gw, request_id)
    assert (line.get("operation"), line.get("front_door")) == ("responses", "openai"), line
    assert (line.get("model"), line.get("provider"), line.get("upstream_model")) == (p.model, p.name, p.upstream)
    assert (line.get("status"), line.get("stream")) == (200, stream), line
    assert (line.get("input_tokens"), line.get("output_tokens")) == (2, 3), line

    after = scrape(gw)
    assert tokens(after, "input") - tokens(before, "input") == 2
    assert tokens(after, "output") - tokens(before, "output") == 3
