"""Guardrails (#27) through the real binary and the official SDKs: ``pii`` on prompts and on
streams split at every offset (OpenAI chat, OpenAI Responses, Anthropic), ``restore``,
per-key policies, ``moderation`` against the fake's /v1/moderations (block, log, fail-open,
fail-closed), the /v1/moderations front door, and ``content-filter`` on a pathological input.
"""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest

from harness.constants import PROVIDER_NAME, SLUICE_TEST_KEY
from harness.sluice import Sluice

SECRET = "sk-proj-abc123DEF456ghi789JKL012mno345PQR678"
STREAMED = f"Mail alice@example.com, call +1 415 555 0100, key {SECRET} ok"
REDACTED = "Mail [EMAIL_1], call [PHONE_1], key [SECRET_1] ok"
LEAKS = ("alice", "415 555", "abc123DEF")
INTERNAL_KEY = "internal-key-456"


def openai_stream(text_pieces: list[str]) -> str:
    """An OpenAI chat stream whose content arrives in exactly these pieces."""
    def chunk(delta: dict, finish: str | None = None) -> str:
        return "data: " + json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                                      "model": "upstream-local",
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    return ("".join([chunk({"role": "assistant", "content": ""})] + [chunk({"content": p}) for p in text_pieces]
                    + [chunk({}, "stop")]) + "data: [DONE]\n\n")


def responses_stream(text_pieces: list[str]) -> str:
    """A Responses event stream whose output text arrives in exactly these pieces."""
    text = "".join(text_pieces)

    def response(status: str, output: list) -> dict:
        return {"id": "resp_1", "object": "response", "created_at": 1, "status": status, "error": None,
                "incomplete_details": None, "instructions": None, "max_output_tokens": None, "model": "upstream-local",
                "output": output, "parallel_tool_calls": True, "previous_response_id": None, "temperature": 1.0,
                "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
                "truncation": "disabled", "metadata": {},
                "usage": {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9,
                          "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12} if status == "completed" else None}

    def part(value: str) -> dict:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": value}

    item = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant", "content": [part(text)]}
    at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events = [("response.created", {"response": response("in_progress", [])}),
              ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
              ("response.content_part.added", {**at, "part": part("")})]
    events += [("response.output_text.delta", {**at, "delta": piece, "logprobs": []}) for piece in text_pieces]
    events += [("response.output_text.done", {**at, "text": text, "logprobs": []}),
               ("response.content_part.done", {**at, "part": part(text)}),
               ("response.output_item.done", {"output_index": 0, "item": item}),
               ("response.completed", {"response": response("completed", [item])})]
    return "".join(f"event: {kind}\ndata: {json.dumps({'type': kind, **fields, 'sequence_number': n})}\n\n"
                   for n, (kind, fields) in enumerate(events))


def enqueue_stream(fake, pieces: list[str], responses: bool = False) -> None:
    if responses:
        fake.enqueue(path="/v1/responses", status=200, headers={"content-type": "text/event-stream"},
                     body=responses_stream(pieces))
    else:
        fake.enqueue(path="/v1/chat/completions", status=200, headers={"content-type": "text/event-stream"},
                     body=openai_stream(pieces))


def splits(text: str) -> list[list[str]]:
    """The text cut in two at every byte offset that is a character boundary, then one piece per character."""
    return [[text[:i], text[i:]] for i in range(1, len(text))] + [list(text)]


def with_guardrails(*stages: dict, keys_extra: list[dict] | None = None):
    def edit(manifest: dict) -> None:
        # The fake speaks the Responses API: Responses requests go to it as they are.
        manifest["providers"][PROVIDER_NAME]["config"]["responses_api"] = True
        auth, router = manifest["pipeline"]
        auth["config"]["keys"] += keys_extra or []
        manifest["pipeline"] = [auth, *stages, router]
    return edit


@pytest.fixture
def pii_gateway(start_sluice) -> Sluice:
    return start_sluice(with_guardrails(
        {"plugin": "metrics"},
        {"plugin": "pii", "config": {"detectors": {"secret": "redact", "email": "redact", "phone": "redact"}}},
        keys_extra=[{"name": "internal", "key": INTERNAL_KEY, "guardrails": {"pii": {"email": "restore", "secret": "block"}}}]),
        name="pii")


def chat_text(gw: Sluice) -> str:
    client = openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    pieces = [c.choices[0].delta.content for c in client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "go"}], stream=True) if c.choices and c.choices[0].delta.content]
    assert not any(leak in piece for piece in pieces for leak in LEAKS)
    return "".join(pieces)


