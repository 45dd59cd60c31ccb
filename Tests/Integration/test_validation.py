"""The `validation` pipeline plugin: malformed requests are refused before they cost an upstream call.

Every refusal is a 400 ``invalid_request_error`` in the front door's own shape naming the
offending field as a JSON path (``messages[2].role``): OpenAI's ``error.param``; Anthropic's
error shape has no ``param``, so there the path must be in ``error.param`` or in the message
(``messages[0].role`` or Anthropic's own ``messages.0.role``). None of them may reach the
provider. Bounds that are allowed, tool-call conversations and limits met exactly must pass
untouched, and ``clamp`` lowers max_tokens to the cap instead of refusing.

One gateway per configuration, shared by the module (the table is ~70 requests).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import openai
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.policy import CHAT, EMBEDDINGS, MESSAGES, anthropic_error, openai_error, start_gateway, \
    upstream_calls, with_pipeline

AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
ANTHROPIC_HEADERS = {**AUTH, "anthropic-version": "2023-06-01"}

CAP = 1000
MAX_MESSAGES = 20
MAX_CHARS = 2000
VALIDATION = {"plugin": "validation", "config": {
    "max_tokens_cap": CAP, "max_messages": MAX_MESSAGES, "max_total_chars": MAX_CHARS,
    "blocked_params": ["logit_bias", "service_tier"]}}

USER = {"role": "user", "content": "hello there"}
SYSTEM = {"role": "system", "content": "be brief"}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
ASSISTANT_CALLS = {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                                 "parameters": {"type": "object", "properties": {}}}}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "weather in a city",
                  "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


def chat(**fields: Any) -> dict:
    return {"model": "local", "messages": [USER], **fields}


def embed(**fields: Any) -> dict:
    return {"model": "local", "input": "hello there", **fields}


def anthropic_body(**fields: Any) -> dict:
    body = {"model": "local", "max_tokens": 64, "messages": [USER], **fields}
    return {k: v for k, v in body.items() if v is not DROP}


DROP = object()  # anthropic_body(max_tokens=DROP) leaves the field out


def _turns(count: int, chars: int) -> list[dict]:
    """``count`` alternating user/assistant messages (user first and last when count is odd) of ``chars`` each."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": "x" * chars} for i in range(count)]


