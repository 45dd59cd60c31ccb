"""The `cache` pipeline plugin: exact-match answers from memory or Redis, streams included.

Pipeline ``[metrics?, api-key-auth, rate-limit?, cache, router]`` in front of the fake provider,
whose request log says how many calls really went upstream. The contract under test:

- the key is front door + operation + public model + caller scope + the JSON body without
  ``user``/``stream``/``stream_options``/``metadata``, keys sorted: the same request streamed or
  not is one entry, and a hit is the stored answer (ids included);
- ``mode: deterministic`` caches only ``temperature: 0`` (and embeddings), ``all`` everything;
  ``models`` limits the public models; ``shared: false`` scopes entries by key name;
- a stream is stored once it completes (not when it fails or its client leaves) and replayed
  as a stream or as a whole answer; a whole answer is replayed to streaming clients as a
  synthesized stream the official SDKs parse;
- ``cache-control: no-cache`` skips the read (still stores), ``no-store`` the write;
  ``x-sluice-cache: hit|miss|bypass``;
- identical requests in flight share one upstream call; a failed one shares nothing;
- a Redis that is down or hangs costs misses, never errors or hangs;
- with ``charge_hits: false`` a hit costs no rate-limit tokens;
- metrics ``sluice_cache_requests_total{result}``, ``sluice_cache_evictions_total``, ``sluice_cache_bytes``.

Every test uses prompts of its own (a random tag), so tests sharing the module gateway never
meet each other's entries.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.constants import LIMITED_KEY, PROVIDER_NAME, SLUICE_TEST_KEY
from harness.policy import CHAT, EMBEDDINGS, MESSAGES, start_gateway, upstream_calls, with_pipeline
from harness.sse import anthropic_events, openai_chunks

KEYS = {"tester": SLUICE_TEST_KEY, "limited": LIMITED_KEY}
ANTHROPIC_VERSION = "2023-06-01"
UNLISTED = "unlisted"           # a public model the module gateway's cache does not list
TIMEOUT_S = 10
FAST_S = 2.0                    # no request may take longer while Redis is down (connections refused)
HUNG_S = 2.5                    # ... or hangs: a miss then waits out the read and the write timeout (2 x 0.5 s)
OMIT = object()                 # a field left out of the request body
ZERO = {"temperature": 0}       # the anthropic SDK (2.x) has no `temperature` argument: sent as extra_body


# --- manifests and gateways -------------------------------------------------------------------

def cached(fake, cache: dict | None = None, *, before: tuple[dict, ...] = (), metrics: bool = False) -> dict:
    """The default manifest with pipeline ``[metrics?, auth, *before, cache, router]``."""
    manifest = with_pipeline(fake.base_url, *before, {"plugin": "cache", "config": dict(cache or {})})
    if metrics:
        manifest["pipeline"].insert(0, {"plugin": "metrics"})
    manifest["models"][UNLISTED] = {"targets": [{"provider": PROVIDER_NAME, "model": "upstream-local"}]}
    return manifest


@pytest.fixture(scope="module")
def gw(sluice_bin, fake_provider, tmp_path_factory):
    """Defaults but for ``models`` (local and smol; ``unlisted`` is not cached), with metrics."""
    manifest = cached(fake_provider, {"models": ["local", "smol"]}, metrics=True)
    gateway = start_gateway(sluice_bin, manifest, tmp_path_factory.mktemp("cache"), "cache")
    yield gateway
    gateway.stop()


@pytest.fixture
def oai(gw) -> openai.OpenAI:
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S) as sdk:
        yield sdk


@pytest.fixture
def claude(gw) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=gw.url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=TIMEOUT_S) as sdk:
        yield sdk


# --- requests ---------------------------------------------------------------------------------

def prompt(tag: str = "cache") -> list[dict]:
    """A user turn no other test sends; the fake answers ``echo: <it>``."""
    return [{"role": "user", "content": f"{tag} {uuid.uuid4().hex[:10]}"}]


def echo(messages: list[dict]) -> str:
    return f"echo: {messages[-1]['content']}"


def _body(model: str, messages: list[dict], fields: dict, defaults: dict) -> dict:
    body = {"model": model, "messages": messages, **defaults, **fields}
    return {k: v for k, v in body.items() if v is not OMIT}


def _headers(key: str, headers: dict | None, anthropic_door: bool = False) -> dict:
    out = {"authorization": f"Bearer {KEYS[key]}"}
    if anthropic_door:
        out["anthropic-version"] = ANTHROPIC_VERSION
    return {**out, **(headers or {})}


def chat(gw, messages, *, model="local", key="tester", headers=None, timeout=TIMEOUT_S, **fields) -> httpx.Response:
    """One chat request (``temperature: 0`` unless given; OMIT leaves a field out), read to the end."""
    body = _body(model, messages, fields, {"temperature": 0})
    with httpx.Client(base_url=gw.url, timeout=timeout, trust_env=False) as c:
        resp = c.post(CHAT, json=body, headers=_headers(key, headers))
        resp.read()
        return resp


def messages_request(gw, messages, *, model="local", key="tester", headers=None, **fields) -> httpx.Response:
    """One Anthropic Messages request through the gateway's /v1/messages, read to the end."""
    body = _body(model, messages, fields, {"temperature": 0, "max_tokens": 64})
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        resp = c.post(MESSAGES, json=body, headers=_headers(key, headers, anthropic_door=True))
        resp.read()
        return resp


