"""The plugin-authoring example, Examples/CustomGateway: Acme's own binary (`acme-gateway`),
built from Sluice's Kernel and built-ins plus two plugins of its own, served for real.

- ``inject-headers`` adds headers to what reaches the provider and to every answer;
- ``pii-mask`` masks e-mail addresses in prompts and in answers, also when a streamed answer
  spreads one address over several chunks (scripted here through the fake provider);
- the binary has the whole ``sluice`` command line over its own registry.

The binary is ``$ACME_GATEWAY_BIN`` or ``<repo>/.build/debug/acme-gateway`` (``make example``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anthropic
import openai
import pytest

from harness.constants import FAKE_PROVIDER_KEY, SLUICE_TEST_KEY
from harness.sluice import Sluice, SluiceError, run_cli, sluice_env

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def acme_bin() -> Path:
    path = Path(os.environ.get("ACME_GATEWAY_BIN") or REPO_ROOT / ".build" / "debug" / "acme-gateway")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"acme-gateway not found at {path}: run `make example`, or set ACME_GATEWAY_BIN", pytrace=False)
    return path


def acme_manifest(make_manifest) -> dict:
    manifest = make_manifest()
    auth, router = manifest["pipeline"]
    manifest["pipeline"] = [
        auth,
        {"plugin": "inject-headers", "config": {
            "upstream": {"x-acme-team": "team-{key_name}", "authorization": "Bearer not-the-provider-key"},
            "response": {"x-acme-request": "{request_id}"},
        }},
        {"plugin": "pii-mask", "config": {}},
        router,
    ]
    return manifest


@pytest.fixture
def acme(acme_bin: Path, make_manifest, tmp_path: Path) -> Sluice:
    try:
        gw = Sluice(acme_bin, acme_manifest(make_manifest), tmp_path, name="acme").start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield gw
    gw.stop()


def openai_stream(text_pieces: list[str]) -> str:
    """An OpenAI chat stream whose content arrives in exactly these pieces."""
    def chunk(delta: dict, finish: str | None = None) -> str:
        return "data: " + json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                                      "model": "upstream-local",
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    return ("".join([chunk({"role": "assistant", "content": ""})] + [chunk({"content": p}) for p in text_pieces]
                    + [chunk({}, "stop")]) + "data: [DONE]\n\n")


def test_the_provider_sees_masked_prompts_and_injected_headers(acme: Sluice, fake):
    client = openai.OpenAI(base_url=acme.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="local", messages=[{"role": "user", "content": "I am bob@example.org, hello"}],
        extra_headers={"x-request-id": "acme-req-1"})
    answer = raw.parse()
    assert raw.headers["x-acme-request"] == "acme-req-1"
    assert "bob@example.org" not in answer.choices[0].message.content

    [seen] = fake.requests("/v1/chat/completions")
    assert seen["body"]["messages"][0]["content"] == "I am [email], hello"
    assert seen["headers"]["x-acme-team"] == "team-tester"
    # A middleware's header never replaces the provider's own credentials.
    assert seen["headers"]["authorization"] == f"Bearer {FAKE_PROVIDER_KEY}"


def test_an_address_split_over_stream_chunks_never_reaches_the_client(acme: Sluice, fake):
    fake.enqueue(path="/v1/chat/completions", status=200, headers={"content-type": "text/event-stream"},
                 body=openai_stream(["Write ", "to ", "ali", "ce@exa", "mple.", "com", " today."]))
    client = openai.OpenAI(base_url=acme.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    pieces = [c.choices[0].delta.content for c in client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "where?"}], stream=True) if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "Write to [email] today."
    assert not any(part in piece for piece in pieces for part in ("ali", "exa", "mple"))


def test_anthropic_clients_get_masked_streams_too(acme: Sluice, fake):
    # The provider speaks OpenAI; sluice translates for the Anthropic client, and pii-mask,
    # standing before the router, masks the translated events.
    fake.enqueue(path="/v1/chat/completions", status=200, headers={"content-type": "text/event-stream"},
                 body=openai_stream(["Mail carol", "@example", ".com now"]))
    client = anthropic.Anthropic(base_url=acme.url, api_key=SLUICE_TEST_KEY, max_retries=0)
    with client.messages.stream(model="local", max_tokens=32, messages=[{"role": "user", "content": "who?"}]) as stream:
        pieces = list(stream.text_stream)
    assert "".join(pieces) == "Mail [email] now"
    assert not any("carol" in piece for piece in pieces)


def test_refusals_carry_the_injected_response_header(acme: Sluice):
    client = openai.OpenAI(base_url=acme.base_url, api_key=SLUICE_TEST_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"x-request-id": "acme-req-2"})
    assert caught.value.response.headers["x-acme-request"] == "acme-req-2"


def test_the_command_line_knows_the_programs_own_plugins(acme_bin: Path, sluice_bin: Path, make_manifest, tmp_path: Path):
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(acme_manifest(make_manifest)))
    checked = run_cli(acme_bin, "check", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "4 pipeline stages" in checked.stdout

    stock = run_cli(sluice_bin, "check", str(path))
    assert stock.returncode == 1
    assert 'pipeline[1].plugin: unknown plugin "inject-headers"' in stock.stderr

    listing = run_cli(acme_bin, "plugins")
    assert "pii-mask  (pipeline)" in listing.stdout and "inject-headers  (pipeline)" in listing.stdout
    schema = json.loads(run_cli(acme_bin, "schema").stdout)
    assert "pii-mask" in json.dumps(schema) and "inject-headers" in json.dumps(schema)
    assert run_cli(acme_bin, "--help").stdout.startswith("OVERVIEW: Acme's AI gateway")

    # A refused manifest names the file, the path and the problem, as sluice does.
    bad = acme_manifest(make_manifest)
    bad["pipeline"][1]["config"]["response"] = {"x-acme": "{tenant}"}
    path.write_text(json.dumps(bad))
    refused = run_cli(acme_bin, "check", str(path))
    assert refused.returncode == 1
    assert "acme.json: pipeline[1].config.response" in refused.stderr and "unknown placeholder {tenant}" in refused.stderr


@pytest.fixture
def acme_server(acme_bin: Path, make_manifest, tmp_path: Path, fake) -> Sluice:
    """acme-gateway whose one provider is its own `acme-model-server` (Chat Completions only)."""
    manifest = make_manifest()
    [(name, provider)] = manifest["providers"].items()
    manifest["providers"] = {name: {"plugin": "acme-model-server",
                                    "config": {"base_url": provider["config"]["base_url"], "tenant": "acme-tenant-7"}}}
    try:
        gw = Sluice(acme_bin, manifest, tmp_path, name="acme-server").start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield gw
    gw.stop()


def test_a_custom_chat_provider_serves_every_front_door(acme_server: Sluice, fake):
    # The provider declares Chat Completions only; the Kernel translates the other two front doors.
    chat = openai.OpenAI(base_url=acme_server.base_url, api_key=SLUICE_TEST_KEY, max_retries=0,
                         _strict_response_validation=True)
    assert chat.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content
    streamed = "".join(c.choices[0].delta.content or "" for c in chat.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "hi"}], stream=True) if c.choices)
    assert streamed

    claude = anthropic.Anthropic(base_url=acme_server.url, api_key=SLUICE_TEST_KEY, max_retries=0,
                                 _strict_response_validation=True)
    message = claude.messages.create(model="local", max_tokens=32, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text and message.usage.input_tokens > 0
    with claude.messages.stream(model="local", max_tokens=32, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream)
        assert stream.get_final_message().usage.output_tokens > 0

    response = chat.responses.create(model="local", input="hi")
    assert response.output_text and response.usage.total_tokens > 0
    with chat.responses.stream(model="local", input="hi") as stream:
        assert "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        assert stream.get_final_response().status == "completed"

    seen = fake.requests("/v1/chat/completions")
    assert len(seen) == 6
    assert all(r["headers"]["x-acme-tenant"] == "acme-tenant-7" for r in seen)