# (id, path, body, accepted params). Where the contract leaves the exact node open (the element
# of an array or the field inside it), both spellings are accepted; everything else is exact.
BAD = [
    # --- OpenAI chat: sampling parameters -----------------------------------------------------
    ("chat-temperature-above-2", CHAT, chat(temperature=2.5), {"temperature"}),
    ("chat-temperature-negative", CHAT, chat(temperature=-0.1), {"temperature"}),
    ("chat-temperature-string", CHAT, chat(temperature="hot"), {"temperature"}),
    ("chat-top-p-above-1", CHAT, chat(top_p=1.01), {"top_p"}),
    ("chat-n-zero", CHAT, chat(n=0), {"n"}),
    ("chat-n-fraction", CHAT, chat(n=1.5), {"n"}),
    ("chat-n-above-128", CHAT, chat(n=129), {"n"}),
    ("chat-max-tokens-zero", CHAT, chat(max_tokens=0), {"max_tokens"}),
    ("chat-max-tokens-fraction", CHAT, chat(max_tokens=10.5), {"max_tokens"}),
    ("chat-max-tokens-string", CHAT, chat(max_tokens="10"), {"max_tokens"}),
    ("chat-max-tokens-above-cap", CHAT, chat(max_tokens=CAP + 1), {"max_tokens"}),
    ("chat-max-completion-tokens-negative", CHAT, chat(max_completion_tokens=-1), {"max_completion_tokens"}),
    ("chat-max-completion-tokens-above-cap", CHAT, chat(max_completion_tokens=CAP * 10), {"max_completion_tokens"}),
    ("chat-presence-penalty-above-2", CHAT, chat(presence_penalty=2.5), {"presence_penalty"}),
    ("chat-frequency-penalty-below-minus-2", CHAT, chat(frequency_penalty=-2.01), {"frequency_penalty"}),
    ("chat-stop-five-strings", CHAT, chat(stop=["a", "b", "c", "d", "e"]), {"stop"}),
    ("chat-stop-number", CHAT, chat(stop=7), {"stop"}),
    ("chat-stop-mixed", CHAT, chat(stop=["END", 3]), {"stop", "stop[1]"}),
    ("chat-seed-fraction", CHAT, chat(seed=1.5), {"seed"}),
    ("chat-user-number", CHAT, chat(user=42), {"user"}),
    ("chat-stream-string", CHAT, chat(stream="yes"), {"stream"}),
    # --- OpenAI chat: messages ----------------------------------------------------------------
    ("chat-messages-empty", CHAT, chat(messages=[]), {"messages"}),
    ("chat-messages-string", CHAT, chat(messages="hello"), {"messages"}),
    ("chat-role-unknown", CHAT, chat(messages=[SYSTEM, USER, {"role": "wizard", "content": "hi"}]),
     {"messages[2].role"}),
    ("chat-role-missing", CHAT, chat(messages=[{"content": "hi"}]), {"messages[0].role"}),
    ("chat-role-number", CHAT, chat(messages=[SYSTEM, {"role": 1, "content": "hi"}]), {"messages[1].role"}),
    ("chat-message-not-object", CHAT, chat(messages=[USER, "hello"]), {"messages[1]"}),
    ("chat-user-content-number", CHAT, chat(messages=[SYSTEM, {"role": "user", "content": 42}]),
     {"messages[1].content"}),
    ("chat-user-content-null", CHAT, chat(messages=[{"role": "user", "content": None}]), {"messages[0].content"}),
    ("chat-user-content-missing", CHAT, chat(messages=[SYSTEM, {"role": "user"}]), {"messages[1].content"}),
    ("chat-system-content-object", CHAT, chat(messages=[{"role": "system", "content": {"text": "x"}}, USER]),
     {"messages[0].content"}),
    ("chat-assistant-null-without-tool-calls", CHAT,
     chat(messages=[USER, {"role": "assistant", "content": None}, USER]), {"messages[1].content"}),
    ("chat-tool-without-tool-call-id", CHAT,
     chat(messages=[USER, ASSISTANT_CALLS, {"role": "tool", "content": "sunny"}]), {"messages[2].tool_call_id"}),
    ("chat-tool-answers-unknown-call", CHAT,
     chat(messages=[USER, ASSISTANT_CALLS, {**TOOL_RESULT, "tool_call_id": "call_2"}]),
     {"messages[2].tool_call_id"}),
    ("chat-tool-without-assistant", CHAT, chat(messages=[USER, TOOL_RESULT]),
     {"messages[1].tool_call_id", "messages[1]"}),
    ("chat-tool-after-a-user-turn", CHAT, chat(messages=[USER, ASSISTANT_CALLS, USER, TOOL_RESULT]),
     {"messages[3].tool_call_id", "messages[3]"}),
    ("chat-too-many-messages", CHAT, chat(messages=_turns(MAX_MESSAGES + 1, 1)), {"messages"}),
    ("chat-too-many-characters", CHAT, chat(messages=[SYSTEM, {"role": "user", "content": "x" * MAX_CHARS}]),
     {"messages"}),
    ("chat-too-many-characters-in-parts", CHAT, chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "x" * (MAX_CHARS // 2)}, {"type": "text", "text": "y" * (MAX_CHARS // 2 + 1)}]}]),
     {"messages"}),
    # --- OpenAI chat: tools and parameters ----------------------------------------------------
    ("chat-tool-empty-name", CHAT, chat(tools=[{"type": "function", "function": {"name": ""}}]),
     {"tools[0].function.name"}),
    ("chat-tool-without-function", CHAT, chat(tools=[WEATHER_TOOL, {"type": "function"}]),
     {"tools[1].function.name", "tools[1].function"}),
    ("chat-tool-wrong-type", CHAT, chat(tools=[{"type": "retrieval", "function": {"name": "x"}}]), {"tools[0].type"}),
    ("chat-tools-not-array", CHAT, chat(tools={"type": "function"}), {"tools"}),
    ("chat-blocked-param", CHAT, chat(logit_bias={"50256": -100}), {"logit_bias"}),
    ("chat-second-blocked-param", CHAT, chat(service_tier="flex"), {"service_tier"}),
    # --- OpenAI embeddings --------------------------------------------------------------------
    ("embed-input-empty-string", EMBEDDINGS, embed(input=""), {"input"}),
    ("embed-input-empty-array", EMBEDDINGS, embed(input=[]), {"input"}),
    ("embed-input-missing", EMBEDDINGS, {"model": "local"}, {"input"}),
    ("embed-input-mixed", EMBEDDINGS, embed(input=["a", 1]), {"input", "input[1]"}),
    ("embed-input-object", EMBEDDINGS, embed(input={"text": "a"}), {"input"}),
    ("embed-input-floats", EMBEDDINGS, embed(input=[1.5, 2.5]), {"input", "input[0]"}),
    ("embed-input-nested-strings", EMBEDDINGS, embed(input=[["a"]]), {"input", "input[0]", "input[0][0]"}),
    ("embed-encoding-format", EMBEDDINGS, embed(encoding_format="hex"), {"encoding_format"}),
    ("embed-dimensions-zero", EMBEDDINGS, embed(dimensions=0), {"dimensions"}),
    ("embed-dimensions-string", EMBEDDINGS, embed(dimensions="8"), {"dimensions"}),
    ("embed-blocked-param", EMBEDDINGS, embed(service_tier="flex"), {"service_tier"}),
    # --- Anthropic messages -------------------------------------------------------------------
    ("anthropic-max-tokens-missing", MESSAGES, anthropic_body(max_tokens=DROP), {"max_tokens"}),
    ("anthropic-max-tokens-zero", MESSAGES, anthropic_body(max_tokens=0), {"max_tokens"}),
    ("anthropic-max-tokens-string", MESSAGES, anthropic_body(max_tokens="64"), {"max_tokens"}),
    ("anthropic-max-tokens-above-cap", MESSAGES, anthropic_body(max_tokens=CAP + 1), {"max_tokens"}),
    ("anthropic-first-message-assistant", MESSAGES,
     anthropic_body(messages=[{"role": "assistant", "content": "hi"}, USER]), {"messages[0].role"}),
    ("anthropic-system-role", MESSAGES, anthropic_body(messages=[USER, {"role": "system", "content": "x"}]),
     {"messages[1].role"}),
    ("anthropic-tool-role", MESSAGES, anthropic_body(messages=[USER, {"role": "tool", "content": "x"}]),
     {"messages[1].role"}),
    ("anthropic-content-number", MESSAGES, anthropic_body(messages=[{"role": "user", "content": 5}]),
     {"messages[0].content"}),
    ("anthropic-content-null", MESSAGES,
     anthropic_body(messages=[USER, {"role": "assistant", "content": None}, USER]), {"messages[1].content"}),
    ("anthropic-block-without-type", MESSAGES, anthropic_body(messages=[{"role": "user", "content": [{"text": "hi"}]}]),
     {"messages[0].content[0].type", "messages[0].content[0]"}),
    ("anthropic-temperature-above-1", MESSAGES, anthropic_body(temperature=1.5), {"temperature"}),
    ("anthropic-top-p-above-1", MESSAGES, anthropic_body(top_p=1.5), {"top_p"}),
    ("anthropic-top-k-negative", MESSAGES, anthropic_body(top_k=-1), {"top_k"}),
    ("anthropic-top-k-fraction", MESSAGES, anthropic_body(top_k=2.5), {"top_k"}),
    ("anthropic-stop-sequences-string", MESSAGES, anthropic_body(stop_sequences="END"), {"stop_sequences"}),
    ("anthropic-stop-sequences-numbers", MESSAGES, anthropic_body(stop_sequences=["END", 2]),
     {"stop_sequences", "stop_sequences[1]"}),
    ("anthropic-system-number", MESSAGES, anthropic_body(system=5), {"system"}),
    ("anthropic-system-image-block", MESSAGES, anthropic_body(system=[{"type": "image", "source": {}}]),
     {"system", "system[0]", "system[0].type"}),
    ("anthropic-tool-without-schema", MESSAGES, anthropic_body(tools=[{"name": "get_weather"}]),
     {"tools[0].input_schema"}),
    ("anthropic-tool-without-name", MESSAGES, anthropic_body(tools=[ANTHROPIC_TOOL, {"input_schema": {"type": "object"}}]),
     {"tools[1].name"}),
    ("anthropic-too-many-messages", MESSAGES, anthropic_body(messages=_turns(MAX_MESSAGES + 1, 1)), {"messages"}),
    ("anthropic-blocked-param", MESSAGES, anthropic_body(service_tier="auto"), {"service_tier"}),
]


def dotted(path: str) -> str:
    """``messages[0].content[1]`` as Anthropic writes it: ``messages.0.content.1``."""
    return re.sub(r"\[(\d+)\]", r".\1", path)


def assert_refused(resp: httpx.Response, path: str, params: set[str]) -> None:
    assert resp.status_code == 400, f"{resp.status_code}: {resp.text[:400]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    assert resp.headers.get("x-sluice-provider") == "none"
    if path == MESSAGES:
        error = anthropic_error(resp.json())
        assert error["type"] == "invalid_request_error", error
        named = error.get("param") in params or any(
            re.search(rf"(?<![\w.\[]){re.escape(form)}(?![\w\[.])", error["message"])
            for p in params for form in (p, dotted(p)))
        assert named, f"the Anthropic error names none of {sorted(params)} (in error.param or the message): {error}"
    else:
        error = openai_error(resp.json())
        assert error["type"] == "invalid_request_error", error
        assert error["param"] in params, f"param {error['param']!r}, expected one of {sorted(params)}: {error}"


# --- gateways -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgw(sluice_bin, fake_provider, tmp_path_factory):
    """api-key-auth → validation (cap 1000, 20 messages, 2000 characters, two blocked params) → router."""
    gw = start_gateway(sluice_bin, with_pipeline(fake_provider.base_url, VALIDATION),
                       tmp_path_factory.mktemp("validation"), "validation")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def clamp_gw(sluice_bin, fake_provider, tmp_path_factory):
    gw = start_gateway(sluice_bin, with_pipeline(fake_provider.base_url, {
        "plugin": "validation", "config": {"max_tokens_cap": 5, "clamp": True}}),
        tmp_path_factory.mktemp("validation-clamp"), "validation-clamp")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def allow_gw(sluice_bin, fake_provider, tmp_path_factory):
    gw = start_gateway(sluice_bin, with_pipeline(fake_provider.base_url, {
        "plugin": "validation", "config": {"allowed_params": ["model", "messages", "temperature", "max_tokens"]}}),
        tmp_path_factory.mktemp("validation-allowed"), "validation-allowed")
    yield gw
    gw.stop()


def raw_client(gw) -> httpx.Client:
    return httpx.Client(base_url=gw.url, timeout=10, trust_env=False)


def post(gw, path: str, body: dict) -> httpx.Response:
    with raw_client(gw) as c:
        return c.post(path, json=body, headers=ANTHROPIC_HEADERS if path == MESSAGES else AUTH)


def sdk(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10)


@pytest.fixture
def claude(vgw):
    anthropic_sdk = pytest.importorskip("anthropic")
    with anthropic_sdk.Anthropic(base_url=vgw.url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10) as c:
        yield c


# --- refused ----------------------------------------------------------------------------------------

def test_the_table_is_big_enough():
    kinds = {path: sum(1 for _, p, _, _ in BAD if p == path) for path in (CHAT, EMBEDDINGS, MESSAGES)}
    assert len(BAD) >= 20 and all(n >= 5 for n in kinds.values()), kinds
    assert len({case[0] for case in BAD}) == len(BAD), "duplicate case ids"


@pytest.mark.parametrize("path,body,params", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_request_is_refused_with_its_path(vgw, fake, path, body, params):
    resp = post(vgw, path, body)
    assert_refused(resp, path, params)
    assert upstream_calls(fake) == [], "a refused request reached the provider"


def test_sdk_chat_refusals(vgw, fake):
    cases = [
        (dict(temperature=3), "temperature"),
        (dict(n=0), "n"),
        (dict(stop=["a", "b", "c", "d", "e"]), "stop"),
        (dict(max_tokens=CAP + 1), "max_tokens"),
        (dict(messages=[USER, ASSISTANT_CALLS, {**TOOL_RESULT, "tool_call_id": "call_9"}]), "messages[2].tool_call_id"),
        (dict(tools=[{"type": "function", "function": {"name": ""}}]), "tools[0].function.name"),
    ]
    with sdk(vgw) as c:
        for fields, param in cases:
            for stream in (False, True):  # a stream is refused before it starts: a JSON 400, no SSE
                request = {"model": "local", "messages": [USER], **fields}
                with pytest.raises(openai.BadRequestError) as err:
                    c.chat.completions.create(stream=stream, **request)
                assert err.value.status_code == 400
                error = openai_error(err.value.response.json())
                assert (error["type"], error["param"]) == ("invalid_request_error", param), (fields, error)
    assert upstream_calls(fake) == []


def test_sdk_embeddings_refusals(vgw, fake):
    with sdk(vgw) as c:
        for fields, param in [(dict(input=[]), "input"), (dict(input="hi", dimensions=0), "dimensions"),
                              (dict(input="hi", encoding_format="hex"), "encoding_format")]:
            with pytest.raises(openai.BadRequestError) as err:
                c.embeddings.create(model="local", **fields)
            error = openai_error(err.value.response.json())
            assert (error["type"], error["param"]) == ("invalid_request_error", param), (fields, error)
    assert upstream_calls(fake) == []


def test_anthropic_sdk_refusals(claude, fake):
    """(Recent SDKs have no sampling arguments; extra_body sends them as older ones did.)"""
    import anthropic as anthropic_sdk
    cases = [
        (dict(max_tokens=0, messages=[USER]), "max_tokens"),
        (dict(max_tokens=64, extra_body={"temperature": 1.5}, messages=[USER]), "temperature"),
        (dict(max_tokens=64, messages=[{"role": "assistant", "content": "hi"}, USER]), "messages[0].role"),
        (dict(max_tokens=64, extra_body={"top_k": -1}, messages=[USER]), "top_k"),
    ]
    for fields, param in cases:
        with pytest.raises(anthropic_sdk.BadRequestError) as err:
            claude.messages.create(model="local", **fields)
        assert err.value.status_code == 400
        error = anthropic_error(err.value.response.json())
        assert error["type"] == "invalid_request_error"
        assert error.get("param") == param or param in error["message"] or dotted(param) in error["message"], \
            f"{fields}: the error does not name {param}: {error}"
    assert upstream_calls(fake) == []


# --- accepted -----------------------------------------------------------------------------------------

def test_bounds_pass_unchanged(vgw, fake):
    fields = dict(temperature=2, top_p=0, n=1, presence_penalty=-2, frequency_penalty=2, stop=["x1", "x2", "x3", "x4"],
                  seed=-7, user="alice", max_tokens=CAP, stream=False)
    with sdk(vgw) as c:
        answer = c.chat.completions.create(model="local", messages=[USER], **fields)
        assert answer.choices[0].message.content == "echo: hello there"
        c.chat.completions.create(model="local", messages=[USER], temperature=0, top_p=1, max_completion_tokens=1)
    first, second = (r["body"] for r in upstream_calls(fake))
    assert {k: first.get(k) for k in fields} == fields, first
    assert (second["temperature"], second["top_p"], second["max_completion_tokens"]) == (0, 1, 1), second


def test_tool_conversation_passes(vgw, fake):
    messages = [{"role": "developer", "content": "use tools"}, SYSTEM,
                {"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]},
                ASSISTANT_CALLS, TOOL_RESULT,
                {"role": "assistant", "content": "It is sunny."},
                {"role": "user", "content": "thanks"}]
    with sdk(vgw) as c:
        answer = c.chat.completions.create(model="local", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
    assert answer.choices[0].message.content == "echo: thanks"
    [upstream] = upstream_calls(fake)
    assert upstream["body"]["messages"] == messages


def test_limits_met_exactly_pass(vgw, fake):
    messages = _turns(MAX_MESSAGES - 1, 100) + [{"role": "user", "content": "y" * 100}]  # 20 messages, 2000 chars
    assert len(messages) == MAX_MESSAGES and sum(len(m["content"]) for m in messages) == MAX_CHARS
    with sdk(vgw) as c:
        c.chat.completions.create(model="local", messages=messages)
    assert len(upstream_calls(fake)) == 1


def test_stream_passes(vgw, fake):
    with sdk(vgw) as c:
        chunks = list(c.chat.completions.create(model="local", messages=[USER], stream=True, max_tokens=CAP))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "echo: hello there"
    assert len(upstream_calls(fake)) == 1


def test_good_embeddings_pass(vgw, fake):
    with sdk(vgw) as c:
        assert len(c.embeddings.create(model="local", input=["a b", "c"]).data) == 2
        assert len(c.embeddings.create(model="local", input=[[1, 2, 3], [4, 5]], dimensions=8).data) == 2
    with raw_client(vgw) as h:
        resp = h.post(EMBEDDINGS, headers=AUTH, json=embed(input=[1, 2, 3], encoding_format="base64"))
    assert resp.status_code == 200, resp.text
    assert len(upstream_calls(fake)) == 3


def test_good_anthropic_message_passes(vgw, fake, claude):
    msg = claude.messages.create(model="local", max_tokens=CAP, extra_body={"temperature": 1, "top_p": 1, "top_k": 0},
                                 stop_sequences=["NEVER"], system=[{"type": "text", "text": "be brief"}],
                                 tools=[ANTHROPIC_TOOL],
                                 messages=[{"role": "user", "content": [{"type": "text", "text": "hello there"}]},
                                           {"role": "assistant", "content": "hi"},
                                           {"role": "user", "content": "and again"}])
    assert msg.content[0].text == "echo: and again"
    assert len(upstream_calls(fake)) == 1


def test_list_models_is_not_validated(vgw):
    with raw_client(vgw) as h:
        assert h.get("/v1/models", headers=AUTH).status_code == 200


# --- clamp and allowed_params ---------------------------------------------------------------------------

def test_clamp_lowers_max_tokens_to_the_cap(clamp_gw, fake):
    long_prompt = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]
    with sdk(clamp_gw) as c:
        answer = c.chat.completions.create(model="local", messages=long_prompt, max_tokens=50)
        c.chat.completions.create(model="local", messages=long_prompt, max_completion_tokens=500)
        c.chat.completions.create(model="local", messages=long_prompt, max_tokens=3)  # under the cap: untouched
        streamed = list(c.chat.completions.create(model="local", messages=long_prompt, max_tokens=50, stream=True))
    upstream = [r["body"] for r in upstream_calls(fake)]
    assert [b.get("max_tokens") for b in upstream] == [5, None, 3, 5], upstream
    assert upstream[1].get("max_completion_tokens") == 5, upstream[1]
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == "echo: one two three four"  # 5 words: the fake obeyed the cap
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices) == "echo: one two three four"


def test_clamp_on_the_anthropic_front_door(clamp_gw, fake):
    resp = post(clamp_gw, MESSAGES, anthropic_body(max_tokens=4096))
    assert resp.status_code == 200, resp.text
    [upstream] = upstream_calls(fake)
    limit = upstream["body"].get("max_tokens", upstream["body"].get("max_completion_tokens"))
    assert limit == 5, upstream["body"]


def test_clamp_still_refuses_invalid_values(clamp_gw, fake):
    for body, param in [(chat(max_tokens=0), "max_tokens"), (chat(max_tokens="50"), "max_tokens"),
                        (chat(temperature=9), "temperature")]:
        assert_refused(post(clamp_gw, CHAT, body), CHAT, {param})
    assert upstream_calls(fake) == []


def test_allowed_params(allow_gw, fake):
    ok = post(allow_gw, CHAT, chat(temperature=0.5, max_tokens=10))
    assert ok.status_code == 200, ok.text
    for extra, value in [("top_p", 0.5), ("stream", False), ("tools", [WEATHER_TOOL])]:
        assert_refused(post(allow_gw, CHAT, chat(**{extra: value})), CHAT, {extra})
    assert len(upstream_calls(fake)) == 1


def test_request_after_refusals_is_served(vgw, fake):
    """The gateway is unharmed by everything above (and the validated copy is what went upstream)."""
    body = copy.deepcopy(chat(temperature=1, max_tokens=7))
    assert post(vgw, CHAT, body).status_code == 200
    [upstream] = upstream_calls(fake)
    assert {k: upstream["body"][k] for k in ("messages", "temperature", "max_tokens")} == \
        {k: body[k] for k in ("messages", "temperature", "max_tokens")}