def cache_header(resp) -> str | None:
    return resp.headers.get("x-sluice-cache")


def content(resp: httpx.Response) -> str:
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:300]}"
    return resp.json()["choices"][0]["message"]["content"]


def streamed_text(chunks: list[dict]) -> str:
    return "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))


def calls(fake) -> int:
    return len(upstream_calls(fake))


def eventually(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- the key, and what a hit is ---------------------------------------------------------------

def test_repeats_are_answered_from_the_cache(gw, fake):
    messages = prompt()
    answers = [chat(gw, messages) for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5, [r.text[:200] for r in answers]
    assert [cache_header(r) for r in answers] == ["miss"] + ["hit"] * 4
    assert calls(fake) == 1
    first = answers[0].json()
    assert content(answers[0]) == echo(messages)
    for hit in answers[1:]:
        assert hit.json() == first, "a hit is not the stored answer"  # ids and created included
        assert hit.headers.get("content-type", "").startswith("application/json")


def test_what_the_key_is_made_of(gw, fake):
    """Volatile fields and key order do not matter; ``n``, other fields and the front door do."""
    messages = prompt("key")
    first = chat(gw, messages, max_tokens=50)
    assert cache_header(first) == "miss"

    # The same request with its keys in another order, and with `user` and `metadata` added.
    raw = ('{"max_tokens": 50, "temperature": 0, "messages": %s, "model": "local"}' % json.dumps(messages)).encode()
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        reordered = c.post(CHAT, content=raw, headers={**_headers("tester", None), "content-type": "application/json"})
    assert cache_header(reordered) == "hit", reordered.text[:300]
    assert reordered.json() == first.json()
    volatile = chat(gw, messages, max_tokens=50, user="someone-else", metadata={"run": "42"})
    assert cache_header(volatile) == "hit"
    assert calls(fake) == 1

    assert cache_header(chat(gw, messages, max_tokens=51)) == "miss"      # another field value
    assert cache_header(chat(gw, messages, max_tokens=50, n=1)) == "miss"  # `n` stays in the key
    door = messages_request(gw, messages, max_tokens=50)                   # another front door
    assert door.status_code == 200, door.text[:300]
    assert cache_header(door) == "miss"
    assert door.json()["type"] == "message", "an OpenAI answer was served to the Anthropic front door"
    assert cache_header(chat(gw, messages, model="smol", max_tokens=50)) == "miss"  # another model
    assert calls(fake) == 5


def test_embeddings_are_cached(gw, fake):
    """Embeddings have no temperature; deterministic mode caches them (`sluice plugins`)."""
    body = {"model": "local", "input": [f"embed {uuid.uuid4().hex[:8]}", "second text"]}
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        answers = [c.post(EMBEDDINGS, json=body, headers=_headers("tester", None)) for _ in range(3)]
    assert [r.status_code for r in answers] == [200] * 3, [r.text[:200] for r in answers]
    assert [cache_header(r) for r in answers] == ["miss", "hit", "hit"]
    assert answers[1].json() == answers[0].json() == answers[2].json()
    assert len(answers[0].json()["data"]) == 2
    assert calls(fake) == 1


# --- coalescing -------------------------------------------------------------------------------

def _together(n: int, job) -> list:
    """Runs ``job(client)`` on n threads released at the same moment; the results in order."""
    barrier = threading.Barrier(n)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    with httpx.Client(timeout=TIMEOUT_S, trust_env=False, limits=limits) as c:
        def run(_):
            barrier.wait(5)
            return job(c)
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(run, range(n)))


@pytest.mark.parametrize("stream,n", [(False, 50), (True, 20)], ids=["whole", "stream"])
def test_identical_requests_in_flight_share_one_call(gw, fake, stream, n):
    messages = prompt("together")
    fake.enqueue(delay_ms=500, path=CHAT)  # the leader's call is slow: everyone else arrives meanwhile
    body = {"model": "local", "messages": messages, "temperature": 0, **({"stream": True} if stream else {})}

    def one(c: httpx.Client):
        resp = c.post(gw.url + CHAT, json=body, headers=_headers("tester", None))
        if not stream:
            return resp.status_code, cache_header(resp), content(resp) if resp.status_code == 200 else resp.text
        chunks, done = openai_chunks(resp.text)
        return resp.status_code, cache_header(resp), streamed_text(chunks) if done else f"no [DONE]: {resp.text[-200:]}"

    started = time.monotonic()
    results = _together(n, one)
    took = time.monotonic() - started
    assert [status for status, _, _ in results] == [200] * n, [r for r in results if r[0] != 200][:3]
    assert {text for _, _, text in results} == {echo(messages)}
    assert calls(fake) == 1, f"{calls(fake)} upstream calls for {n} identical requests in flight"
    headers = [h for _, h, _ in results]
    assert headers.count("miss") == 1 and headers.count("hit") == n - 1, headers
    assert took < 8, f"{n} coalesced requests took {took:.1f}s"


def test_a_failed_call_is_not_shared(gw, fake):
    """The leader's call fails (500 after 0.5 s): the waiters go upstream themselves and succeed."""
    messages = prompt("fails-together")
    fake.enqueue(status=500, delay_ms=500, path=CHAT)
    results = _together(5, lambda c: c.post(gw.url + CHAT, json={"model": "local", "messages": messages,
                                                                   "temperature": 0},
                                            headers=_headers("tester", None)))
    statuses = sorted(r.status_code for r in results)
    assert statuses[:4] == [200] * 4 and statuses[4] >= 500, [(r.status_code, r.text[:120]) for r in results]
    assert all(content(r) == echo(messages) for r in results if r.status_code == 200)
    assert 2 <= calls(fake) <= 5, f"{calls(fake)} upstream calls"
    before = calls(fake)
    again = chat(gw, messages)
    assert cache_header(again) == "hit" and content(again) == echo(messages)
    assert calls(fake) == before


# --- cache-control, bypass, ttl -----------------------------------------------------------------

def test_no_cache_skips_the_read_but_stores(gw, fake):
    messages = prompt("no-cache")
    fresh = chat(gw, messages, headers={"cache-control": "no-cache"})
    assert cache_header(fresh) == "bypass", dict(fresh.headers)
    assert calls(fake) == 1
    stored = chat(gw, messages)
    assert cache_header(stored) == "hit", "the no-cache answer was not stored"
    assert stored.json() == fresh.json()

    again = chat(gw, messages, headers={"cache-control": "no-cache"})  # cached, but not read
    assert cache_header(again) == "bypass"
    assert content(again) == echo(messages)
    assert calls(fake) == 2
    latest = chat(gw, messages)  # the no-cache answer replaced the entry
    assert cache_header(latest) == "hit" and latest.json()["id"] == again.json()["id"]
    assert calls(fake) == 2


def test_no_store_skips_the_write(gw, fake):
    messages = prompt("no-store")
    unstored = chat(gw, messages, headers={"cache-control": "no-store"})
    assert unstored.status_code == 200 and cache_header(unstored) == "miss", dict(unstored.headers)
    both = chat(gw, messages, headers={"cache-control": "no-cache, no-store"})
    assert both.status_code == 200 and cache_header(both) == "bypass"
    after = chat(gw, messages)
    assert cache_header(after) == "miss", "a no-store answer was stored"
    assert calls(fake) == 3
    assert cache_header(chat(gw, messages)) == "hit"
    assert calls(fake) == 3


def test_only_deterministic_requests_of_listed_models(gw, fake):
    """mode deterministic: temperature 0.7 or absent is a bypass; so is a model not in ``models``."""
    warm = prompt("warm")
    for fields in ({"temperature": 0.7}, {"temperature": OMIT}, {"temperature": 0.7}):
        resp = chat(gw, warm, **fields)
        assert resp.status_code == 200 and cache_header(resp) == "bypass", (fields, dict(resp.headers))
    assert calls(fake) == 3
    unlisted = prompt("unlisted")
    for _ in range(2):
        resp = chat(gw, unlisted, model=UNLISTED)
        assert resp.status_code == 200 and cache_header(resp) == "bypass", dict(resp.headers)
    assert calls(fake) == 5
    zero = [chat(gw, warm, temperature=0.0) for _ in range(2)]  # 0.0 is 0
    assert [cache_header(r) for r in zero] == ["miss", "hit"]
    assert calls(fake) == 6


def test_ttl(start_sluice, fake):
    gw = start_sluice(cached(fake, {"ttl_s": 1}))
    messages = prompt("ttl")
    assert [cache_header(chat(gw, messages)) for _ in range(2)] == ["miss", "hit"]
    time.sleep(1.2)
    expired = chat(gw, messages)
    assert cache_header(expired) == "miss", "an entry outlived its ttl_s"
    assert calls(fake) == 2
    assert cache_header(chat(gw, messages)) == "hit"


# --- scope and mode ---------------------------------------------------------------------------

def test_entries_are_scoped_by_key(gw, fake):
    messages = prompt("scoped")
    first = chat(gw, messages, model="smol", key="tester")
    other = chat(gw, messages, model="smol", key="limited")
    assert (cache_header(first), cache_header(other)) == ("miss", "miss"), "one key read another's entry"
    assert calls(fake) == 2
    assert cache_header(chat(gw, messages, model="smol", key="tester")) == "hit"
    assert cache_header(chat(gw, messages, model="smol", key="limited")) == "hit"
    assert calls(fake) == 2


def test_shared_entries_and_mode_all(start_sluice, fake):
    gw = start_sluice(cached(fake, {"shared": True, "mode": "all"}))
    messages = prompt("shared")
    first = chat(gw, messages, model="smol", key="tester")
    other = chat(gw, messages, model="smol", key="limited")
    assert (cache_header(first), cache_header(other)) == ("miss", "hit")
    assert other.json() == first.json()
    assert calls(fake) == 1

    warm = prompt("mode-all")
    answers = [chat(gw, warm, temperature=0.7) for _ in range(3)] + [chat(gw, warm, temperature=OMIT)]
    assert [cache_header(r) for r in answers] == ["miss", "hit", "hit", "miss"]
    assert answers[1].json() == answers[0].json()
    assert calls(fake) == 3


# --- streams: the openai SDK ------------------------------------------------------------------

def _sdk_stream(oai: openai.OpenAI, messages, **fields) -> tuple[str | None, list]:
    raw = oai.chat.completions.with_raw_response.create(model="local", messages=messages, temperature=0,
                                                        stream=True, **fields)
    return raw.headers.get("x-sluice-cache"), list(raw.parse())


def _sdk_whole(oai: openai.OpenAI, messages):
    raw = oai.chat.completions.with_raw_response.create(model="local", messages=messages, temperature=0)
    return raw.headers.get("x-sluice-cache"), raw.parse()


def _sdk_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_stream_is_stored_and_replayed(oai, fake):
    messages = prompt("stream-first")
    state, first = _sdk_stream(oai, messages)
    assert state == "miss"
    text = _sdk_text(first)
    assert text == echo(messages)
    assert calls(fake) == 1

    state, again = _sdk_stream(oai, messages)
    assert state == "hit"
    assert _sdk_text(again) == text
    assert {c.id for c in again} == {first[0].id}, "the replay is not the recorded stream"
    assert [c.choices[0].finish_reason for c in again if c.choices][-1] == "stop"
    assert not any(c.usage for c in again), "a usage chunk the client did not ask for"

    state, whole = _sdk_whole(oai, messages)
    assert state == "hit"
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content == text
    assert whole.choices[0].finish_reason == "stop"
    assert calls(fake) == 1


@pytest.mark.parametrize("first_asked_usage", [False, True], ids=["first-without-usage", "first-with-usage"])
def test_a_replayed_stream_reports_usage(oai, fake, first_asked_usage):
    """Whoever streamed first, a later client that asks include_usage gets the usage chunk, and a
    non-streaming client a chat.completion with its ``usage`` (the gateway asked upstream for it)."""
    messages = prompt("stream-usage")
    fields = {"stream_options": {"include_usage": True}} if first_asked_usage else {}
    state, first = _sdk_stream(oai, messages, **fields)
    assert state == "miss" and _sdk_text(first) == echo(messages)
    words = len(echo(messages).split())

    state, with_usage = _sdk_stream(oai, messages, stream_options={"include_usage": True})
    assert state == "hit" and _sdk_text(with_usage) == echo(messages)
    assert with_usage[-1].usage is not None, \
        "include_usage asked, but the replayed stream has no usage chunk (it was recorded without one)"
    assert with_usage[-1].usage.completion_tokens == words and with_usage[-1].choices == []

    state, without = _sdk_stream(oai, messages)
    assert state == "hit" and not any(c.usage for c in without), "a usage chunk the client did not ask for"

    state, whole = _sdk_whole(oai, messages)
    assert state == "hit"
    assert whole.usage is not None, "the chat.completion made from a recorded stream has no usage"
    assert whole.usage.completion_tokens == words
    assert calls(fake) == 1


def test_a_whole_answer_is_replayed_as_a_stream(gw, oai, fake):
    messages = prompt("whole-first")
    state, whole = _sdk_whole(oai, messages)
    assert state == "miss" and whole.choices[0].message.content == echo(messages)

    state, chunks = _sdk_stream(oai, messages)
    assert state == "hit"
    assert _sdk_text(chunks) == echo(messages)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert calls(fake) == 1

    # On the wire: role chunk, content chunk, finish chunk, usage chunk only if asked, [DONE].
    for include_usage in (False, True):
        fields = {"stream": True, **({"stream_options": {"include_usage": True}} if include_usage else {})}
        resp = chat(gw, messages, **fields)
        assert resp.status_code == 200 and cache_header(resp) == "hit"
        assert resp.headers.get("content-type", "").startswith("text/event-stream"), dict(resp.headers)
        events, done = openai_chunks(resp.text)
        assert done, f"no data: [DONE]: {resp.text[-300:]}"
        assert all(e["object"] == "chat.completion.chunk" for e in events), events
        assert events[0]["choices"][0]["delta"].get("role") == "assistant", events[0]
        assert streamed_text(events) == echo(messages)
        finishing = [e for e in events if e["choices"] and e["choices"][0].get("finish_reason")]
        assert [e["choices"][0]["finish_reason"] for e in finishing] == ["stop"], events
        usage = [e for e in events if e.get("usage")]
        if include_usage:
            assert usage and usage[-1]["choices"] == [] and usage[-1] is events[-1], events
            assert usage[-1]["usage"]["total_tokens"] == whole.usage.total_tokens, usage
        else:
            assert not usage, f"a usage chunk the client did not ask for: {usage}"
    assert calls(fake) == 1


# --- streams: the anthropic SDK ---------------------------------------------------------------

def _claude_text(events) -> str:
    return "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")


