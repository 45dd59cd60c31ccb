"""The gateway's own HTTP/1.1 wire, read by h11, a strict client-side parser.

The server writes its answers as bytes and answers pipelined requests itself (docs/ARCHITECTURE.md,
"A request's path"): these tests check what a client reads, through the real binary. Requests
sent together in one write are answered in order on the one connection, thousands of them too;
the answer to a HEAD has no body; an HTTP/1.0 client's stream is not chunked and ends with the
connection; bytes after a request that are not HTTP get a 400 after that request's answer.
"""

from __future__ import annotations

import json
import socket

import h11
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.policy import CHAT
from harness.sse import openai_chunks

HELLO = [{"role": "user", "content": "hello there"}]


def chat(port: int, stream: bool = False, version: str = "1.1", extra: str = "") -> bytes:
    body = json.dumps({"model": "local", "messages": HELLO, "stream": stream}).encode()
    head = (f"POST {CHAT} HTTP/{version}\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {SLUICE_TEST_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode()


def read_answers(sock: socket.socket, methods: list[str]) -> list[tuple[h11.Response, bytes]]:
    """Reads one answer per request sent, as h11 parses them (it fails on any framing error)."""
    client = h11.Connection(h11.CLIENT)
    answers = []
    for method in methods:
        # h11 must see each request to know how its answer is framed (a HEAD's has no body).
        client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        response, body = None, b""
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                client.receive_data(data)
                assert data, f"the connection closed before answer {len(answers) + 1} ended"
                continue
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        answers.append((response, body))
        if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
            break
        client.start_next_cycle()
    return answers


def header(response: h11.Response, name: str) -> list[bytes]:
    return [value for key, value in response.headers if key == name.encode()]


def test_pipelined_requests_are_answered_in_order_on_one_connection(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(chat(gateway.port) + get("/health") + chat(gateway.port, stream=True) + get("/health"))
        answers = read_answers(sock, ["POST", "GET", "POST", "GET"])
    assert [response.status_code for response, _ in answers] == [200, 200, 200, 200]
    assert json.loads(answers[0][1])["choices"][0]["message"]["content"] == "echo: hello there"
    assert json.loads(answers[1][1])["status"] == "ok"
    stream, body = answers[2]
    assert header(stream, "transfer-encoding") == [b"chunked"] and header(stream, "content-type") == [b"text/event-stream"]
    chunks, done = openai_chunks(body.decode())
    assert done and "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")) \
        == "echo: hello there"
    assert not any(header(response, "connection") for response, _ in answers)


def test_many_pipelined_requests_answered_at_once_come_back_in_order(gateway):
    """Thousands of requests in a few writes, each answered without waiting for anything (a health
    check, an unknown path): every one is answered, in order, and the chat after them too."""
    requests = [get("/health") if i % 2 else get("/v1/nothing") for i in range(2000)]
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
        sock.sendall(b"".join(requests) + chat(gateway.port))
        answers = read_answers(sock, ["GET"] * 2000 + ["POST"])
    assert [response.status_code for response, _ in answers] == [200 if i % 2 else 404 for i in range(2000)] + [200]
    assert json.loads(answers[-1][1])["choices"][0]["message"]["content"] == "echo: hello there"


def test_the_answer_to_a_head_request_has_its_length_and_no_body(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(get("/health", "HEAD") + get("/health"))
        (head, head_body), (full, full_body) = read_answers(sock, ["HEAD", "GET"])
    assert head_body == b""
    assert full.status_code == 200 and json.loads(full_body)["status"] == "ok"
    assert head.status_code in (200, 404, 405)
    assert len(header(head, "content-length")) == 1


@pytest.mark.parametrize("extra", ["", "connection: keep-alive\r\n"], ids=["plain", "keep-alive"])
def test_an_http_1_0_stream_is_not_chunked_and_ends_with_the_connection(gateway, extra):
    """HTTP/1.0 has no chunks: the stream's end is the connection's, even for a client that asked
    to keep it (which, before, waited for an end that never came)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(chat(gateway.port, stream=True, version="1.0", extra=extra))
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.0 200 OK"
    names = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:]}
    assert "transfer-encoding" not in names and "content-length" not in names
    assert names["connection"] == "close"
    chunks, done = openai_chunks(body.decode())
    assert done and chunks


def test_bytes_after_a_request_that_are_not_http_get_a_400_after_its_answer(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(get("/health") + b"HELLO THERE\r\n\r\n")
        answers = read_answers(sock, ["GET", "GET"])
        assert [response.status_code for response, _ in answers] == [200, 400]
        assert header(answers[1][0], "connection") == [b"close"]
        sock.settimeout(5)
        assert sock.recv(1) == b""  # then the connection closes
