"""Observability: the `access-log` and `metrics` pipeline plugins (docs/METRICS.md).

One gateway for the module, pipeline [access-log (log_headers), metrics, api-key-auth,
validation, rate-limit, router], with prices on its models. The ``traffic`` fixture sends a
known set of requests once — whole and streamed answers (with and without include_usage), both
front doors, an OpenAI-compatible and an Anthropic provider, a fallback, an upstream 500 (502),
a stream the upstream cuts, a client that leaves mid-stream, an upstream answer with cached
tokens, embeddings, refusals (400, 401 ×2, 403, 404, 429 ×2) and a malformed body the front door
refuses before the pipeline — and then the tests compare:

- ``GET /metrics``, parsed with prometheus_client's text parser, against counts, token sums and
  cost sums computed here: exact label sets and values, not "at least";
- stdout: every line JSON, exactly one ``sluice.access`` line per request that entered the
  pipeline (matched by ``x-request-id``), each with the right fields;
- stdout and stderr: no client key, provider key, cookie or authorization value anywhere.

Expected token counts come from what the fake provider itself reported (its recorded ``usage``,
or the body it was told to send), never from the gateway. The fake's usage is whitespace words:
prompt tokens = words of the messages, completion tokens = words of the reply.
"""

from __future__ import annotations

import json
import math
import os
import select
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.constants import FAKE_PROVIDER_KEY, LIMITED_KEY, SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.policy import CHAT, EMBEDDINGS, MESSAGES, start_gateway
from harness.sluice import Sluice, sluice_env
from harness.sse import anthropic_events, openai_chunks

BURST_KEY = "burst-secret-q7w8e9r0"       # key "burst": only used to run into the rate limit
WRONG_KEY = "client-secret-xyz780"        # one character off the real key: must not be logged either
COOKIE_SECRET = "cookie-secret-s3ss10n"
PROXY_SECRET = "proxy-secret-b4s1c"
SECRETS = (SLUICE_TEST_KEY, LIMITED_KEY, BURST_KEY, WRONG_KEY, FAKE_PROVIDER_KEY, COOKIE_SECRET, PROXY_SECRET)
REDACTED = ("authorization", "x-api-key", "api-key", "cookie", "set-cookie", "proxy-authorization")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
ANTHROPIC_VERSION = "2023-06-01"

RPM = 18              # requests per minute per key; "tester" sends 16 that reach the limiter
BURST = RPM + 2       # "burst" sends this many at once: exactly 2 are refused
MAX_TOKENS_CAP = 64
TIMEOUT_S = 10
SETTLE_S = 5          # longest wait for a cut stream to be logged and the gauges to return to 0

PRICED = {"input_per_million": 1.5, "output_per_million": 2.0}
TARGET_PRICE = {"input_per_million": 3.0, "output_per_million": 6.0, "cached_input_per_million": 0.75}
IGNORED_MODEL_PRICE = {"input_per_million": 100.0, "output_per_million": 100.0}  # the target's price wins
PRIMARY_PRICE = {"input_per_million": 10.0, "output_per_million": 20.0}
BACKUP_PRICE = {"input_per_million": 0.5, "output_per_million": 0.25}
CLAUDE_PRICE = {"input_per_million": 8.0, "output_per_million": 24.0}

# An upstream answer reporting prompt-cache hits (the fake's own answers never do).
CACHED_USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                "prompt_tokens_details": {"cached_tokens": 6}}
CACHED_ANSWER = {
    "id": "chatcmpl-canned", "object": "chat.completion", "created": 0, "model": "up-target",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the prompt cache"},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": CACHED_USAGE,
}

ACCESS_FIELDS = {"time", "level", "msg", "logger", "request_id", "trace_id", "key_name", "front_door", "operation",
                 "model", "provider", "upstream_model", "status", "attempts", "stream", "latency_ms", "upstream_ms",
                 "overhead_ms", "ttft_ms", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd",
                 "fallback", "error_type", "error_code", "headers", "stream_end", "cache"}


KNOWN_MODELS = {"priced", "target-priced", "unpriced", "failing", "primary", "backup", "claude", ""}


def manifest_for(fake) -> dict:
    manifest = default_manifest(free_port(), fake.base_url)
    manifest["providers"]["fake-anthropic"] = {"plugin": "anthropic", "config": {
        "base_url": fake.url, "api_key": {"env": "FAKE_PROVIDER_KEY"}}}

    def one(model: str, provider: str = "fake", price: dict | None = None) -> dict:
        target = {"provider": provider, "model": model}
        return {"targets": [{**target, "price": price}] if price else [target]}

    manifest["models"] = {
        "priced": {**one("up-priced"), "price": PRICED},
        "target-priced": {**one("up-target", price=TARGET_PRICE), "price": IGNORED_MODEL_PRICE},
        "unpriced": one("up-unpriced"),
        "failing": {**one("up-failing"), "price": PRICED},
        "primary": {**one("up-primary"), "price": PRIMARY_PRICE, "fallbacks": ["backup"]},
        "backup": {**one("up-backup"), "price": BACKUP_PRICE},
        "claude": one("claude-up", provider="fake-anthropic", price=CLAUDE_PRICE),
    }
    manifest["pipeline"] = [
        {"plugin": "access-log", "config": {"log_headers": True}},
        {"plugin": "metrics"},
        {"plugin": "api-key-auth", "config": {"keys": [
            {"name": "tester", "key": {"env": "SLUICE_TEST_KEY"}, "models": ["*"]},
            {"name": "limited", "key": LIMITED_KEY, "models": ["backup"]},
            {"name": "burst", "key": {"env": "SLUICE_BURST_KEY"}, "models": ["priced"]},
        ]}},
        {"plugin": "validation", "config": {"max_tokens_cap": MAX_TOKENS_CAP}},
        {"plugin": "rate-limit", "config": {"by": "key", "requests_per_minute": RPM}},
        {"plugin": "router", "config": {"retries": 0, "timeout_s": TIMEOUT_S, "backoff_ms": 0}},
    ]
    return manifest