def test_anthropic_stream_is_stored_and_replayed(claude, fake):
    messages = prompt("claude-stream")
    raw = claude.messages.with_raw_response.create(model="local", max_tokens=64, extra_body=ZERO,
                                                   messages=messages, stream=True)
    assert raw.headers.get("x-sluice-cache") == "miss"
    text = _claude_text(list(raw.parse()))
    assert text == echo(messages)

    with claude.messages.stream(model="local", max_tokens=64, extra_body=ZERO, messages=messages) as s:
        assert s.response.headers.get("x-sluice-cache") == "hit"
        assert s.get_final_text() == text
        assert s.get_final_message().stop_reason == "end_turn"

    raw = claude.messages.with_raw_response.create(model="local", max_tokens=64, extra_body=ZERO, messages=messages)
    assert raw.headers.get("x-sluice-cache") == "hit"
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == text
    assert message.stop_reason == "end_turn"
    assert message.usage is not None and message.usage.output_tokens == len(text.split()), message.usage
    assert calls(fake) == 1


def test_anthropic_whole_answer_is_replayed_as_a_stream(gw, claude, fake):
    messages = prompt("claude-whole")
    raw = claude.messages.with_raw_response.create(model="local", max_tokens=64, extra_body=ZERO, messages=messages)
    assert raw.headers.get("x-sluice-cache") == "miss"
    whole = raw.parse()
    assert whole.content[0].text == echo(messages)

    with claude.messages.stream(model="local", max_tokens=64, extra_body=ZERO, messages=messages) as s:
        assert s.response.headers.get("x-sluice-cache") == "hit"
        final = s.get_final_message()
    assert final.id == whole.id
    assert final.content[0].text == echo(messages) and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens

    resp = messages_request(gw, messages, stream=True)  # the event sequence on the wire
    assert resp.status_code == 200 and cache_header(resp) == "hit"
    kinds = [e["type"] for e in anthropic_events(resp.text) if e["type"] != "ping"]
    assert kinds[:2] == ["message_start", "content_block_start"], kinds
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds
    assert set(kinds[2:-3]) == {"content_block_delta"}, kinds
    assert calls(fake) == 1


