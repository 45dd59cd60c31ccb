"""Providers and routing (docs/MANIFEST.md; docs/ARCHITECTURE.md, "The HTTP surface"): Azure OpenAI deployments, weighted load balancing,
retries and fallbacks, 429 retry-after, circuit breaking, deadlines, and usage normalisation.

Each test starts its own gateway with the router settings it needs (``start_sluice``, ~0.1 s)
and drives it with the official OpenAI SDK or raw httpx; the fake provider tells which target
each attempt went to (the upstream model name) and when it arrived.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import httpx
import openai
import pytest

from fakeprovider import embedding_for
from harness.constants import SLUICE_TEST_KEY
from harness.net import free_port
from harness.sluice import sluice_env
from harness.sse import openai_chunks

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
AZURE_KEY = "azure-resource-key-789"
AZURE_VERSION = "2024-10-21"
TIMEOUT_S = 15


def _cut_stream_errors() -> tuple[type[BaseException], ...]:
    """What iterating a stream the gateway cut may raise: the SDK's error (an error event), or the
    transport error of the SDK's HTTP library (httpx, or httpx2 in newer SDKs)."""
    errors: list[type[BaseException]] = [openai.APIError, httpx.TransportError]
    try:
        import httpx2
        errors.append(httpx2.TransportError)
    except ImportError:
        pass
    return tuple(errors)


CUT_STREAM_ERRORS = _cut_stream_errors()


# --- helpers ----------------------------------------------------------------------------------

def sdk(gw, timeout: float = TIMEOUT_S) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=timeout)


def targets(*pairs, provider: str = "fake") -> dict:
    """``targets(("up-a", 3), ("up-b", 1))``: a model's targets on one provider, by upstream name and weight."""
    return {"targets": [{"provider": provider, "model": name, "weight": weight} for name, weight in pairs]}


def configure(models: dict, providers: dict | None = None, **router) -> Callable[[dict], None]:
    """A manifest edit: these public models (and extra providers), and these router settings."""
    def edit(manifest: dict) -> None:
        manifest["models"] = models
        manifest["providers"].update(providers or {})
        next(p for p in manifest["pipeline"] if p["plugin"] == "router")["config"].update(router)
    return edit


def upstream_models(fake, path: str = CHAT) -> list[str]:
    return [r["body"]["model"] for r in fake.requests(path)]


def attempts(raw) -> int:
    value = raw.headers.get("x-sluice-attempts")
    assert value is not None, f"no x-sluice-attempts header in {dict(raw.headers)}"
    return int(value)


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert isinstance(body.get("error"), dict), body
    return body["error"]


def assert_no_client_key(record: dict) -> None:
    leaked = sorted(k for k, v in record["headers"].items() if SLUICE_TEST_KEY in v)
    assert not leaked, f"client key forwarded upstream in headers {leaked}"


# --- Azure OpenAI -----------------------------------------------------------------------------

@pytest.fixture
def azure_gw(start_sluice, fake):
    providers = {"az": {"plugin": "azure-openai", "config": {
        "base_url": fake.url, "api_version": AZURE_VERSION, "api_key": {"env": "FAKE_AZURE_KEY"}}}}
    models = {"az-chat": targets(("my-deploy", 1), provider="az"),
              "az-emb": targets(("my-embedder", 1), provider="az")}
    return start_sluice(configure(models, providers), env=sluice_env({"FAKE_AZURE_KEY": AZURE_KEY}), name="azure")


def azure_calls(fake) -> list[dict]:
    """The requests to deployments (the gateway's health probes also reach the fake)."""
    return [r for r in fake.requests() if r["path"].startswith("/openai/deployments/")]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_azure_deployment_path_version_and_key(azure_gw, fake, stream):
    with sdk(azure_gw) as c:
        if stream:
            chunks = list(c.chat.completions.create(model="az-chat", messages=HELLO, stream=True))
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            assert {ch.model for ch in chunks} == {"my-deploy"}
        else:
            raw = c.chat.completions.with_raw_response.create(model="az-chat", messages=HELLO)
            assert raw.headers.get("x-sluice-provider") == "az"
            answer = raw.parse()
            text = answer.choices[0].message.content
            assert answer.model == "my-deploy"
            assert answer.usage.total_tokens == 5
    assert text == "echo: hello there"
    [up] = azure_calls(fake)
    assert up["path"] == "/openai/deployments/my-deploy/chat/completions"
    assert up["query"] == {"api-version": AZURE_VERSION}
    assert up["headers"].get("api-key") == AZURE_KEY
    assert "authorization" not in up["headers"], "Azure keys go in api-key, not a bearer token"
    assert_no_client_key(up)


