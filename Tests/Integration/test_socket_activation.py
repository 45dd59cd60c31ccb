"""Socket activation (docs/ARCHITECTURE.md, "The process contract"): sluice serves on sockets it is handed instead of binding its own.

With sluice.socket, systemd owns the listening socket, so a restart or an upgrade refuses no
connection: while no process accepts, new connections wait in the socket's backlog, and the next
process answers them. The manifest's own listen port stays unused throughout, which proves the
passed socket is the one served.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import threading
import time

import pytest

from fakeprovider import openai_shapes as shapes
from harness.constants import SLUICE_TEST_KEY
from harness.net import free_port
from harness.sluice import listening_socket, sluice_env

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
EXPECTED_TEXT = shapes.join_words(shapes.reply_words(HELLO))


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def request(port: int, method: str, path: str, body: dict | None = None, timeout: float = 20) -> tuple[int, bytes]:
    """One request on a new connection (closed after), so that every request goes through accept()."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {**AUTH, "connection": "close"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def check_answer(kind: str, status: int, body: bytes) -> str | None:
    """None if the answer to a request of ``kind`` is complete and right, else what is wrong."""
    if status != 200:
        return f"{kind}: HTTP {status} {body[:200]!r}"
    if kind == "models":
        ids = {m["id"] for m in json.loads(body)["data"]}
        return None if {"local", "smol"} <= ids else f"models: {ids}"
    if kind == "chat":
        text = json.loads(body)["choices"][0]["message"]["content"]
        return None if text == EXPECTED_TEXT else f"chat: {text!r}"
    text, done = [], False
    for line in body.decode().splitlines():
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            for choice in json.loads(line[6:]).get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
    if "".join(text) != EXPECTED_TEXT or not done:
        return f"stream: {''.join(text)!r}, [DONE] seen: {done}"
    return None


class Load:
    """Client threads sending requests back to back (each on a new connection) until stopped."""

    KINDS = ("models", "chat", "stream")

    def __init__(self, port: int, threads: int):
        self.port = port
        self.t0 = time.monotonic()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.done: list[tuple[float, float]] = []   # (sent, answered) of each good answer
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        n = index
        while not self.stop_event.is_set():
            kind = self.KINDS[n % len(self.KINDS)]
            n += 1
            sent = time.monotonic()
            try:
                if kind == "models":
                    status, body = request(self.port, "GET", "/v1/models")
                else:
                    status, body = request(self.port, "POST", CHAT,
                                           {"model": "local", "messages": HELLO, "stream": kind == "stream"})
                problem = check_answer(kind, status, body)
            except Exception as exc:  # noqa: BLE001 - any transport error is a lost request
                problem = f"{kind}: {type(exc).__name__}: {exc}"
            with self.lock:
                if problem:
                    self.failures.append(f"sent at t={sent - self.t0:.3f}s, failed at t={time.monotonic() - self.t0:.3f}s: {problem}")
                else:
                    self.done.append((sent, time.monotonic()))

    def count(self) -> int:
        with self.lock:
            return len(self.done)

    def wait_for_count(self, target: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= target:
                return True
            time.sleep(0.02)
        return False

    def start(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout: float = 25) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"


# --- one socket from systemd-socket-activate ---------------------------------------------------

def test_systemd_socket_activate_serves_on_the_passed_socket(start_sluice, make_manifest):
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate not found (Debian's systemd package)"
    port, own_port = free_port(), free_port()
    wrapper = [activate, "--listen", f"127.0.0.1:{port}", "--fdname=front-door",
               "-E", "FAKE_PROVIDER_KEY", "-E", "SLUICE_TEST_KEY"]
    gw = start_sluice(make_manifest(own_port), wrapper=wrapper, port=port, name="activated")

    assert check_answer("chat", *request(port, "POST", CHAT, {"model": "local", "messages": HELLO})) is None
    assert check_answer("stream", *request(port, "POST", CHAT, {"model": "local", "messages": HELLO, "stream": True})) is None
    assert refuses_connections(own_port), f"sluice also listens on the manifest's port {own_port}"
    assert gw.wait_for_log("front-door"), "the socket's name (LISTEN_FDNAMES) is not logged"


def test_several_passed_sockets_are_all_served(start_sluice, make_manifest):
    first, second = listening_socket(), listening_socket()
    own_port = free_port()
    with first, second:
        gw = start_sluice(make_manifest(own_port), listen_sockets=[(first, "public"), (second, "internal")])
        for sock in (first, second):
            port = sock.getsockname()[1]
            assert check_answer("models", *request(port, "GET", "/v1/models")) is None, f"socket on {port}"
            assert check_answer("stream", *request(port, "POST", CHAT, {"model": "local", "messages": HELLO, "stream": True})) is None
        assert refuses_connections(own_port), f"sluice also listens on the manifest's port {own_port}"
        assert gw.wait_for_log("public") and gw.wait_for_log("internal"), "the sockets' names (LISTEN_FDNAMES) are not logged"


def test_listen_fds_for_another_process_are_ignored(start_sluice, make_manifest):
    """LISTEN_PID names the process the sockets are for; sluice must not take a parent's fds."""
    env = sluice_env({"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "http"})
    gw = start_sluice(make_manifest(), env=env)  # ready means: answering on the manifest's own port
    assert check_answer("models", *request(gw.port, "GET", "/v1/models")) is None


# --- a restart under load on a socket held by the test (as systemd holds it) --------------------

def test_restart_on_a_held_socket_loses_no_request(start_sluice, make_manifest):
    """Like `systemctl restart sluice.service` with sluice.socket: no request may fail."""
    sock = listening_socket(backlog=1024)
    port = sock.getsockname()[1]
    manifest = make_manifest()          # its own listen port is never used
    with sock:
        old = start_sluice(manifest, listen_sockets=[(sock, "http")], name="old")
        load = Load(port, threads=4).start()
        try:
            assert load.wait_for_count(60, timeout=15), f"only {load.count()} answers before the restart: {load.failures[:5]}"
            sigterm = time.monotonic()
            old.send_signal(signal.SIGTERM)
            code = old.wait_exit(10)
            assert code == 0, f"old gateway's exit code {code} (None: still draining after 10 s)"
            old_gone = time.monotonic()
            new = start_sluice(manifest, listen_sockets=[(sock, "http")], name="new")
            new_ready = time.monotonic()
            before_new = load.count()
            assert load.wait_for_count(before_new + 60, timeout=15), f"only {load.count() - before_new} answers after the restart"
        finally:
            load.stop()
        new.stop()

    timeline = (f"SIGTERM at t={sigterm - load.t0:.3f}s, old exited at t={old_gone - load.t0:.3f}s, "
                f"new ready at t={new_ready - load.t0:.3f}s")
    assert not load.failures, (f"{len(load.failures)} of {len(load.failures) + load.count()} requests failed across "
                               f"the restart ({timeline}): {load.failures[:10]}")
    # Sent before the old gateway had exited and answered after: it waited in the backlog.
    queued = [d for d in load.done if d[0] < old_gone < d[1]]
    assert queued, "no request waited in the backlog while no process accepted (the restart was not exercised)"