# --- what is never stored ---------------------------------------------------------------------

def test_a_failed_answer_is_not_cached(gw, fake):
    messages = prompt("fault")
    fake.enqueue(status=500, path=CHAT)
    failed = chat(gw, messages)
    assert failed.status_code >= 500, failed.text[:300]
    ok = chat(gw, messages)
    assert ok.status_code == 200 and cache_header(ok) == "miss", "a failed answer was served from the cache"
    assert calls(fake) == 2
    assert cache_header(chat(gw, messages)) == "hit"
    assert calls(fake) == 2


def test_a_cut_stream_is_not_cached(gw, fake):
    messages = prompt("cut")
    fake.enqueue(drop_after_chunks=2, path=CHAT)
    try:
        cut = chat(gw, messages, stream=True)
        chunks, done = openai_chunks(cut.text) if cut.status_code == 200 else ([], False)
        assert not (done and streamed_text(chunks) == echo(messages)), "the cut stream looked complete"
    except httpx.TransportError:
        pass  # the gateway may also cut its own stream
    assert fake.wait_for(lambda rs: any(r["dropped"] for r in rs), timeout=2)
    again = chat(gw, messages, stream=True, timeout=5)
    assert again.status_code == 200 and cache_header(again) == "miss", "a cut stream was stored"
    chunks, done = openai_chunks(again.text)
    assert done and streamed_text(chunks) == echo(messages)
    assert calls(fake) == 2
    assert cache_header(chat(gw, messages, stream=True)) == "hit"
    assert calls(fake) == 2