def test_azure_embeddings(azure_gw, fake):
    with sdk(azure_gw) as c:
        answer = c.embeddings.create(model="az-emb", input="hello", encoding_format="float")
    assert answer.model == "my-embedder" and answer.data[0].embedding == embedding_for("hello")
    [up] = azure_calls(fake)
    assert up["path"] == "/openai/deployments/my-embedder/embeddings"
    assert up["query"] == {"api-version": AZURE_VERSION} and up["headers"].get("api-key") == AZURE_KEY
    assert_no_client_key(up)


# --- weighted load balancing ------------------------------------------------------------------

def test_weights_are_honoured(start_sluice, fake):
    gw = start_sluice(configure({"weighted": targets(("up-heavy", 3), ("up-light", 1))}))
    body = {"model": "weighted", "messages": HELLO}
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=TIMEOUT_S, trust_env=False,
                      limits=httpx.Limits(max_connections=16, max_keepalive_connections=16)) as http:
        # Smooth weighted round robin is deterministic: 3:1 gives a light pick once in every 4.
        for _ in range(20):
            assert http.post(CHAT, json=body).status_code == 200
        sequence = upstream_models(fake)
        for i in range(len(sequence) - 3):
            window = sequence[i:i + 4]
            assert window.count("up-light") == 1, f"not a smooth 3:1 rotation at {i}: {sequence}"

        fake.reset()
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: http.post(CHAT, json=body).status_code, range(1000)))
        elapsed = time.monotonic() - started
    assert statuses.count(200) == 1000, {s: statuses.count(s) for s in set(statuses)}
    models = upstream_models(fake)
    heavy, light = models.count("up-heavy"), models.count("up-light")
    assert heavy + light == 1000
    assert abs(heavy / 1000 - 0.75) <= 0.05, f"3:1 weights gave {heavy}:{light}"
    assert elapsed < 12, f"1,000 small requests took {elapsed:.1f}s"


# --- retries and fallbacks --------------------------------------------------------------------

@pytest.mark.both_transports
def test_failing_target_falls_back_to_the_fallback_model(start_sluice, fake):
    gw = start_sluice(configure({"primary": {**targets(("up-primary", 1)), "fallbacks": ["backup"]},
                                 "backup": targets(("up-backup", 1))}, retries=1, backoff_ms=1))
    fake.enqueue(status=503, model="up-primary", count=100)
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="primary", messages=HELLO)
    answer = raw.parse()
    assert answer.model == "up-backup" and answer.choices[0].message.content == "echo: hello there"
    assert raw.headers.get("x-sluice-provider") == "fake"
    assert upstream_models(fake) == ["up-primary", "up-primary", "up-backup"]
    assert attempts(raw) == 3


def test_unreachable_provider_falls_back(start_sluice, fake):
    dead = {"dead": {"plugin": "openai-compatible", "config": {"base_url": f"http://127.0.0.1:{free_port()}/v1"}}}
    gw = start_sluice(configure({"primary": {**targets(("up-dead", 1), provider="dead"), "fallbacks": ["backup"]},
                                 "backup": targets(("up-backup", 1))}, dead, retries=1, backoff_ms=1))
    start = time.monotonic()
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="primary", messages=HELLO)
    assert time.monotonic() - start < 3
    assert raw.parse().model == "up-backup"
    assert raw.headers.get("x-sluice-provider") == "fake"
    assert attempts(raw) == 3  # two refused connections, then the fallback
    assert upstream_models(fake) == ["up-backup"]


def test_failing_target_is_routed_around(start_sluice, fake):
    gw = start_sluice(configure({"pair": targets(("up-bad", 1), ("up-good", 1))}, retries=1, backoff_ms=1))
    fake.enqueue(status=500, model="up-bad", count=100)
    with sdk(gw) as c:
        for _ in range(6):
            raw = c.chat.completions.with_raw_response.create(model="pair", messages=HELLO)
            assert raw.parse().model == "up-good"
            assert attempts(raw) in (1, 2)
    models = upstream_models(fake)
    assert models.count("up-good") == 6
    for i, model in enumerate(models):  # a failed attempt on up-bad is retried on up-good
        if model == "up-bad":
            assert models[i + 1] == "up-good", models


def test_exhausted_attempts_name_the_public_model(start_sluice, fake):
    gw = start_sluice(configure({"doomed": targets(("up-doomed", 1))}, retries=1, backoff_ms=1))
    fake.enqueue(status=500, model="up-doomed", count=100)
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="doomed", messages=HELLO)
    assert err.value.status_code == 502
    assert "doomed" in error_of(err.value)["message"]
    assert attempts(err.value.response) == 2
    assert upstream_models(fake) == ["up-doomed", "up-doomed"]


