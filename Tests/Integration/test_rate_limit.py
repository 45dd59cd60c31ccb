"""The `rate-limit` pipeline plugin: token buckets for requests and tokens, in memory or in Redis.

A request reserves one request and an estimate of its tokens (prompt chars/4 + max_tokens, or
``estimated_output_tokens``) up front; when the answer or the stream ends, the reservation is
settled with the usage the provider reported. The fake provider's usage is predictable: prompt
tokens = words of the messages, completion tokens = words of the reply (``echo: <last user
message>``, or exactly N words with the fault ``stream_words=N``).

With ``redis_url`` the gateways share their buckets; when Redis is gone or hangs, ``allow``
serves (and logs) and ``deny`` answers 503 — quickly, never hanging — and the limits return
with Redis.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

import httpx
import openai
import pytest

from harness.constants import LIMITED_KEY, SLUICE_TEST_KEY
from harness.manifest import write_manifest
from harness.policy import CHAT, MESSAGES, anthropic_error, openai_error, upstream_calls, with_pipeline
from harness.sluice import run_cli

HELLO = [{"role": "user", "content": "hello there"}]  # 2 prompt tokens; the reply "echo: hello there" is 3
KEYS = {"tester": SLUICE_TEST_KEY, "limited": LIMITED_KEY}
REQUEST_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
TOKEN_HEADERS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
FAST_S = 2.0  # no request may take longer, whatever state the store is in


def rate_limited(fake, **config) -> dict:
    return with_pipeline(fake.base_url, {"plugin": "rate-limit", "config": config})


def ask(gw, model: str = "local", key: str = "tester", timeout: float = 10, **fields) -> httpx.Response:
    """One chat request (whole or streamed, read to the end) as a raw response."""
    body = {"model": model, "messages": HELLO, **fields}
    headers = {"authorization": f"Bearer {KEYS[key]}"}
    with httpx.Client(base_url=gw.url, timeout=timeout, trust_env=False) as c:
        resp = c.post(CHAT, json=body, headers=headers)
        resp.read()
        return resp


def timed_ask(gw, **kwargs) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    resp = ask(gw, timeout=FAST_S + 3, **kwargs)
    return resp, time.monotonic() - start


def sse_data(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def remaining(resp: httpx.Response, kind: str = "requests") -> int:
    value = resp.headers.get(f"x-ratelimit-remaining-{kind}")
    assert value is not None, f"no x-ratelimit-remaining-{kind}: {dict(resp.headers)}"
    return int(value)


def assert_429(resp: httpx.Response) -> int:
    """A rate-limit refusal in OpenAI's shape; returns its retry-after (whole seconds, ≥ 1)."""
    assert resp.status_code == 429, f"{resp.status_code}: {resp.text[:300]}"
    error = openai_error(resp.json())
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded"), error
    retry_after = resp.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), f"retry-after {retry_after!r}: {dict(resp.headers)}"
    assert int(retry_after) >= 1
    assert resp.headers.get("x-sluice-provider") == "none"
    return int(retry_after)


# --- in memory: requests ------------------------------------------------------------------------

def test_requests_per_minute(start_sluice, fake):
    gw = start_sluice(rate_limited(fake, requests_per_minute=5))
    answers = [ask(gw) for _ in range(5)]
    for resp in answers:
        assert resp.status_code == 200, resp.text
        for name in REQUEST_HEADERS:
            assert resp.headers.get(name), f"no {name} on a 200: {dict(resp.headers)}"
        assert resp.headers["x-ratelimit-limit-requests"] == "5"
    assert [remaining(r) for r in answers] == [4, 3, 2, 1, 0]

    refused = ask(gw)
    retry_after = assert_429(refused)
    assert retry_after <= 12, f"retry-after {retry_after}: one request comes back every 12 s at 5 per minute"
    assert refused.headers.get("x-ratelimit-limit-requests") == "5"
    assert remaining(refused) == 0

    streamed = ask(gw, stream=True)  # refused before a stream starts: a JSON 429, not SSE
    assert_429(streamed)
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10) as sdk:
        with pytest.raises(openai.RateLimitError) as err:
            sdk.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 429
    assert len(upstream_calls(fake)) == 5