def test_a_stream_whose_client_left_is_not_cached(gw, fake):
    messages = prompt("left")
    fake.enqueue(chunk_delay_ms=200, stream_words=20, path=CHAT)
    body = {"model": "local", "messages": messages, "temperature": 0, "stream": True}
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        with c.stream("POST", CHAT, json=body, headers=_headers("tester", None)) as resp:
            assert resp.status_code == 200
            next(resp.iter_bytes())  # the first event, then hang up
    assert fake.wait_for(lambda rs: any(r["client_disconnected"] for r in rs), timeout=5), \
        "the gateway did not cancel the upstream stream when its client left"
    started = time.monotonic()
    again = chat(gw, messages, timeout=5)  # nobody may be left waiting for the abandoned call
    assert time.monotonic() - started < 3
    assert again.status_code == 200 and cache_header(again) == "miss", "a stream its client left was stored"
    assert content(again) == echo(messages)
    assert calls(fake) == 2


# --- size bounds and metrics ------------------------------------------------------------------

def _metrics(gw) -> dict[str, dict[tuple, float]]:
    status, body = gw.get("/metrics")
    assert status == 200, f"GET /metrics: {status} {body[:200]!r}"
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_memory_bounds_and_metrics(start_sluice, fake):
    gw = start_sluice(cached(fake, {"max_bytes": 4096, "max_entry_bytes": 1500}, metrics=True))
    big = prompt("big")
    fake.enqueue(stream_words=600, path=CHAT)  # a ~4 kB answer: over max_entry_bytes
    assert len(content(chat(gw, big))) > 1500
    assert cache_header(chat(gw, big)) == "miss", "an answer over max_entry_bytes was stored"

    prompts = [prompt(f"lru{i}") for i in range(12)]  # a dozen small answers cannot all fit in 4 kB
    assert [cache_header(chat(gw, p)) for p in prompts] == ["miss"] * 12
    assert cache_header(chat(gw, prompts[-1])) == "hit"
    assert cache_header(chat(gw, prompts[0])) == "miss", "the least recently used entry was not evicted"
    chat(gw, prompts[0], temperature=0.5)  # one bypass
    assert calls(fake) == 2 + 12 + 2

    m = _metrics(gw)
    requests = {dict(k).get("result"): v for k, v in m.get("sluice_cache_requests_total", {}).items()}
    assert requests == {"miss": 15, "hit": 1, "bypass": 1}, m.get("sluice_cache_requests_total")
    assert m.get("sluice_cache_evictions_total", {}).get((), 0) >= 1, m.get("sluice_cache_evictions_total")
    size = m.get("sluice_cache_bytes", {}).get(())
    assert size is not None and 0 < size <= 4096, f"sluice_cache_bytes {size}"