def test_429_retry_after_is_waited_then_retried(start_sluice, fake):
    gw = start_sluice(configure({"limited": targets(("up-limited", 1))}, retries=1, backoff_ms=1))
    fake.enqueue(status=429, headers={"retry-after": "1"}, model="up-limited")
    start = time.monotonic()
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="limited", messages=HELLO)
    elapsed = time.monotonic() - start
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert attempts(raw) == 2
    first, second = fake.requests(CHAT)
    assert (first["status"], second["status"]) == (429, 200)
    waited = second["time"] - first["time"]
    assert waited >= 0.98, f"retried {waited:.2f}s after a 429 with retry-after: 1"
    assert elapsed < 4, f"a 1 s retry-after took {elapsed:.1f}s in all"


def test_429_with_a_long_retry_after_fails_at_once_on_a_single_target(start_sluice, fake):
    gw = start_sluice(configure({"limited": targets(("up-limited", 1))}, retries=2, backoff_ms=1,
                                max_retry_after_s=1))
    fake.enqueue(status=429, headers={"retry-after": "30"}, model="up-limited", count=10)
    start = time.monotonic()
    with sdk(gw) as c, pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model="limited", messages=HELLO)
    assert time.monotonic() - start < 2, "the gateway waited on a retry-after beyond max_retry_after_s"
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "30"
    assert upstream_models(fake) == ["up-limited"], "retried a target that asked for 30 s of quiet"


def test_429_with_a_long_retry_after_moves_to_another_target(start_sluice, fake):
    gw = start_sluice(configure({"pair": targets(("up-a", 1), ("up-b", 1))}, retries=2, backoff_ms=1,
                                max_retry_after_s=1))
    fake.enqueue(status=429, headers={"retry-after": "30"}, path=CHAT)  # whichever target comes first
    start = time.monotonic()
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="pair", messages=HELLO)
    assert time.monotonic() - start < 2
    models = upstream_models(fake)
    assert len(models) == 2 and models[0] != models[1], models
    assert raw.parse().model == models[1] and attempts(raw) == 2


# --- circuit breaking -------------------------------------------------------------------------

def breaker_gateway(start_sluice, models: dict, cooldown_s: float = 1):
    return start_sluice(configure(models, retries=0, backoff_ms=1, breaker_failures=2, breaker_cooldown_s=cooldown_s))


def test_breaker_opens_then_half_opens_and_closes(start_sluice, fake):
    gw = breaker_gateway(start_sluice, {"fragile": targets(("up-fragile", 1))})
    fake.enqueue(status=500, model="up-fragile", count=2)
    with sdk(gw) as c:
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as err:
                c.chat.completions.create(model="fragile", messages=HELLO)
            assert err.value.status_code == 502
        assert len(fake.requests(CHAT)) == 2

        start = time.monotonic()  # the circuit is open: refused without trying the target
        with pytest.raises(openai.APIStatusError) as err:
            c.chat.completions.create(model="fragile", messages=HELLO)
        assert time.monotonic() - start < 0.5
        assert err.value.status_code == 503
        assert "fragile" in error_of(err.value)["message"]
        assert len(fake.requests(CHAT)) == 2, "a request reached a target whose circuit is open"
        opened = time.monotonic()

        time.sleep(max(0.0, 1.1 - (time.monotonic() - opened)))  # the cool-down passes
        raw = c.chat.completions.with_raw_response.create(model="fragile", messages=HELLO)  # half-open trial
        assert raw.parse().choices[0].message.content == "echo: hello there"
        assert len(fake.requests(CHAT)) == 3
        for _ in range(3):  # the trial succeeded: closed again
            assert c.chat.completions.create(model="fragile", messages=HELLO).choices[0].message.content
        assert len(fake.requests(CHAT)) == 6


def test_breaker_failed_trial_opens_again(start_sluice, fake):
    gw = breaker_gateway(start_sluice, {"fragile": targets(("up-fragile", 1))})
    fake.enqueue(status=500, model="up-fragile", count=3)
    with sdk(gw) as c:
        for _ in range(2):
            with pytest.raises(openai.APIStatusError):
                c.chat.completions.create(model="fragile", messages=HELLO)
        time.sleep(1.1)
        with pytest.raises(openai.APIStatusError) as err:  # the half-open trial fails
            c.chat.completions.create(model="fragile", messages=HELLO)
        assert err.value.status_code == 502
        assert len(fake.requests(CHAT)) == 3
        with pytest.raises(openai.APIStatusError) as err:  # open again, for a whole new cool-down
            c.chat.completions.create(model="fragile", messages=HELLO)
        assert err.value.status_code == 503
        assert len(fake.requests(CHAT)) == 3