def responses_text(gw: Sluice) -> str:
    client = openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    with client.responses.stream(model="local", input="go") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert not any(leak in delta for delta in deltas for leak in LEAKS)
    assert final.output_text == "".join(deltas)
    return "".join(deltas)


def anthropic_text(gw: Sluice) -> str:
    client = anthropic.Anthropic(base_url=gw.url, api_key=SLUICE_TEST_KEY, max_retries=0)
    with client.messages.stream(model="local", max_tokens=64, messages=[{"role": "user", "content": "go"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert not any(leak in piece for piece in pieces for leak in LEAKS)
    assert final.content[0].text == "".join(pieces)
    return "".join(pieces)


@pytest.mark.parametrize("client", [chat_text, responses_text, anthropic_text], ids=["chat", "responses", "anthropic"])
def test_values_split_across_stream_chunks_are_redacted_at_every_offset(pii_gateway: Sluice, fake, client):
    for pieces in splits(STREAMED):
        enqueue_stream(fake, pieces, responses=client is responses_text)
        assert client(pii_gateway) == REDACTED, pieces


def test_the_provider_sees_placeholders_and_refusals_name_only_the_detector(pii_gateway: Sluice, fake):
    client = openai.OpenAI(base_url=pii_gateway.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    client.chat.completions.create(model="local", messages=[
        {"role": "user", "content": "I am bob@example.org and bob@example.org, card 4111 1111 1111 1111"}])
    [seen] = fake.requests("/v1/chat/completions")
    assert seen["body"]["messages"][0]["content"] == "I am [EMAIL_1] and [EMAIL_1], card [CARD_1]"

    internal = openai.OpenAI(base_url=pii_gateway.base_url, api_key=INTERNAL_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        internal.chat.completions.create(model="local", messages=[{"role": "user", "content": f"use {SECRET}"}])
    assert refused.value.code == "pii_detected"
    assert "secret" in refused.value.message and SECRET not in refused.value.message
    assert SECRET not in pii_gateway.stdout_text() + pii_gateway.stderr_text()

    metrics = httpx.get(f"{pii_gateway.url}/metrics").text
    assert 'sluice_guardrail_actions_total{guardrail="pii",rule="card",action="redact",stage="request"}' in metrics
    assert "4111" not in metrics


def restored_chat(gw: Sluice, prompt: str) -> str:
    internal = openai.OpenAI(base_url=gw.base_url, api_key=INTERNAL_KEY, max_retries=0)
    return "".join(c.choices[0].delta.content or "" for c in internal.chat.completions.create(
        model="local", messages=[{"role": "user", "content": prompt}], stream=True) if c.choices)


def restored_responses(gw: Sluice, prompt: str) -> str:
    internal = openai.OpenAI(base_url=gw.base_url, api_key=INTERNAL_KEY, max_retries=0)
    with internal.responses.stream(model="local", input=prompt) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        assert stream.get_final_response().output_text == text
    return text


def restored_anthropic(gw: Sluice, prompt: str) -> str:
    internal = anthropic.Anthropic(base_url=gw.url, api_key=INTERNAL_KEY, max_retries=0)
    with internal.messages.stream(model="local", max_tokens=64, messages=[{"role": "user", "content": prompt}]) as stream:
        return "".join(stream.text_stream)


@pytest.mark.parametrize("client", [restored_chat, restored_responses, restored_anthropic], ids=["chat", "responses", "anthropic"])
def test_restore_gives_the_client_its_own_values_back_at_every_offset(pii_gateway: Sluice, fake, client):
    answer = "I wrote to [EMAIL_1] as asked."
    responses = client is restored_responses
    path = "/v1/responses" if responses else "/v1/chat/completions"
    for pieces in splits(answer):
        fake.reset()
        enqueue_stream(fake, pieces, responses=responses)
        assert client(pii_gateway, "write to dana@example.com") == "I wrote to dana@example.com as asked.", pieces
        [seen] = fake.requests(path)
        assert "dana" not in json.dumps(seen["body"]) and "write to [EMAIL_1]" in json.dumps(seen["body"])


# --- moderation -----------------------------------------------------------------------------

def moderation_manifest(config: dict):
    def edit(manifest: dict) -> None:
        manifest["models"]["omni-moderation-latest"] = {"targets": [{"provider": PROVIDER_NAME, "model": "omni-moderation-latest"}]}
        with_guardrails({"plugin": "moderation", "config": {"provider": PROVIDER_NAME, **config}})(manifest)
    return edit


def test_moderation_blocks_and_logs(start_sluice, fake):
    blocking = start_sluice(moderation_manifest({"thresholds": {"violence": 0.5}}), name="mod-block")
    client = openai.OpenAI(base_url=blocking.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="local", messages=[{"role": "user", "content": "I will kill the process"}])
    assert refused.value.code == "content_flagged" and "violence" in refused.value.message
    assert fake.requests("/v1/chat/completions") == []
    [asked] = fake.requests("/v1/moderations")
    assert asked["body"]["model"] == "omni-moderation-latest"
    assert client.chat.completions.create(model="local", messages=[{"role": "user", "content": "hello"}]).choices

    logging = start_sluice(moderation_manifest({"action": "log"}), name="mod-log")
    fake.reset()
    client = openai.OpenAI(base_url=logging.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    assert client.chat.completions.create(model="local", messages=[{"role": "user", "content": "you idiot"}]).choices
    assert logging.wait_for_log("moderation flagged")
    assert "idiot" not in logging.stdout_text()


@pytest.mark.parametrize("on_error,expected", [("allow", 200), ("deny", 503)])
def test_moderation_timeout_fails_open_or_closed(start_sluice, fake, on_error, expected):
    gw = start_sluice(moderation_manifest({"timeout_s": 0.3, "on_error": on_error}), name=f"mod-{on_error}")
    fake.enqueue(path="/v1/moderations", delay_ms=3000)
    started = time.monotonic()
    answer = httpx.post(f"{gw.base_url}/chat/completions", headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"},
                        json={"model": "local", "messages": [{"role": "user", "content": "hello"}]}, timeout=20)
    assert answer.status_code == expected, answer.text
    assert time.monotonic() - started < 2.5
    if expected == 503:
        assert answer.json()["error"]["code"] == "moderation_unavailable"


def test_the_moderations_front_door(start_sluice, fake):
    gw = start_sluice(moderation_manifest({"stages": []}), name="mod-door")
    client = openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    result = client.moderations.create(model="omni-moderation-latest", input=["a hateful remark", "a nice day"])
    assert [r.flagged for r in result.results] == [True, False]
    assert result.results[0].categories.hate is True
    [seen] = fake.requests("/v1/moderations")
    assert seen["body"]["model"] == "omni-moderation-latest"


# --- content-filter ---------------------------------------------------------------------------

def test_a_pathological_regex_input_is_answered_quickly_with_bounded_cpu(start_sluice, fake):
    def edit(manifest: dict) -> None:
        manifest["server"]["max_body_bytes"] = 4 * 1024 * 1024
        with_guardrails({"plugin": "content-filter", "config": {"patterns": ["(a+)+b", "(a|aa)*c"]}})(manifest)
    gw = start_sluice(edit, name="regex")

    def cpu_seconds() -> float:
        with open(f"/proc/{gw.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks

    before = cpu_seconds()
    started = time.monotonic()
    answer = httpx.post(f"{gw.base_url}/chat/completions", headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"},
                        json={"model": "local", "messages": [{"role": "user", "content": "a" * (1 << 20)}]}, timeout=60)
    elapsed, cpu = time.monotonic() - started, cpu_seconds() - before
    assert answer.status_code == 200, answer.text[:200]
    print(f"1 MiB of 'a' against 2 pathological patterns: {elapsed:.2f}s wall, {cpu:.2f}s CPU")
    assert elapsed < 30 and cpu < 30

    refused = httpx.post(f"{gw.base_url}/chat/completions", headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"},
                         json={"model": "local", "messages": [{"role": "user", "content": "a" * 1000 + "b"}]}, timeout=60)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "content_filtered"