# --- Redis ------------------------------------------------------------------------------------

def test_replicas_share_the_cache_through_redis(start_sluice, fake, redis_server):
    config = {"redis_url": redis_server.url}
    one, two = (start_sluice(cached(fake, config), name=f"replica{i}-") for i in range(2))
    messages = prompt("replicas")
    first = chat(one, messages)
    assert cache_header(first) == "miss"
    second = chat(two, messages)
    assert cache_header(second) == "hit", "the second replica did not read the first one's entry"
    assert second.json() == first.json()
    assert calls(fake) == 1
    keys = redis_server.keys()
    assert keys and all(k.startswith("sluice:cache:") for k in keys), keys
    ttl = redis_server.command("PTTL", keys[0])
    assert 0 < ttl <= 300_000, f"PTTL {ttl}: entries must expire after ttl_s"

    streamed = prompt("replicas-stream")  # a stream stored by one replica, replayed by the other
    chunks, done = openai_chunks(chat(two, streamed, stream=True).text)
    assert done
    # The stream is written to Redis once it has ended, just after the client saw its end.
    assert eventually(lambda: len(redis_server.keys()) == 2), f"the stream was not stored: {redis_server.keys()}"
    replay = chat(one, streamed, stream=True)
    assert cache_header(replay) == "hit"
    assert streamed_text(openai_chunks(replay.text)[0]) == streamed_text(chunks) == echo(streamed)
    assert calls(fake) == 2