# --- what was sent, and what should follow from it ----------------------------------------------

@dataclass
class Call:
    """One request and what the gateway should record about it."""
    name: str
    model: str                       # the public model asked for ("" for GET /v1/models)
    status: int
    key_name: str | None = "tester"  # the caller's key name; None: not authenticated
    front_door: str = "openai"
    operation: str = "chat.completions"
    stream: bool = False
    provider: str | None = None      # the provider that answered
    upstream_model: str | None = None
    attempts: int = 0
    fallback: bool = False
    refused: str | None = None       # sluice_refused_requests_total reason
    stream_end: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    price: dict | None = None        # the price the answer is charged at
    tag: str | None = None           # a word in the prompt that finds the call in the fake's log
    in_pipeline: bool = True
    in_metrics: bool = True
    body_read: bool = True           # false: refused from its head (no key), so no model is known
    usage: tuple[int, int, int] | None = None   # (input, output, cached input) as the provider reported it
    request_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def model_label(self) -> str:
        """Metrics label a model the manifest does not know as "unknown" (clients cannot add series)."""
        return self.model if self.body_read and self.model in KNOWN_MODELS else "unknown"

    @property
    def logged_model(self) -> str:
        return self.model if self.body_read else ""

    @property
    def provider_label(self) -> str:
        return self.provider or "none"

    @property
    def key_label(self) -> str:
        return self.key_name or "none"

    @property
    def stream_started(self) -> bool:
        return self.stream and self.status == 200

    @property
    def reached_router(self) -> bool:
        return self.attempts > 0

    @property
    def cost(self) -> float | None:
        return None if self.usage is None or self.price is None else cost_of(self.usage, self.price)


