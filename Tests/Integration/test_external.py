"""The `external` plugin: an HTTP policy service allows, denies or patches requests and whole
answers; when it fails or is slow, `on_error` decides, quickly."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.net import free_port

CHAT = "/v1/chat/completions"
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}


class PolicyService:
    """Denies prompts with "forbidden", rewrites prompts with "patch me", rewrites answers at the
    response stage, and sleeps on "slow". Records what it was asked."""

    def __init__(self) -> None:
        self.questions: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                question = json.loads(self.rfile.read(int(self.headers["content-length"])))
                service.questions.append(question)
                prompt = json.dumps(question["body"].get("messages", []))
                if "slow" in prompt:
                    time.sleep(1.5)
                if question["stage"] == "response":
                    verdict = {"action": "allow", "patch": {"choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": "[reviewed]"}}]}}
                elif "forbidden" in prompt:
                    verdict = {"action": "deny", "message": "prompts about forbidden things are not allowed"}
                elif "patch me" in prompt:
                    verdict = {"action": "allow", "patch": {"messages": [{"role": "user", "content": "patched prompt"}],
                                                            "temperature": None}}
                else:
                    verdict = {"action": "allow"}
                body = json.dumps(verdict).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/check"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def policy():
    service = PolicyService()
    yield service
    service.stop()


def with_external(url: str, **config):
    def edit(manifest: dict) -> None:
        manifest["pipeline"].insert(1, {"plugin": "external", "config": {"url": url, **config}})
    return edit


def chat(gw, text: str, **fields) -> httpx.Response:
    return httpx.post(gw.url + CHAT, headers=AUTH, timeout=10,
                      json={"model": "local", "messages": [{"role": "user", "content": text}], **fields})


def test_allow_deny_and_patch_requests(start_sluice, fake, policy):
    gw = start_sluice(with_external(policy.url))
    assert chat(gw, "hello there").json()["choices"][0]["message"]["content"] == "echo: hello there"
    assert policy.questions[0]["stage"] == "request" and policy.questions[0]["key_name"] == "tester"
    assert policy.questions[0]["model"] == "local"

    denied = chat(gw, "something forbidden")
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "prompts about forbidden things are not allowed"
    assert denied.json()["error"]["code"] == "policy_denied"

    patched = chat(gw, "please patch me", temperature=0.5)
    assert patched.json()["choices"][0]["message"]["content"] == "echo: patched prompt"
    sent = [r["body"] for r in fake.requests(CHAT)]
    assert len(sent) == 2, "the denied request must not reach the provider"
    assert sent[1]["messages"] == [{"role": "user", "content": "patched prompt"}] and "temperature" not in sent[1]


def test_response_stage_rewrites_whole_answers(start_sluice, fake, policy):
    gw = start_sluice(with_external(policy.url, stages=["request", "response"]))
    answer = chat(gw, "hello there").json()
    assert answer["choices"][0]["message"]["content"] == "[reviewed]"
    assert [q["stage"] for q in policy.questions] == ["request", "response"]
    assert policy.questions[1]["response"]["choices"][0]["message"]["content"] == "echo: hello there"


@pytest.mark.parametrize("on_error, status", [("deny", 503), ("allow", 200)])
def test_a_dead_service_follows_on_error(start_sluice, fake, on_error, status):
    gw = start_sluice(with_external(f"http://127.0.0.1:{free_port()}/check", on_error=on_error))
    started = time.monotonic()
    assert chat(gw, "hello there").status_code == status
    assert time.monotonic() - started < 2


def test_a_slow_service_times_out(start_sluice, fake, policy):
    gw = start_sluice(with_external(policy.url, timeout_s=0.3, on_error="deny"))
    started = time.monotonic()
    answer = chat(gw, "be slow please")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "policy_unavailable"
    assert time.monotonic() - started < 1.2
    assert not fake.requests(CHAT)