def _fast(gw, messages, limit: float = FAST_S, **fields) -> httpx.Response:
    started = time.monotonic()
    resp = chat(gw, messages, timeout=limit + 3, **fields)
    took = time.monotonic() - started
    assert took < limit, f"a request took {took:.2f}s with Redis in trouble (limit {limit}s)"
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:300]}"
    return resp


@pytest.mark.parametrize("outage", ["killed", "hanging"])
def test_redis_outage_costs_only_misses(start_sluice, fake, redis_server, outage):
    gw = start_sluice(cached(fake, {"redis_url": redis_server.url}))
    cached_before = prompt("before-outage")
    assert [cache_header(_fast(gw, cached_before)) for _ in range(2)] == ["miss", "hit"]

    redis_server.kill() if outage == "killed" else redis_server.pause()
    limit = FAST_S if outage == "killed" else HUNG_S
    try:
        before = calls(fake)
        other = prompt("during-outage")
        answers = [_fast(gw, cached_before, limit), _fast(gw, other, limit), _fast(gw, other, limit),
                   _fast(gw, other, limit, stream=True)]
        assert all(cache_header(r) != "hit" for r in answers), [cache_header(r) for r in answers]
        assert content(answers[0]) == echo(cached_before) and content(answers[1]) == echo(other)
        chunks, done = openai_chunks(answers[3].text)
        assert done and streamed_text(chunks) == echo(other)
        assert calls(fake) - before == len(answers), "a request was answered without Redis or the provider"
    finally:
        redis_server.restart() if outage == "killed" else redis_server.resume()

    after = prompt("after-outage")  # caching comes back with Redis
    deadline = time.monotonic() + 5
    while True:
        states = [cache_header(_fast(gw, after)) for _ in range(2)]
        if states == ["miss", "hit"] or time.monotonic() > deadline:
            break
        after = prompt("after-outage")
        time.sleep(0.2)
    assert states == ["miss", "hit"], f"no caching 5 s after Redis came back: {states}"


