"""https:// upstreams (docs/OPERATIONS.md, "TLS upstreams"): curl verifies the provider's
certificate against the system store or the provider's ``ca_file``, speaks HTTP/2 where ALPN
offers it, and multiplexes concurrent streams on few connections.

The fake provider serves a certificate from a throwaway CA (harness/tls.py). The provider tests
that exercise the transport run over it too (``both_transports``, conftest.py); these are the
tests about TLS and HTTP/2 themselves.
"""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from fakeprovider import FakeProvider
from harness.constants import SLUICE_TEST_KEY
from harness.manifest import default_manifest, fake_connection, write_manifest
from harness.net import free_port
from harness.sluice import run_cli
from harness.sse import openai_chunks
from harness.tls import make_test_ca

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
over_h2 = pytest.mark.parametrize("upstream_transport", ["h2"], indirect=True)


def sdk(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10)


def error_of(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def point_at(fake: FakeProvider, ca_file: str | None):
    """A manifest edit: the provider at ``fake``, trusting ``ca_file`` (None: the system store)."""
    def edit(manifest: dict) -> None:
        config = manifest["providers"]["fake"]["config"]
        config.pop("ca_file", None)
        config.update(fake_connection(fake.base_url, ca_file))
    return edit


def open_streams_at_once(gw, fake: FakeProvider, n: int) -> tuple[set[str], int]:
    """``n`` streams through ``gw`` held open together; the provider's peers and accepted connections."""
    fake.enqueue(stream_words=8, chunk_delay_ms=1500, count=n, path=CHAT)
    results: list[tuple[int, str, bool]] = []
    lock = threading.Lock()

    def stream_one() -> None:
        with httpx.Client(base_url=gw.base_url, headers=AUTH, timeout=30, trust_env=False) as http, \
                http.stream("POST", "/chat/completions", json={"model": "local", "messages": HELLO, "stream": True}) as resp:
            chunks, done = openai_chunks(resp.read().decode())
            text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
            with lock:
                results.append((resp.status_code, text, done))

    threads = [threading.Thread(target=stream_one, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    all_open = fake.wait_for(lambda rs: len([r for r in rs if r["path"] == CHAT and not r["completed"]]) >= n, 20)
    for thread in threads:
        thread.join(60)
    assert all_open, f"the {n} streams were never open at once: {len(fake.requests(CHAT))} arrived"
    assert len(results) == n and all(r == (200, results[0][1], True) for r in results), results[:3]
    records = fake.requests(CHAT)
    assert len(records) == n and all(r["completed"] for r in records)
    return {r["peer"] for r in records}, fake.connections_accepted()


@over_h2
def test_concurrent_streams_share_few_connections(start_sluice, fake):
    """200 streams at once ride HTTP/2 multiplexing: at most 4 TCP connections to the provider
    (its SETTINGS allow 256 streams per connection), not one per stream."""
    peers, accepted = open_streams_at_once(start_sluice(name="h2-multiplex"), fake, 200)
    assert len(peers) <= 4 and accepted <= 4, f"200 concurrent streams used {len(peers)} connections ({accepted} accepted): {sorted(peers)}"


def test_streams_beyond_one_connection_fill_each_before_the_next(start_sluice, test_ca):
    """A provider that allows 40 streams per connection gets 200 at once on 5 connections (6 at
    most), not one connection for every stream that arrives while the next is being set up
    (libcurl 7.88's own rule: ConnectionGate)."""
    with FakeProvider(tls=test_ca.server, http2=True, max_concurrent_streams=40) as fake:
        gw = start_sluice(point_at(fake, str(test_ca.ca_file)), name="h2-full-connections")
        peers, accepted = open_streams_at_once(gw, fake, 200)
    print(f"\n200 streams, 40 per connection: {len(peers)} connections used, {accepted} accepted")
    assert len(peers) <= 6 and accepted <= 6, f"200 concurrent streams used {len(peers)} connections ({accepted} accepted): {sorted(peers)}"


@over_h2
def test_the_system_store_does_not_trust_a_private_ca(start_sluice, fake):
    """Without ca_file the test CA is unknown: the certificate is refused (verification is always
    on), and the provider is unavailable as if it refused the connection."""
    gw = start_sluice(point_at(fake, None), name="no-ca-file")
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 503, err.value.response.text
    assert error_of(err.value)["code"] == "provider_unavailable"
    assert fake.requests(CHAT) == []


@over_h2
def test_another_ca_is_not_trusted(start_sluice, fake, tmp_path):
    other = make_test_ca(tmp_path / "other", name="some other CA")
    gw = start_sluice(point_at(fake, str(other.ca_file)), name="wrong-ca-file")
    with sdk(gw) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 503, err.value.response.text
    assert fake.requests(CHAT) == []


def test_http1_over_tls(start_sluice, test_ca):
    """A provider that offers only http/1.1 in ALPN gets HTTP/1.1 over TLS, streams included."""
    with FakeProvider(tls=test_ca.server, http2=False) as fake:
        gw = start_sluice(point_at(fake, str(test_ca.ca_file)), name="tls-http1")
        with sdk(gw) as c:
            assert c.chat.completions.create(model="local", messages=HELLO).choices[0].message.content
            text = "".join(ch.choices[0].delta.content or ""
                           for ch in c.chat.completions.create(model="local", messages=HELLO, stream=True) if ch.choices)
        assert text == "echo: hello there"
        assert [(r["protocol"], r["tls"], r["completed"]) for r in fake.requests(CHAT)] == [("HTTP/1.1", True, True)] * 2


def test_a_missing_ca_file_is_refused_at_load(sluice_bin, tmp_path):
    manifest = default_manifest(free_port(), "https://127.0.0.1:1/v1", str(tmp_path / "no-such-ca.pem"))
    result = run_cli(sluice_bin, "check", str(write_manifest(manifest, tmp_path / "plugins.json")))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "providers.fake.config.ca_file" in result.stderr and "no such file" in result.stderr, result.stderr