def normalised(usage: dict) -> tuple[int, int, int]:
    """(input, output, cached input) of an OpenAI or Anthropic ``usage`` object."""
    if "prompt_tokens" in usage:
        return (usage["prompt_tokens"], usage.get("completion_tokens", 0),
                (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    read, write = usage.get("cache_read_input_tokens", 0), usage.get("cache_creation_input_tokens", 0)
    return usage["input_tokens"] + read + write, usage["output_tokens"], read


def cost_of(usage: tuple[int, int, int], price: dict) -> float:
    inp, out, cached = usage
    cached_price = price.get("cached_input_per_million", price["input_per_million"])
    return (max(0, inp - cached) * price["input_per_million"] + cached * cached_price
            + out * price["output_per_million"]) / 1e6


def user(tag: str, text: str = "hello there") -> list[dict]:
    return [{"role": "user", "content": f"{tag} {text}"}]


def bearer(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


# --- the metrics page -------------------------------------------------------------------------

class Scrape:
    """``GET /metrics`` parsed by prometheus_client: samples by name, then by label set."""

    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[str, dict[tuple, float]] = defaultdict(dict)
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                key = tuple(sorted(sample.labels.items()))
                assert key not in self.samples[sample.name], f"duplicate series {sample.name}{dict(key)}"
                self.samples[sample.name][key] = sample.value

    def series(self, name: str) -> dict[tuple, float]:
        return dict(self.samples.get(name, {}))

    def value(self, name: str) -> float:
        values = self.series(name)
        assert list(values) == [()], f"{name}: expected one unlabelled sample, got {values}"
        return values[()]


def labels(**pairs) -> tuple:
    return tuple(sorted(pairs.items()))


def scrape(gw: Sluice) -> Scrape:
    status, body = gw.get("/metrics")
    assert status == 200, f"GET /metrics: {status} {body[:300]!r}"
    return Scrape(body.decode())


def access_lines(gw: Sluice) -> list[dict]:
    return [line for line in gw.log_lines() if line.get("logger") == "sluice.access"]


# --- sending the traffic ------------------------------------------------------------------------

class Driver:
    def __init__(self, gw: Sluice, fake):
        self.gw, self.fake = gw, fake
        self.calls: list[Call] = []
        self.http = httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False)
        self.mid_stream: Scrape | None = None

    def close(self) -> None:
        self.http.close()

    def send(self, call: Call, path: str, body, headers: dict, raw: bytes | None = None) -> httpx.Response:
        if raw is not None:
            resp = self.http.post(path, content=raw, headers={**headers, "content-type": "application/json"})
        else:
            resp = self.http.post(path, json=body, headers=headers)
        return self.settle(call, resp)

    def settle(self, call: Call, resp: httpx.Response) -> httpx.Response:
        if resp.status_code != call.status:
            resp.read()
            pytest.fail(f"{call.name}: {resp.status_code} {resp.text[:400]}", pytrace=False)
        call.request_id = resp.headers.get("x-request-id")
        assert call.request_id, f"{call.name}: no x-request-id in {dict(resp.headers)}"
        self.calls.append(call)
        return resp

    def chat(self, call: Call, key: str = SLUICE_TEST_KEY, headers: dict | None = None, **fields) -> httpx.Response:
        body = {"model": call.model, "messages": user(call.tag or call.name), **fields}
        return self.send(call, CHAT, body, {**bearer(key), **(headers or {})})

    def cut_stream(self, call: Call, chunks_before_leaving: int = 3) -> None:
        """A streamed request whose client reads a few events, checks the gauges, and hangs up."""
        body = {"model": call.model, "messages": user(call.tag), "stream": True}
        with httpx.Client(base_url=self.gw.url, timeout=TIMEOUT_S, trust_env=False) as own:
            with own.stream("POST", CHAT, json=body, headers=bearer(SLUICE_TEST_KEY)) as resp:
                self.settle(call, resp)
                lines, seen = resp.iter_lines(), 0
                while seen < chunks_before_leaving:
                    seen += next(lines).startswith("data: ")
                # Still reading (leaving the loop over iter_lines() would already close the connection).
                self.mid_stream = scrape(self.gw)
                lines.close()
        # The gateway must notice and cancel the upstream transfer.
        gone = self.fake.wait_for(lambda rs: [r for r in rs if call.tag in json.dumps(r["body"])
                                              and r["client_disconnected"]], timeout=SETTLE_S)
        assert gone, f"{call.name}: the upstream stream was not cancelled after the client left"

    def upstream_stream_cut(self, call: Call) -> str:
        """A streamed request the upstream cuts after a few events; returns what the client got."""
        body = {"model": call.model, "messages": user(call.tag), "stream": True}
        text = ""
        with self.http.stream("POST", CHAT, json=body, headers=bearer(SLUICE_TEST_KEY)) as resp:
            try:
                for chunk in resp.iter_text():
                    text += chunk
            except httpx.TransportError:
                pass  # a cut stream may also end in a transport error; either is fine here
            self.settle(call, resp)
        return text


def send_traffic(d: Driver, fake) -> dict:
    """Sends every request of the test; returns what clients saw that tests check later."""
    seen: dict = {}
    tester = bearer(SLUICE_TEST_KEY)

    def ok(name, model, tag, provider="fake", upstream=None, price=None, attempts=1, **kw) -> Call:
        return Call(name, model, 200, provider=provider, upstream_model=upstream, attempts=attempts, price=price,
                    tag=tag, **kw)

    # Whole answers, keys in each of the three headers, extra headers that must be redacted or kept.
    d.chat(ok("whole", "priced", "tagw01", upstream="up-priced", price=PRICED))
    d.send(ok("whole-api-key", "priced", "tagw02", upstream="up-priced", price=PRICED),
           CHAT, {"model": "priced", "messages": user("tagw02", "one two three four five")},
           {"api-key": SLUICE_TEST_KEY, "cookie": f"session={COOKIE_SECRET}",
            "proxy-authorization": f"Basic {PROXY_SECRET}", "set-cookie": f"a={COOKIE_SECRET}",
            "traceparent": TRACEPARENT, "x-obs-note": "kept as is"})
    d.send(ok("whole-x-api-key", "target-priced", "tagw03", upstream="up-target", price=TARGET_PRICE),
           CHAT, {"model": "target-priced", "messages": user("tagw03")},
           {"x-api-key": SLUICE_TEST_KEY, "traceparent": "00-not-a-trace-01"})

    # Streams: the client asks for usage, or not (the gateway asks the upstream anyway).
    resp = d.chat(ok("stream-usage", "priced", "tags01", upstream="up-priced", price=PRICED,
                     stream=True, stream_end="complete"),
                  stream=True, stream_options={"include_usage": True})
    seen["stream-usage"] = openai_chunks(resp.text)
    resp = d.chat(ok("stream-no-usage", "priced", "tags02", upstream="up-priced", price=PRICED,
                     stream=True, stream_end="complete"), stream=True)
    seen["stream-no-usage"] = openai_chunks(resp.text)

    # The Anthropic front door, whole and streamed, to the OpenAI-compatible upstream.
    anthropic_headers = {"x-api-key": SLUICE_TEST_KEY, "anthropic-version": ANTHROPIC_VERSION}
    d.send(ok("anthropic-whole", "priced", "taga01", upstream="up-priced", price=PRICED, front_door="anthropic",
              operation="messages"),
           MESSAGES, {"model": "priced", "max_tokens": 32, "messages": user("taga01", "good morning to you")},
           anthropic_headers)
    resp = d.send(ok("anthropic-stream", "target-priced", "taga02", upstream="up-target", price=TARGET_PRICE,
                     front_door="anthropic", operation="messages", stream=True, stream_end="complete"),
                  MESSAGES, {"model": "target-priced", "max_tokens": 32, "stream": True,
                             "messages": user("taga02", "stream this please")}, anthropic_headers)
    seen["anthropic-stream"] = anthropic_events(resp.text)

    # The OpenAI front door to the Anthropic provider, whole and streamed.
    d.chat(ok("claude-whole", "claude", "tagc01", provider="fake-anthropic", upstream="claude-up", price=CLAUDE_PRICE))
    d.chat(ok("claude-stream", "claude", "tagc02", provider="fake-anthropic", upstream="claude-up",
              price=CLAUDE_PRICE, stream=True, stream_end="complete"), stream=True)

    # An answer with prompt-cache hits, priced at the target's cached-input price.
    fake.enqueue(path=CHAT, model="up-target", status=200, body=CACHED_ANSWER)
    cached = ok("cached", "target-priced", "tagk01", upstream="up-target", price=TARGET_PRICE)
    cached.extra["usage"] = CACHED_USAGE
    d.chat(cached)

    # Embeddings on a model without a price: tokens, no cost.
    emb = ok("embeddings", "unpriced", "tage01", upstream="up-unpriced", operation="embeddings")
    resp = d.send(emb, EMBEDDINGS, {"model": "unpriced", "input": ["tage01 alpha beta", "gamma delta"]}, tester)
    emb.extra["usage"] = resp.json()["usage"]

    # Upstream failures: a 500 with no retries (502), and a 500 that falls back to another model.
    fake.enqueue(path=CHAT, model="up-failing", status=500)
    d.chat(Call("failing", "failing", 502, attempts=1, tag="tagf01", error_type="upstream_error",
                error_code="upstream_error"))
    fake.enqueue(path=CHAT, model="up-primary", status=500)
    d.chat(ok("fallback", "primary", "tagf02", upstream="up-backup", price=BACKUP_PRICE, attempts=2, fallback=True))

    # A stream the upstream cuts, and a client that leaves in the middle of one.
    # (Paced, so the events before the reset reach the gateway: data still unread when a TCP reset
    # arrives is discarded, which would make the number of events the client gets vary.)
    fake.enqueue(path=CHAT, model="up-priced", drop_after_chunks=3, stream_words=12, chunk_delay_ms=30)
    seen["cut-by-upstream"] = d.upstream_stream_cut(
        Call("cut-by-upstream", "priced", 200, provider="fake", upstream_model="up-priced", attempts=1, stream=True,
             stream_end="failed", tag="tagx01", price=PRICED))
    fake.enqueue(path=CHAT, model="up-priced", stream_words=400, chunk_delay_ms=20)
    d.cut_stream(Call("client-gone", "priced", 200, provider="fake", upstream_model="up-priced", attempts=1,
                      stream=True, stream_end="client_gone", tag="tagx02", price=PRICED))

    # Refusals before any upstream attempt.
    d.chat(Call("invalid", "priced", 400, refused="invalid", error_type="invalid_request_error", tag="tagr01"),
           max_tokens=MAX_TOKENS_CAP * 10)
    # Refused from the head: the body is never read, so these lines and series name no model.
    d.send(Call("no-key", "priced", 401, key_name=None, refused="unauthorized", error_type="authentication_error",
                error_code="missing_api_key", body_read=False), CHAT, {"model": "priced", "messages": user("tagr02")}, {})
    d.chat(Call("wrong-key", "priced", 401, key_name=None, refused="unauthorized", error_type="authentication_error",
                error_code="invalid_api_key", tag="tagr03", body_read=False), key=WRONG_KEY)
    d.chat(Call("forbidden", "priced", 403, key_name="limited", refused="forbidden", error_type="permission_error",
                error_code="model_not_allowed", tag="tagr04"), key=LIMITED_KEY)
    d.chat(Call("unknown-model", "no-such-model", 404, error_type="invalid_request_error",
                error_code="model_not_found", tag="tagr05"))

    # Never reaches the pipeline: the front door refuses a body that is not JSON.
    d.send(Call("malformed", "", 400, key_name=None, in_pipeline=False, in_metrics=False), CHAT, None, tester,
           raw=b'{"model": "priced", "messages": [')

    # The rate limit: "burst" may send RPM requests a minute; two more are refused.
    for i in range(BURST):
        if i < RPM:
            call = ok(f"burst-{i}", "priced", f"tagb{i:02d}", upstream="up-priced", price=PRICED, key_name="burst")
        else:
            call = Call(f"burst-{i}", "priced", 429, key_name="burst", refused="rate_limited",
                        error_type="rate_limit_error", error_code="rate_limit_exceeded", tag=f"tagb{i:02d}")
        d.chat(call, key=BURST_KEY)

    # Listing models enters the pipeline (one access-log line) but is no model request for metrics.
    resp = d.http.get("/v1/models", headers=tester)
    d.settle(Call("models", "", 200, operation="models.list", in_metrics=False), resp)
    return seen


def fill_usage(calls: list[Call], records: list[dict]) -> None:
    """Each answered call's usage as the provider reported it: the fake's recorded usage of the
    upstream request that completed (a cut stream's usage never reached the gateway), or the
    body the fake was told to send (canned answers, embeddings)."""
    for call in calls:
        if call.provider is None or call.stream_end in ("failed", "client_gone"):
            continue
        if "usage" in call.extra:
            call.usage = normalised(call.extra["usage"])
            continue
        answered = [r for r in records if call.tag in json.dumps(r["body"]) and r["completed"] and r["usage"]]
        assert len(answered) == 1, f"{call.name}: {len(answered)} completed upstream answers carry usage"
        call.usage = normalised(answered[0]["usage"])


@dataclass
class Observed:
    gw: Sluice
    calls: list[Call]
    records: list[dict]
    seen: dict
    metrics: Scrape
    mid_stream: Scrape
    stdout: str
    stderr: str
    lines: list[dict]            # every stdout line, parsed
    access: list[dict]           # the sluice.access lines
    elapsed_s: float

    def call(self, name: str) -> Call:
        return next(c for c in self.calls if c.name == name)

    def line(self, name: str) -> dict:
        call = self.call(name)
        matches = [line for line in self.access if line.get("request_id") == call.request_id]
        assert len(matches) == 1, f"{name}: {len(matches)} access-log lines for request id {call.request_id}"
        return matches[0]


@pytest.fixture(scope="module")
def observed(sluice_bin: Path, fake_provider, tmp_path_factory) -> Observed:
    started = time.monotonic()
    fake_provider.reset()
    gw = start_gateway(sluice_bin, manifest_for(fake_provider), tmp_path_factory.mktemp("observability"),
                       "observability", env=sluice_env({"SLUICE_BURST_KEY": BURST_KEY}))
    driver = Driver(gw, fake_provider)
    try:
        seen = send_traffic(driver, fake_provider)
        in_pipeline = sum(c.in_pipeline for c in driver.calls)
        # Lines of cut streams are written when the gateway notices; the gauges fall then too.
        deadline = time.monotonic() + SETTLE_S
        while True:
            metrics = scrape(gw)
            settled = (len(access_lines(gw)) >= in_pipeline and metrics.value("sluice_requests_in_flight") == 0
                       and metrics.value("sluice_streams_open") == 0)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        records = fake_provider.requests()
        fill_usage(driver.calls, records)
        lines = gw.log_lines()
        yield Observed(gw, driver.calls, records, seen, metrics, driver.mid_stream, gw.stdout_text(),
                       gw.stderr_text(), lines, [x for x in lines if x.get("logger") == "sluice.access"],
                       time.monotonic() - started)
    finally:
        driver.close()
        gw.stop()


def metric_calls(o: Observed) -> list[Call]:
    return [c for c in o.calls if c.in_metrics]


def assert_float_series(got: dict[tuple, float], want: dict[tuple, float], name: str) -> None:
    assert set(got) == set(want), f"{name}: label sets differ\n got  {sorted(got)}\n want {sorted(want)}"
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-15), f"{name}{dict(key)}: {got[key]} != {value}"


# --- the traffic itself -------------------------------------------------------------------------

def test_traffic_is_as_planned(observed):
    """The scenario did what the other tests assume (statuses are checked as each call is sent)."""
    o = observed
    assert o.elapsed_s < 20, f"the module's traffic took {o.elapsed_s:.1f}s"
    chunks, done = openai_chunks(o.seen["cut-by-upstream"])
    assert not done and len(chunks) >= 2 and "error" in chunks[-1], "events, then the error event, no [DONE]"
    chunks, done = o.seen["stream-usage"]
    assert done and chunks[-1]["usage"] is not None, "include_usage: the client gets the usage chunk"
    assert normalised(chunks[-1]["usage"]) == o.call("stream-usage").usage
    chunks, done = o.seen["stream-no-usage"]
    assert done and all(c.get("usage") is None for c in chunks), "the usage chunk the gateway asked for is hidden"
    assert o.seen["anthropic-stream"][-1]["type"] == "message_stop"
    # The gateway asked the upstream for usage on every OpenAI stream.
    for name in ("stream-usage", "stream-no-usage", "client-gone"):
        tag = o.call(name).tag
        upstream = [r for r in o.records if tag in json.dumps(r["body"])]
        assert upstream and upstream[0]["body"].get("stream_options", {}).get("include_usage") is True, name
    assert o.mid_stream is not None


# --- metrics ------------------------------------------------------------------------------------

def test_metric_types(observed):
    types = observed.metrics.types
    want = {
        "sluice_requests": "counter", "sluice_tokens": "counter", "sluice_cost_usd": "counter",
        "sluice_retries": "counter", "sluice_fallbacks": "counter", "sluice_refused_requests": "counter",
        "gen_ai_server_request_duration_seconds": "histogram", "gen_ai_server_time_to_first_token_seconds": "histogram",
        "sluice_upstream_duration_seconds": "histogram", "sluice_gateway_overhead_seconds": "histogram",
        "gen_ai_client_token_usage": "histogram",
        "sluice_requests_in_flight": "gauge", "sluice_streams_open": "gauge",
    }
    assert {name: types.get(name) for name in want} == want


def test_metrics_endpoint_needs_no_key_and_is_prometheus_text(observed):
    with httpx.Client(base_url=observed.gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        resp = c.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4"), resp.headers["content-type"]


def test_requests_total_exact(observed):
    want = Counter(labels(model=c.model_label, provider=c.provider_label, status=str(c.status), key_name=c.key_label,
                          front_door=c.front_door) for c in metric_calls(observed))
    assert observed.metrics.series("sluice_requests_total") == dict(want)


def test_request_duration_histogram_counts(observed):
    m = observed.metrics
    want = Counter(labels(gen_ai_request_model=c.model_label, gen_ai_provider_name=c.provider_label, status=str(c.status))
                   for c in metric_calls(observed))
    assert m.series("gen_ai_server_request_duration_seconds_count") == dict(want)
    assert_histograms_consistent(m, "gen_ai_server_request_duration_seconds")


def test_time_to_first_token_only_for_streams(observed):
    m = observed.metrics
    want = Counter(labels(gen_ai_request_model=c.model_label, gen_ai_provider_name=c.provider_label)
                   for c in metric_calls(observed) if c.stream_started)
    assert m.series("gen_ai_server_time_to_first_token_seconds_count") == dict(want)
    assert_histograms_consistent(m, "gen_ai_server_time_to_first_token_seconds")


def test_upstream_and_overhead_histograms(observed):
    m = observed.metrics
    routed = [c for c in metric_calls(observed) if c.reached_router]
    want = Counter(labels(gen_ai_provider_name=c.provider_label) for c in routed)
    assert m.series("sluice_upstream_duration_seconds_count") == dict(want)
    assert m.value("sluice_gateway_overhead_seconds_count") == len(routed)
    assert_histograms_consistent(m, "sluice_upstream_duration_seconds")
    assert_histograms_consistent(m, "sluice_gateway_overhead_seconds")
    # Overhead is what the gateway adds: on loopback with a fake upstream, far below the totals.
    total = sum(v for k, v in m.series("gen_ai_server_request_duration_seconds_sum").items())
    assert 0 <= m.value("sluice_gateway_overhead_seconds_sum") < total


def test_token_usage_histogram(observed):
    m = observed.metrics
    counts, sums = Counter(), Counter()
    for c in metric_calls(observed):
        if c.usage is None:
            continue
        for kind, tokens in (("input", c.usage[0]), ("output", c.usage[1])):
            key = labels(gen_ai_token_type=kind, gen_ai_request_model=c.model_label, gen_ai_provider_name=c.provider_label)
            counts[key] += 1
            sums[key] += tokens
    assert m.series("gen_ai_client_token_usage_count") == dict(counts)
    assert m.series("gen_ai_client_token_usage_sum") == {k: float(v) for k, v in sums.items()}
    assert_histograms_consistent(m, "gen_ai_client_token_usage")


def test_tokens_total_exact(observed):
    want: Counter = Counter()
    for c in metric_calls(observed):
        if c.usage is None:
            continue
        inp, out, cached = c.usage
        common = dict(model=c.model_label, provider=c.provider_label, key_name=c.key_label)
        want[labels(direction="input", **common)] += inp
        want[labels(direction="output", **common)] += out
        if cached:
            want[labels(direction="cached_input", **common)] += cached
    assert observed.metrics.series("sluice_tokens_total") == dict(want)
    # Spot checks that do not go through the fake's records: the canned answer's cached tokens.
    assert want[labels(direction="cached_input", model="target-priced", provider="fake", key_name="tester")] == 6


def test_cost_total_exact(observed):
    want: defaultdict = defaultdict(float)
    for c in metric_calls(observed):
        if c.cost is not None:
            want[labels(model=c.model_label, provider=c.provider_label, key_name=c.key_label)] += c.cost
    assert_float_series(observed.metrics.series("sluice_cost_usd_total"), dict(want), "sluice_cost_usd_total")
    # The fallback's answer is charged at the fallback model's price, under the public model asked for.
    fb = observed.call("fallback")
    assert fb.cost == pytest.approx(cost_of(fb.usage, BACKUP_PRICE))
    # The cached answer: 4 uncached input at 3.0, 6 cached at 0.75, 4 output at 6.0 per million.
    assert observed.call("cached").cost == pytest.approx((4 * 3.0 + 6 * 0.75 + 4 * 6.0) / 1e6)


def test_retries_fallbacks_and_refusals(observed):
    m, calls = observed.metrics, metric_calls(observed)
    retries = Counter()
    for c in calls:
        if c.attempts > 1:
            retries[labels(model=c.model_label)] += c.attempts - 1
    assert m.series("sluice_retries_total") == dict(retries)
    assert m.series("sluice_fallbacks_total") == dict(Counter(labels(model=c.model_label) for c in calls if c.fallback))
    refused = Counter(labels(reason=c.refused, key_name=c.key_label) for c in calls if c.refused)
    assert m.series("sluice_refused_requests_total") == dict(refused)


def test_gauges_rise_during_a_stream_and_return_to_zero(observed):
    mid = observed.mid_stream
    assert mid.value("sluice_requests_in_flight") == 1, "one stream open, nothing else in flight"
    assert mid.value("sluice_streams_open") == 1
    assert observed.metrics.value("sluice_requests_in_flight") == 0
    assert observed.metrics.value("sluice_streams_open") == 0


def assert_histograms_consistent(m: Scrape, name: str) -> None:
    """Buckets are cumulative, end in +Inf equal to _count, and every series has a _sum."""
    by_series: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for key, value in m.series(f"{name}_bucket").items():
        le = dict(key)["le"]
        by_series[tuple(kv for kv in key if kv[0] != "le")].append((float(le), value))
    counts, sums = m.series(f"{name}_count"), m.series(f"{name}_sum")
    assert set(by_series) == set(counts) == set(sums), name
    for key, buckets in by_series.items():
        buckets.sort()
        values = [v for _, v in buckets]
        assert values == sorted(values), f"{name}{dict(key)}: buckets not cumulative {buckets}"
        assert math.isinf(buckets[-1][0]) and buckets[-1][1] == counts[key], f"{name}{dict(key)}"
        assert sums[key] >= 0


# --- the access log -----------------------------------------------------------------------------

def test_stdout_is_json_lines(observed):
    raw = [line for line in observed.stdout.splitlines() if line.strip()]
    assert len(raw) == len(observed.lines)  # log_lines() would have raised on a non-JSON line


def test_one_access_line_per_request_in_the_pipeline(observed):
    o = observed
    logged = Counter(line.get("request_id") for line in o.access)
    want = Counter(c.request_id for c in o.calls if c.in_pipeline)
    assert logged == want, (f"missing {sorted(set(want) - set(logged))}, extra {sorted(set(logged) - set(want))}, "
                            f"doubled {[k for k, v in logged.items() if v > 1]}")
    malformed = o.call("malformed").request_id
    assert malformed not in logged, "a body the front door refused never entered the pipeline"


@pytest.mark.parametrize("name", [
    "whole", "whole-api-key", "whole-x-api-key", "stream-usage", "stream-no-usage", "anthropic-whole",
    "anthropic-stream", "claude-whole", "claude-stream", "cached", "embeddings", "failing", "fallback",
    "cut-by-upstream", "client-gone", "invalid", "no-key", "wrong-key", "forbidden", "unknown-model",
    "burst-0", f"burst-{BURST - 1}", "models",
])
def test_access_line_fields(observed, name):
    call, line = observed.call(name), observed.line(name)
    assert set(line) <= ACCESS_FIELDS, f"unexpected fields {sorted(set(line) - ACCESS_FIELDS)}"
    assert (line["msg"], line["level"]) == ("request", "info")
    expected = {"front_door": call.front_door, "operation": call.operation, "model": call.logged_model,
                "status": str(call.status), "attempts": call.attempts, "stream": call.stream}
    # status compared as text here; test_access_log_numbers_are_json_numbers checks its JSON type
    assert {k: str(line.get(k)) if k == "status" else line.get(k) for k in expected} == expected

    def optional(field_name: str, value) -> None:
        if value is None:
            assert field_name not in line, f"{field_name}={line.get(field_name)!r} should be absent"
        else:
            assert line.get(field_name) == value, f"{field_name}: {line.get(field_name)!r} != {value!r}"

    optional("key_name", call.key_name)
    optional("provider", call.provider)
    optional("upstream_model", call.upstream_model)
    optional("fallback", True if call.fallback else None)
    optional("stream_end", call.stream_end)
    if call.stream_end in ("failed", "client_gone"):
        assert isinstance(line.get("error_type"), str), "a stream that did not complete says why"
    else:
        optional("error_type", call.error_type if call.status >= 400 else None)
    if call.error_code:
        optional("error_code", call.error_code)

    latency = line["latency_ms"]
    assert isinstance(latency, (int, float)) and latency >= 0
    if call.reached_router:
        upstream, overhead = line["upstream_ms"], line["overhead_ms"]
        assert upstream >= 0 and overhead >= 0
        assert abs(upstream + overhead - latency) <= 0.05, (upstream, overhead, latency)
    else:
        assert "upstream_ms" not in line and "overhead_ms" not in line
    if call.stream_started:
        assert 0 <= line["ttft_ms"] <= latency
    else:
        assert "ttft_ms" not in line

    if call.usage is None:
        assert not {"input_tokens", "output_tokens", "cached_input_tokens", "cost_usd"} & set(line)
    else:
        inp, out, cached = call.usage
        assert (line.get("input_tokens"), line.get("output_tokens")) == (inp, out)
        optional("cached_input_tokens", cached or None)
        if call.cost is None:
            assert "cost_usd" not in line
        else:
            assert line.get("cost_usd") == pytest.approx(call.cost, rel=1e-9)
    assert "request_body" not in line and "response_body" not in line, "log_bodies is off"


def test_access_log_numbers_are_json_numbers(observed):
    """status, attempts, counts and times are JSON numbers, stream and fallback JSON booleans."""
    wrong = Counter()
    for line in observed.access:
        for name in ("status", "attempts", "input_tokens", "output_tokens", "cached_input_tokens"):
            if name in line and type(line[name]) is not int:
                wrong[f"{name}: {type(line[name]).__name__}"] += 1
        for name in ("latency_ms", "upstream_ms", "overhead_ms", "ttft_ms", "cost_usd"):
            if name in line and type(line[name]) not in (int, float):
                wrong[f"{name}: {type(line[name]).__name__}"] += 1
        for name in ("stream", "fallback"):
            if name in line and type(line[name]) is not bool:
                wrong[f"{name}: {type(line[name]).__name__}"] += 1
    assert not wrong, f"fields of the wrong JSON type (field: type -> lines): {dict(wrong)}"


def test_trace_id_from_traceparent(observed):
    assert observed.line("whole-api-key").get("trace_id") == TRACE_ID
    assert "trace_id" not in observed.line("whole-x-api-key"), "a malformed traceparent gives no trace id"
    assert "trace_id" not in observed.line("whole")


def test_headers_logged_with_credentials_redacted(observed):
    o = observed
    for line in o.access:
        headers = line.get("headers")
        assert isinstance(headers, dict) and headers, f"log_headers is on: {line}"
        assert all(name == name.lower() for name in headers), sorted(headers)
        for name in REDACTED:
            if name in headers:
                assert headers[name] == "[redacted]", f"{name}: {headers[name]!r}"
    assert o.line("whole")["headers"]["authorization"] == "[redacted]"
    assert o.line("whole-x-api-key")["headers"]["x-api-key"] == "[redacted]"
    assert o.line("wrong-key")["headers"]["authorization"] == "[redacted]"
    many = o.line("whole-api-key")["headers"]
    assert {name: many.get(name) for name in ("api-key", "cookie", "proxy-authorization", "set-cookie")} == \
        dict.fromkeys(("api-key", "cookie", "proxy-authorization", "set-cookie"), "[redacted]")
    assert many.get("x-obs-note") == "kept as is"
    assert many.get("traceparent") == TRACEPARENT


def test_no_secret_in_any_output(observed):
    o = observed
    for label, text in (("stdout", o.stdout), ("stderr", o.stderr)):
        leaked = [s for s in SECRETS if s in text]
        assert not leaked, f"{label} contains {leaked}"
    assert "Bearer " not in o.stdout + o.stderr, "an authorization value reached the logs"


# --- log_bodies and a custom metrics path -------------------------------------------------------

def test_log_bodies_cut_and_custom_metrics_path(start_sluice, fake):
    def edit(manifest: dict) -> None:
        manifest["pipeline"][:0] = [
            {"plugin": "access-log", "config": {"log_bodies": True, "max_body_chars": 40}},
            {"plugin": "metrics", "config": {"path": "/internal/metrics"}},
        ]
    gw = start_sluice(edit, name="bodies")
    long_text = "tagl01 " + " ".join(f"word{i}" for i in range(30))
    raw_body = json.dumps({"model": "local", "messages": [{"role": "user", "content": long_text}]})
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        headers = {**bearer(SLUICE_TEST_KEY), "content-type": "application/json"}
        whole = c.post(CHAT, content=raw_body.encode(), headers=headers)
        streamed = c.post(CHAT, json={"model": "local", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                          headers=bearer(SLUICE_TEST_KEY))
        assert (whole.status_code, streamed.status_code) == (200, 200)
        assert c.get("/internal/metrics").status_code == 200
        assert c.get("/metrics").status_code == 404, "the metrics page moved with its path"
    deadline = time.monotonic() + SETTLE_S
    while len(access_lines(gw)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    by_id = {line["request_id"]: line for line in access_lines(gw)}
    first, second = by_id[whole.headers["x-request-id"]], by_id[streamed.headers["x-request-id"]]
    assert "headers" not in first, "log_headers is off by default"
    assert first["request_body"] == raw_body[:40] + "…[cut]"
    assert first["response_body"] == whole.text[:40] + "…[cut]", "a whole answer's body is logged, cut"
    assert "response_body" not in second, "a stream's body is not logged"
    assert second["request_body"].startswith("{") and second["request_body"].endswith("…[cut]")
    assert SLUICE_TEST_KEY not in gw.stdout_text() + gw.stderr_text()


# --- a reader of stdout that falls behind ------------------------------------------------------

LOG_BUFFER_KIB = 16   # with the pipe's own 64 KiB, some 200 access lines wait; the rest are dropped
STALLED_REQUESTS = 600
_STDOUT_TO_FIFO = ("import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.dup2(fd, 1); os.close(fd); "
                   "os.execv(sys.argv[2], sys.argv[2:])")


def _read_lines_until(reader: int, data: bytearray, done, timeout_s: float) -> list[dict]:
    """Reads ``reader`` into ``data`` until ``done(lines)`` holds for all whole JSON lines read."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if select.select([reader], [], [], 0.1)[0]:
            data += os.read(reader, 1 << 16)
        lines = [json.loads(line) for line in bytes(data).split(b"\n")[:-1] if line.strip()]
        if done(lines):
            return lines
    pytest.fail(f"stdout: not done after {timeout_s}s; last bytes: {bytes(data[-600:])!r}", pytrace=False)


def test_the_gateways_own_threads_are_named(start_sluice):
    """top, ps and perf show what a thread is: curl's and the log writer's threads carry their
    names (Foundation's Thread.name alone does not name them on Linux). The provider is reached
    through curl, whose thread starts with its first transfer (plain HTTP would go through NIO)."""
    def configure(m):
        m["pipeline"].insert(0, {"plugin": "access-log", "config": {}})
        for provider in m["providers"].values():
            provider["config"]["transport"] = "curl"
    gw = start_sluice(configure, name="threads")
    body = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
        assert c.post(CHAT, json=body, headers=bearer(SLUICE_TEST_KEY)).status_code == 200
    tasks = f"/proc/{gw.proc.pid}/task"
    names = {open(f"{tasks}/{tid}/comm").read().strip() for tid in os.listdir(tasks)}
    assert {"sluice-upstream", "sluice-log"} <= names, names


def test_a_stalled_log_reader_costs_log_lines_not_requests(start_sluice, fake, tmp_path):
    """stdout is a FIFO nobody reads while 600 requests pass: every request is answered (no
    event loop waits on the pipe), the lines that do not fit are dropped whole and counted, and
    once the reader catches up a notice says how many and logging goes on."""
    fifo = tmp_path / "stdout.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that reads nothing yet
    data = bytearray()
    try:
        gw = start_sluice(lambda m: m["pipeline"].insert(0, {"plugin": "access-log", "config": {}}),
                          name="stalled-log", wrapper=[sys.executable, "-c", _STDOUT_TO_FIFO, str(fifo)],
                          serve_args=("--log-buffer-kib", str(LOG_BUFFER_KIB)))
        body = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=gw.url, timeout=TIMEOUT_S, trust_env=False) as c:
            statuses = Counter(c.post(CHAT, json=body, headers=bearer(SLUICE_TEST_KEY)).status_code
                               for _ in range(STALLED_REQUESTS))
            assert statuses == {200: STALLED_REQUESTS}, f"with stdout stalled: {statuses}"

            lines = _read_lines_until(reader, data, lambda ls: any("dropped_lines" in x for x in ls), timeout_s=10)
            notice = next(x for x in lines if "dropped_lines" in x)
            assert notice["level"] == "warning" and "fell behind" in notice["msg"], notice
            access = [x for x in lines if x.get("logger") == "sluice.access"]
            assert 0 < len(access) < STALLED_REQUESTS, f"{len(access)} access lines"
            assert len(access) + notice["dropped_lines"] >= STALLED_REQUESTS, \
                f"{len(access)} logged + {notice['dropped_lines']} dropped < {STALLED_REQUESTS} requests"

            after = c.post(CHAT, json=body, headers=bearer(SLUICE_TEST_KEY))
            request_id = after.headers["x-request-id"]
            _read_lines_until(reader, data, lambda ls: any(x.get("request_id") == request_id for x in ls), timeout_s=5)
    finally:
        os.close(reader)