# --- rate limits ------------------------------------------------------------------------------

@pytest.mark.parametrize("charge_hits", [False, True])
def test_hits_cost_no_tokens(start_sluice, fake, charge_hits):
    """60 tokens a minute; each answer is 42 tokens (2 prompt + 40 words), each request reserves ~15.
    Free hits: twenty pass after the miss that spent 42, while two more misses exhaust the bucket.
    Charged hits (charge_hits true): the bucket runs dry within the first hits."""
    limit = {"plugin": "rate-limit", "config": {"tokens_per_minute": 60, "estimated_output_tokens": 10}}
    gw = start_sluice(cached(fake, {"charge_hits": charge_hits}, before=(limit,)))
    messages = prompt("tokens")
    fake.enqueue(stream_words=40, path=CHAT, count=3)
    miss = chat(gw, messages)
    assert miss.status_code == 200 and cache_header(miss) == "miss", miss.text[:300]
    assert upstream_calls(fake)[0]["usage"]["total_tokens"] == 42
    time.sleep(0.1)  # the settlement may land just after the last byte of the answer

    hits = []
    for _ in range(20):
        resp = chat(gw, messages)
        hits.append((resp.status_code, cache_header(resp)))
        if resp.status_code == 429:
            break
    if charge_hits:
        assert hits[-1][0] == 429 and len(hits) <= 3, f"charged hits did not run the bucket dry: {hits}"
        assert calls(fake) == 1
        return
    assert hits == [(200, "hit")] * 20, f"hits consumed tokens: {hits}"
    assert calls(fake) == 1
    misses = [chat(gw, prompt("tokens-miss")).status_code for _ in range(2)]
    assert misses == [200, 429], f"misses were not limited: {misses}"