def test_refusal_on_the_anthropic_front_door(start_sluice, fake):
    gw = start_sluice(rate_limited(fake, requests_per_minute=1))
    body = {"model": "local", "max_tokens": 16, "messages": HELLO}
    headers = {"authorization": f"Bearer {SLUICE_TEST_KEY}", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=gw.url, timeout=10, trust_env=False) as c:
        first = c.post(MESSAGES, json=body, headers=headers)
        second = c.post(MESSAGES, json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers.get("x-ratelimit-remaining-requests") == "0"
    assert second.status_code == 429, second.text
    assert anthropic_error(second.json())["type"] == "rate_limit_error"
    assert int(second.headers.get("retry-after", "0")) >= 1
    assert len(upstream_calls(fake)) == 1


@pytest.mark.parametrize("by", ["key", "model", "global"])
def test_buckets_by(start_sluice, fake, by):
    """rpm 2: each bucket takes two requests. ``key`` separates keys, ``model`` models, ``global`` nothing."""
    gw = start_sluice(rate_limited(fake, requests_per_minute=2, by=by))
    statuses = lambda calls: [ask(gw, model=m, key=k).status_code for m, k in calls]  # noqa: E731
    a, b = ("local", "tester"), ("smol", "limited")  # another model *and* another key
    same_key_other_model = ("smol", "tester")
    if by == "key":
        assert statuses([a, same_key_other_model, a]) == [200, 200, 429]
        assert statuses([b, b, b]) == [200, 200, 429]
    elif by == "model":
        assert statuses([a, ("local", "tester"), a]) == [200, 200, 429]
        assert statuses([same_key_other_model, b, b]) == [200, 200, 429]
    else:
        assert statuses([a, b, a, b]) == [200, 200, 429, 429]


def test_a_limit_is_required(sluice_bin, fake, tmp_path):
    """No limit at all, an unknown ``by`` or ``on_store_error``: the manifest is refused by `sluice check`."""
    for name, config in [("none", {}), ("by", {"requests_per_minute": 5, "by": "user"}),
                         ("store", {"requests_per_minute": 5, "on_store_error": "maybe"}),
                         ("zero", {"requests_per_minute": 0})]:
        path = write_manifest(rate_limited(fake, **config), tmp_path / f"rate-limit-{name}.json")
        done = run_cli(sluice_bin, "check", str(path))
        output = done.stdout + done.stderr
        assert done.returncode != 0, f"{config} accepted:\n{output}"
        assert "pipeline[1]" in output, output


# --- in memory: tokens --------------------------------------------------------------------------

def test_reservation_is_given_back_when_the_answer_is_small(start_sluice, fake):
    """Each request reserves ~253 tokens (max_tokens 250) of 600 but uses 5: all ten pass."""
    gw = start_sluice(rate_limited(fake, tokens_per_minute=600))
    answers = []
    for _ in range(10):
        if answers:
            time.sleep(0.05)  # the settlement may land just after the last byte of the answer
        resp = ask(gw, max_tokens=250)
        assert resp.status_code == 200, f"request {len(answers) + 1}: {resp.status_code} {resp.text[:200]}"
        answers.append(resp)
    for name in TOKEN_HEADERS:
        assert answers[-1].headers.get(name), f"no {name}: {dict(answers[-1].headers)}"
    assert answers[-1].headers["x-ratelimit-limit-tokens"] == "600"
    # Nine settled at 5 tokens each, plus at most this request's reservation (~253), plus slack.
    assert 600 - 9 * 5 - 253 - 30 <= remaining(answers[-1], "tokens") <= 600 - 9 * 5 + 20, dict(answers[-1].headers)
    assert [r["usage"]["total_tokens"] for r in upstream_calls(fake)] == [5] * 10


@pytest.mark.parametrize("stream,include_usage", [(False, None), (True, None), (True, True)],
                         ids=["whole", "stream", "stream-with-usage"])
@pytest.mark.parametrize("limit", ["tokens_per_minute", "tokens_per_day"])
def test_real_usage_is_charged(start_sluice, fake, limit, stream, include_usage):
    """The reservation is ~13 tokens (estimated_output_tokens 10), but the answers are 400 words:
    after two of them (2 × 402 tokens > 600) the bucket is spent and the third is refused."""
    gw = start_sluice(rate_limited(fake, estimated_output_tokens=10, **{limit: 600}))
    fields = {"stream": True} if stream else {}
    if include_usage:
        fields["stream_options"] = {"include_usage": True}
    fake.enqueue(stream_words=400, path=CHAT, count=2)
    first = ask(gw, **fields)
    assert first.status_code == 200, first.text
    time.sleep(0.1)  # the settlement may land just after the last byte of the answer
    second = ask(gw, **fields)
    assert second.status_code == 200, f"the second request was refused: {second.text[:300]}"
    time.sleep(0.1)
    usage = [r["usage"]["total_tokens"] for r in upstream_calls(fake)]
    assert usage == [402, 402], usage
    if stream:
        events = sse_data(second.text)
        assert events[-1] == "[DONE]", events[-3:]
        if include_usage:  # the client asked for the usage chunk: it gets the provider's numbers
            usage_chunks = [json.loads(e)["usage"] for e in events[:-1] if json.loads(e).get("usage")]
            assert usage_chunks and usage_chunks[-1]["total_tokens"] == 402, usage_chunks
    if limit == "tokens_per_minute":  # (a daily-only limit's headers: test_token_headers_with_only_a_daily_limit)
        # After the first was settled at 402 (not its ~13-token reservation): 600 - 402 = 198, less ~13 now.
        assert 150 <= remaining(second, "tokens") <= 215, dict(second.headers)

    refused = ask(gw, **fields)
    retry_after = assert_429(refused)
    if limit == "tokens_per_day":  # 600 a day: ≥ 13 missing tokens take over half an hour to come back
        assert retry_after >= 60, retry_after
    assert len(upstream_calls(fake)) == 2


def test_token_headers_with_only_a_daily_limit(start_sluice, fake):
    """The contract: the -tokens trio is sent "when token limits are set"; tokens_per_day is one."""
    gw = start_sluice(rate_limited(fake, tokens_per_day=100_000))
    resp = ask(gw, max_tokens=100)
    assert resp.status_code == 200, resp.text
    for name in TOKEN_HEADERS:
        assert resp.headers.get(name), f"no {name} with tokens_per_day set: {dict(resp.headers)}"
    assert resp.headers["x-ratelimit-limit-tokens"] == "100000"
    assert 100_000 - 103 - 5 <= remaining(resp, "tokens") <= 100_000


# --- Redis: shared buckets ----------------------------------------------------------------------

async def _burst(gateways, total: int) -> tuple[list[httpx.Response], float]:
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(timeout=15, trust_env=False, limits=limits) as c:
        async def one(i: int) -> httpx.Response:
            gw = gateways[i % len(gateways)]
            return await c.post(gw.url + CHAT, json={"model": "local", "messages": HELLO},
                                headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"})
        start = time.monotonic()
        answers = await asyncio.gather(*(one(i) for i in range(total)))
        return answers, time.monotonic() - start


def test_replicas_share_the_buckets(start_sluice, fake, redis_server):
    rpm, total = 60, 100
    config = {"requests_per_minute": rpm, "redis_url": redis_server.url}
    gateways = [start_sluice(rate_limited(fake, **config), name=f"replica{i}-") for i in range(2)]
    answers, elapsed = asyncio.run(_burst(gateways, total))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 429}, [(r.status_code, r.text[:200]) for r in answers if r.status_code not in (200, 429)]
    accepted = statuses.count(200)
    # 60 in the bucket, ±2%, plus what refilled (1 per second) while the burst ran.
    low, high = math.ceil(rpm * 0.98), math.floor(rpm * 1.02 + elapsed * rpm / 60)
    assert low <= accepted <= high, f"{accepted} of {total} accepted in {elapsed:.2f}s; expected {low}..{high}"
    assert len(upstream_calls(fake)) == accepted
    for i in range(len(gateways)):
        limits = {r.headers.get("x-ratelimit-limit-requests") for r in answers[i::2]}
        assert limits == {str(rpm)}, f"replica {i}: x-ratelimit-limit-requests {limits}"
    for r in answers:
        if r.status_code == 429:
            assert_429(r)
    assert redis_server.keys(), "nothing in Redis: the gateways did not use it"


# --- Redis: outages -------------------------------------------------------------------------------

def _outage_gateways(start_sluice, fake, redis_server, rpm: int = 3):
    """Two gateways on one Redis: ``allow`` (served with key "tester") and ``deny`` (key "limited")."""
    def gw(policy: str):
        return start_sluice(rate_limited(fake, requests_per_minute=rpm, redis_url=redis_server.url,
                                         on_store_error=policy), name=f"store-{policy}-")
    return gw("allow"), gw("deny")


def _ask_fast(gw, key: str) -> httpx.Response:
    model = "smol" if key == "limited" else "local"
    resp, took = timed_ask(gw, model=model, key=key)
    assert took < FAST_S, f"{gw.name}: a request took {took:.2f}s with the store in trouble ({resp.status_code})"
    return resp


def _store_down_behaviour(allow, deny, fake, rpm: int) -> None:
    before = len(upstream_calls(fake))
    for _ in range(rpm + 2):  # more than the limit: the limit is not being enforced without a store
        resp = _ask_fast(allow, "tester")
        assert resp.status_code == 200, f"allow: {resp.status_code} {resp.text[:200]}"
    for _ in range(2):
        resp = _ask_fast(deny, "limited")
        assert resp.status_code == 503, f"deny: {resp.status_code} {resp.text[:200]}"
        openai_error(resp.json())
        assert resp.headers.get("x-sluice-provider") == "none"
    assert len(upstream_calls(fake)) - before == rpm + 2, "deny let a request through, or allow lost one"


def _limits_apply_again(gw, key: str, rpm: int, denies: bool, recover_s: float = 5) -> None:
    """Within ``recover_s`` of Redis' return the gateway is enforcing rpm again: a 429 comes (and
    stays), and nothing takes long. A ``deny`` gateway serves only what the store allowed: no 503
    after its first 200, and at most rpm 200s (Redis came back with full or emptier buckets)."""
    deadline = time.monotonic() + recover_s
    statuses: list[int] = []
    while 429 not in statuses:
        assert time.monotonic() < deadline, f"{gw.name}: no limit {recover_s}s after Redis came back: {statuses}"
        statuses.append(_ask_fast(gw, key).status_code)
        time.sleep(0.1)  # paced, so a reconnect backoff cannot be outrun by a burst of requests
    assert set(statuses) <= ({200, 429, 503} if denies else {200, 429}), statuses
    if denies:
        assert 503 not in statuses[statuses.index(200) if 200 in statuses else len(statuses):], statuses
        assert statuses.count(200) <= rpm, f"{gw.name}: more than {rpm} served after the store came back: {statuses}"
    after = [_ask_fast(gw, key).status_code for _ in range(2)]
    assert after == [429, 429], f"{gw.name}: not limited after the bucket emptied: {statuses} then {after}"


def _warned_since(gw, lines_before: int) -> list[dict]:
    lines = gw.log_lines()[lines_before:]
    return [line for line in lines if str(line.get("level", "")).lower() in ("warning", "error", "critical")]


def test_redis_killed_and_restarted(start_sluice, fake, redis_server):
    rpm = 3
    allow, deny = _outage_gateways(start_sluice, fake, redis_server, rpm)
    assert _ask_fast(allow, "tester").status_code == 200
    assert _ask_fast(deny, "limited").status_code == 200
    assert redis_server.keys(), "nothing in Redis: the gateways did not use it"

    logged_before = len(allow.log_lines())
    redis_server.kill()
    _store_down_behaviour(allow, deny, fake, rpm)
    deadline = time.monotonic() + 2  # the gateway's log thread writes a moment after the event
    while not _warned_since(allow, logged_before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _warned_since(allow, logged_before), "allow served without the store and logged nothing about it"

    redis_server.restart()  # same port, empty
    _limits_apply_again(deny, "limited", rpm, denies=True)
    _limits_apply_again(allow, "tester", rpm, denies=False)


def test_redis_that_hangs_does_not_hang_requests(start_sluice, fake, redis_server):
    """SIGSTOP: connections and writes still succeed, replies never come. Store calls must time out."""
    rpm = 3
    allow, deny = _outage_gateways(start_sluice, fake, redis_server, rpm)
    assert _ask_fast(allow, "tester").status_code == 200
    assert _ask_fast(deny, "limited").status_code == 200

    redis_server.pause()
    try:
        _store_down_behaviour(allow, deny, fake, rpm)
    finally:
        redis_server.resume()
    # Commands that timed out may still run now (they were queued in Redis' socket); the buckets
    # may be anywhere between full and empty, but they must be enforced again.
    _limits_apply_again(deny, "limited", rpm, denies=True)
    _limits_apply_again(allow, "tester", rpm, denies=False)