def test_open_circuit_target_is_skipped(start_sluice, fake):
    gw = breaker_gateway(start_sluice, {"pair": targets(("up-bad", 1), ("up-good", 1))}, cooldown_s=30)
    fake.enqueue(status=500, model="up-bad", count=100)
    outcomes = []
    with sdk(gw) as c:
        for _ in range(12):
            try:
                outcomes.append(c.chat.completions.create(model="pair", messages=HELLO).model)
            except openai.APIStatusError as exc:
                outcomes.append(exc.status_code)
    models = upstream_models(fake)
    assert models.count("up-bad") == 2, f"up-bad tried after its circuit opened: {models}"
    assert outcomes.count(502) == 2 and outcomes.count("up-good") == 10, \
        f"an open circuit must be skipped (no 503) while another target is healthy: {outcomes}"
    assert outcomes[-6:] == ["up-good"] * 6


# --- timeouts and deadline --------------------------------------------------------------------

@pytest.mark.both_transports
def test_attempt_timeout_then_retry(start_sluice, fake):
    gw = start_sluice(configure({"slow": targets(("up-slow", 1))}, retries=1, backoff_ms=1, timeout_s=0.5))
    fake.enqueue(delay_ms=3000, model="up-slow")
    start = time.monotonic()
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="slow", messages=HELLO)
    elapsed = time.monotonic() - start
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert attempts(raw) == 2
    assert 0.4 < elapsed < 2, f"timeout_s 0.5 then a quick retry took {elapsed:.2f}s"


def test_deadline_bounds_all_attempts(start_sluice, fake):
    gw = start_sluice(configure({"slow": targets(("up-slow", 1))}, retries=10, backoff_ms=1, timeout_s=0.5,
                                deadline_s=1.2))
    fake.enqueue(delay_ms=3000, model="up-slow", count=20)
    start = time.monotonic()
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="slow", messages=HELLO)
    elapsed = time.monotonic() - start
    assert err.value.status_code == 504, err.value.response.text
    assert "slow" in error_of(err.value)["message"], "errors name the public model that failed"
    assert 1.0 < elapsed < 2.2, f"deadline_s 1.2 ended the request after {elapsed:.2f}s"
    assert 2 <= len(fake.requests(CHAT)) <= 3


# --- streams ----------------------------------------------------------------------------------

def test_no_retry_once_the_stream_has_started(start_sluice, fake):
    gw = start_sluice(configure({"streamy": targets(("up-a", 1), ("up-b", 1))}, retries=2, backoff_ms=1))
    fake.enqueue(drop_after_chunks=2, path=CHAT)
    got = []
    with sdk(gw) as c, pytest.raises(CUT_STREAM_ERRORS):
        for chunk in c.chat.completions.create(model="streamy", messages=HELLO, stream=True):
            got.append(chunk)
    assert [c.choices[0].finish_reason for c in got if c.choices and c.choices[0].finish_reason] == []
    assert len(fake.requests(CHAT)) == 1, "retried after the first byte of the stream reached the client"
    assert fake.requests(CHAT)[0]["dropped"]


@pytest.mark.both_transports
def test_stream_that_fails_before_its_first_byte_is_retried(start_sluice, fake):
    # A status, not a dropped connection: libcurl itself silently re-sends a request whose reused
    # connection dies before any answer, which would hide the router's own retry from this test.
    gw = start_sluice(configure({"streamy": targets(("up-a", 1), ("up-b", 1))}, retries=2, backoff_ms=1))
    fake.enqueue(status=503, path=CHAT)
    with sdk(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="streamy", messages=HELLO, stream=True)
        text = "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    assert text == "echo: hello there"
    assert attempts(raw) == 2
    assert [r["status"] for r in fake.requests(CHAT)] == [503, 200]


# --- usage normalisation ----------------------------------------------------------------------

def stream_chat(http: httpx.Client, body: dict) -> tuple[list[dict], bool]:
    with http.stream("POST", CHAT, json=body, headers=AUTH) as resp:
        assert resp.status_code == 200, resp.read()
        return openai_chunks(resp.read().decode())


def test_usage_is_asked_for_and_hidden_from_clients_that_did_not(http, fake):
    chunks, done = stream_chat(http, {"model": "local", "messages": HELLO, "stream": True})
    [up] = fake.requests(CHAT)
    assert (up["body"].get("stream_options") or {}).get("include_usage") is True, up["body"]
    assert done
    assert [c for c in chunks if not c["choices"]] == [], "the usage chunk reached a client that did not ask"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "echo: hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == ["stop"]


def test_usage_chunk_reaches_clients_that_asked(http, fake):
    chunks, done = stream_chat(http, {"model": "local", "messages": HELLO, "stream": True,
                                      "stream_options": {"include_usage": True}})
    [up] = fake.requests(CHAT)
    assert up["body"]["stream_options"] == {"include_usage": True}
    assert done
    usage_chunks = [c for c in chunks if not c["choices"]]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1], json.dumps(chunks)[:500]
    assert usage_chunks[0]["usage"] == up["usage"]
