"""What the gateway does with bad clients and bad upstreams (docs/ARCHITECTURE.md, "The HTTP surface").

Every error must be OpenAI-shaped with the right status, must not reach the provider when the
gateway itself refuses, and must never leave the gateway hung or unable to serve the next request.
Tests run in file order; the last one checks the gateway survived all of them.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from harness.constants import LIMITED_KEY, MAX_BODY_BYTES, PUBLIC_MODELS, SLUICE_TEST_KEY
from harness.net import as_chunks, parse_response, request_head, send_and_read

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}


def sdk(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=20)


def assert_openai_error(body: dict, type_: str | None = None) -> dict:
    """Checks the OpenAI error envelope; returns the inner error object."""
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if type_ is not None:
        assert error["type"] == type_, error
    return error


# --- refused by the gateway -------------------------------------------------------------------

def test_wrong_key_is_401(gateway, fake):
    with sdk(gateway, "not-a-real-key") as c, pytest.raises(openai.AuthenticationError) as err:
        c.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 401
    assert_openai_error(err.value.response.json(), "authentication_error")
    assert err.value.response.headers.get("x-request-id")
    assert fake.requests(CHAT) == []


def test_no_key_is_401(http, fake):
    resp = http.post(CHAT, json={"model": "local", "messages": HELLO})
    assert resp.status_code == 401
    assert_openai_error(resp.json(), "authentication_error")
    assert fake.requests(CHAT) == []


def test_key_without_the_model_is_403(gateway, fake):
    with sdk(gateway, LIMITED_KEY) as c, pytest.raises(openai.PermissionDeniedError) as err:
        c.chat.completions.create(model="local", messages=HELLO)
    assert err.value.status_code == 403
    assert_openai_error(err.value.response.json(), "permission_error")
    assert fake.requests(CHAT) == []


def test_key_with_the_model_is_served(gateway):
    with sdk(gateway, LIMITED_KEY) as c:
        answer = c.chat.completions.create(model="smol", messages=HELLO)
    assert answer.model == PUBLIC_MODELS["smol"]


def test_malformed_json_is_400(http, fake):
    resp = http.post(CHAT, content=b'{"model": "local", "messages": [', headers={
        **AUTH, "content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.headers.get("content-type", "").startswith("application/json")
    assert_openai_error(resp.json(), "invalid_request_error")
    assert fake.requests(CHAT) == []


def test_unknown_model_is_404(client, fake):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert err.value.status_code == 404
    error = assert_openai_error(err.value.response.json(), "invalid_request_error")
    assert error["code"] == "model_not_found"
    assert fake.requests(CHAT) == []


def test_missing_messages_is_400(http):
    resp = http.post(CHAT, json={"model": "local"}, headers=AUTH)
    assert resp.status_code == 400
    error = assert_openai_error(resp.json(), "invalid_request_error")
    assert error["param"] == "messages"


def _oversized_chat_body() -> bytes:
    body = json.dumps({"model": "local", "messages": [{"role": "user", "content": "x" * (1 << 20)}]}).encode()
    assert len(body) > 16 * MAX_BODY_BYTES
    return body


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_oversized_body_is_413(gateway, fake, framing):
    """1 MB against max_body_bytes 64 KiB: answered 413 without waiting for (or forwarding) it all.

    Sent on a raw socket that reads while it writes, since the gateway may answer and close
    before the body is through (see harness/net.py).
    """
    body = _oversized_chat_body()
    pieces = [body[i:i + 16384] for i in range(0, len(body), 16384)]
    headers = {**AUTH, "content-type": "application/json"}
    if framing == "content-length":
        headers["content-length"] = str(len(body))
    else:
        headers["transfer-encoding"] = "chunked"
        pieces = list(as_chunks(pieces))
    answer = send_and_read(gateway.port, request_head("POST", CHAT, gateway.port, headers), pieces)
    assert answer.status == 413, (answer.status, answer.body[:300], answer.notes)
    assert_openai_error(answer.json(), "invalid_request_error")
    assert fake.requests(CHAT) == []
    assert gateway.get("/health")[0] == 200


@pytest.mark.parametrize("raw", [
    b"BLAH BLAH\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    # With a key: a request refused from its head alone is answered before its body is read.
    f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SLUICE_TEST_KEY}\r\n"
    "Transfer-Encoding: chunked\r\n\r\nzz\r\n".encode(),
], ids=["method", "header", "content-length", "chunk-size"])
def test_malformed_http_is_an_openai_400(gateway, fake, raw):
    answer = send_and_read(gateway.port, raw, [], timeout=5)
    assert answer.status == 400, (answer.status, answer.body[:300], answer.notes)
    assert answer.headers.get("connection") == "close"
    error = assert_openai_error(answer.json(), "invalid_request_error")
    assert error["code"] == "malformed_http_request" and "not valid HTTP/1.1" in error["message"], error
    assert fake.requests(CHAT) == []


def test_garbage_after_a_request_ends_the_connection_after_its_answer(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(request_head("GET", "/ready", gateway.port, {}) + b"GARBAGE\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # the gateway closes the connection: no timeout
            received += chunk
    answer = parse_response(received, eof=True)
    assert answer is not None and answer.status == 200 and answer.json() == {"status": "ready"}, received[:300]


# --- failing upstreams ------------------------------------------------------------------------

def test_upstream_500_is_502(client, fake):
    fake.enqueue(status=500, path=CHAT)
    start = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="local", messages=HELLO)
    assert time.monotonic() - start < 10, "the gateway sat on an upstream error"
    assert err.value.status_code == 502
    assert_openai_error(err.value.response.json())
    assert len(fake.requests(CHAT)) == 1  # retries: 0 in the manifest


def test_upstream_drop_mid_stream_ends_the_stream(client, fake):
    fake.enqueue(drop_after_chunks=2, path=CHAT)
    chunks, error = [], None
    start = time.monotonic()
    try:
        for chunk in client.chat.completions.create(model="local", messages=HELLO, stream=True):
            chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - raising (any SDK/transport error) is fine, hanging is not
        error = exc
    assert time.monotonic() - start < 15, "the stream hung after the upstream dropped"
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == [], f"the gateway invented an ending (error: {error!r})"
    assert fake.requests(CHAT)[0]["dropped"]

    answer = client.chat.completions.create(model="local", messages=HELLO)  # still serving
    assert answer.choices[0].message.content == "echo: hello there"


def test_client_gone_mid_stream_cancels_upstream(gateway, fake):
    """Hanging up on a slow stream must make the gateway hang up on the provider, promptly."""
    fake.enqueue(chunk_delay_ms=100, stream_words=200, path=CHAT)  # ~20 s if nobody cancels
    with httpx.Client(base_url=gateway.url, timeout=20, trust_env=False) as raw:
        with raw.stream("POST", CHAT, json={"model": "local", "messages": HELLO, "stream": True},
                        headers=AUTH) as resp:
            assert resp.status_code == 200
            events = 0
            for line in resp.iter_lines():
                events += line.startswith("data: ")
                if events == 2:
                    break
    aborted = fake.wait_for(lambda rs: [r for r in rs if r["path"] == CHAT and r["stream_aborted"]], 5)
    progress = [{k: r[k] for k in ("chunks_sent", "completed", "client_disconnected")} for r in fake.requests(CHAT)]
    assert aborted, f"provider still streaming 5 s after the client left: {progress}"
    assert aborted[0]["chunks_sent"] < 100


def test_gateway_survived_everything(gateway, client):
    assert gateway.alive
    assert gateway.get("/health")[0] == 200
    assert gateway.get("/ready")[0] == 200
    assert client.chat.completions.create(model="local", messages=HELLO).choices[0].message.content
