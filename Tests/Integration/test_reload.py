"""Reload and drain under load (docs/ARCHITECTURE.md, "The process contract"): SIGHUP swaps the manifest without failing a request;
SIGTERM lets open streams finish within drain_timeout_s and cuts the rest with an error event.

The load here is bounded (about 200 requests/s for 10 s from a few client threads, streamed and
whole chat completions mixed) and runs against the fake provider on loopback.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from fakeprovider import openai_shapes as shapes
from harness.constants import SLUICE_TEST_KEY
from harness.manifest import write_manifest
from harness.sluice import run_cli

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}

RATE_PER_S = 200
DURATION_S = 10
CLIENT_THREADS = 6
RELOADS = 20
SLOW_WORDS, SLOW_CHUNK_MS = 15, 100  # a "slow" stream lasts ~1.5 s, across several reloads


# --- helpers ------------------------------------------------------------------------------------

def sse(raw: str) -> tuple[str, bool, list[dict]]:
    """(the concatenated delta text, whether [DONE] came, the error events) of an SSE body."""
    text, done, errors, event = [], False, [], None
    for line in raw.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if not line.startswith("data:"):
            if not line:
                event = None
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        payload = json.loads(data)
        if event == "error" or "error" in payload:
            errors.append(payload)
            continue
        for choice in payload.get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text), done, errors


def expected_text(words: int | None = None) -> str:
    return shapes.join_words(shapes.reply_words(HELLO, words))


def model_ids(gw) -> set[str]:
    resp = httpx.get(gw.base_url + "/models", headers=AUTH, timeout=5, trust_env=False)
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


def replace_manifest(gw, manifest: dict) -> None:
    """Writes the gateway's manifest file atomically (a reload never reads half a file)."""
    tmp = gw.config_path.with_suffix(".tmp")
    write_manifest(manifest, tmp)
    os.replace(tmp, gw.config_path)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def wait_until(predicate, timeout: float, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


class ChatLoad:
    """Client threads, each with its own keep-alive connection, pacing chat requests to RATE_PER_S
    in all; odd requests stream. ``models`` is read at every request, so models added by a reload
    join the mix as soon as the reloader has seen them listed."""

    def __init__(self, gw, models: list[str]):
        self.gw = gw
        self.models = models
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok: dict[str, int] = {}
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENT_THREADS)]

    def _run(self, index: int) -> None:
        start, k = time.monotonic(), 0
        with httpx.Client(base_url=self.gw.url, headers=AUTH, timeout=20, trust_env=False) as client:
            while not self.stop_event.is_set():
                due = start + (k * CLIENT_THREADS + index) / RATE_PER_S
                k += 1
                if (pause := due - time.monotonic()) > 0:
                    time.sleep(pause)
                with self.lock:
                    model = self.models[(k + index) % len(self.models)]
                stream = (k + index) % 2 == 1
                self._record(model, stream, self._one(client, model, stream))

    @staticmethod
    def _one(client: httpx.Client, model: str, stream: bool) -> str | None:
        body = {"model": model, "messages": HELLO, "stream": stream}
        try:
            if stream:
                with client.stream("POST", CHAT, json=body) as resp:
                    raw = resp.read().decode()
                    if resp.status_code != 200:
                        return f"HTTP {resp.status_code} {raw[:200]}"
                text, done, errors = sse(raw)
                if errors or not done or text != expected_text():
                    return f"stream cut or wrong: text={text!r} done={done} errors={errors}"
                return None
            resp = client.post(CHAT, json=body)
            if resp.status_code != 200:
                return f"HTTP {resp.status_code} {resp.text[:200]}"
            text = resp.json()["choices"][0]["message"]["content"]
            return None if text == expected_text() else f"wrong text {text!r}"
        except Exception as exc:  # noqa: BLE001 - any transport error is a failed request
            return f"{type(exc).__name__}: {exc}"

    def _record(self, model: str, stream: bool, problem: str | None) -> None:
        with self.lock:
            if problem:
                self.failures.append(f"{model} {'stream' if stream else 'whole'}: {problem}")
            else:
                self.ok[model] = self.ok.get(model, 0) + 1

    def add_model(self, model: str) -> None:
        with self.lock:
            self.models.append(model)

    def total(self) -> int:
        with self.lock:
            return sum(self.ok.values())


class SlowStreams(threading.Thread):
    """Back-to-back ~1.5 s streams of the model "slow": each spans several reloads."""

    def __init__(self, gw):
        super().__init__(daemon=True)
        self.gw = gw
        self.stop_event = threading.Event()
        self.completed, self.failures = 0, []

    def run(self) -> None:
        with httpx.Client(base_url=self.gw.url, headers=AUTH, timeout=20, trust_env=False) as client:
            while not self.stop_event.is_set():
                try:
                    with client.stream("POST", CHAT, json={"model": "slow", "messages": HELLO, "stream": True}) as resp:
                        raw = resp.read().decode()
                    text, done, errors = sse(raw)
                    if resp.status_code == 200 and done and not errors and text == expected_text(SLOW_WORDS):
                        self.completed += 1
                    else:
                        self.failures.append(f"HTTP {resp.status_code}: text={text!r} done={done} errors={errors}")
                except Exception as exc:  # noqa: BLE001
                    self.failures.append(f"{type(exc).__name__}: {exc}")


# --- SIGHUP under load --------------------------------------------------------------------------

def with_slow_model(manifest: dict) -> None:
    manifest["models"]["slow"] = {"targets": [{"provider": "fake", "model": "upstream-slow"}]}


def test_reloads_under_load_fail_no_request(start_sluice, fake):
    gw = start_sluice(with_slow_model)
    fake.enqueue(model="upstream-slow", chunk_delay_ms=SLOW_CHUNK_MS, stream_words=SLOW_WORDS, count=1000)
    load = ChatLoad(gw, ["local", "smol"])
    slow = SlowStreams(gw)
    manifest = copy.deepcopy(gw.manifest)
    added: list[str] = []
    refused_markers: list[str] = []
    reload_problems: list[str] = []

    for t in load.threads:
        t.start()
    slow.start()
    started = time.monotonic()
    try:
        for i in range(RELOADS):
            time.sleep(max(0.0, started + 0.5 + i * (DURATION_S - 1) / RELOADS - time.monotonic()))
            if i % 2 == 0:  # valid: one more public model
                name = f"reload-{i}"
                manifest["models"][name] = {"targets": [{"provider": "fake", "model": f"upstream-{name}"}]}
                replace_manifest(gw, manifest)
                gw.send_signal(signal.SIGHUP)
                if wait_until(lambda: name in model_ids(gw), timeout=5):
                    added.append(name)
                    load.add_model(name)
                else:
                    reload_problems.append(f"{name} not listed in /v1/models 5 s after SIGHUP")
            else:  # invalid: an unknown key whose JSON path the error must name
                marker = f"bogus_{i}"
                broken = copy.deepcopy(manifest)
                broken["server"][marker] = True
                replace_manifest(gw, broken)
                gw.send_signal(signal.SIGHUP)
                refused_markers.append(marker)
                if not wait_until(lambda: f"server.{marker}" in gw.stdout_text(), timeout=5):
                    reload_problems.append(f"refused reload {i} not logged (no line naming server.{marker})")
        time.sleep(max(0.0, started + DURATION_S - time.monotonic()))
    finally:
        load.stop_event.set()
        slow.stop_event.set()
        for t in [*load.threads, slow]:
            t.join(25)
    elapsed = time.monotonic() - started

    assert not any(t.is_alive() for t in [*load.threads, slow]), "a client thread hung"
    assert not load.failures, f"{len(load.failures)} of {len(load.failures) + load.total()} requests failed during reloads: {load.failures[:10]}"
    assert not slow.failures, f"streams across reloads failed: {slow.failures[:5]}"
    assert not reload_problems, reload_problems
    # A floor on the load itself, only to show it was there: the clients and the fake share one
    # Python process, and `make test` runs four test files at once, on two cores here.
    assert load.total() >= 0.2 * RATE_PER_S * elapsed, f"only {load.total()} requests in {elapsed:.1f} s: the load was not real"
    assert slow.completed >= 3, f"only {slow.completed} slow streams completed"

    listed = model_ids(gw)
    assert {"local", "smol", "slow", *added} <= listed, f"missing after the reloads: {sorted({'local', 'smol', 'slow', *added} - listed)}"
    assert len(added) == RELOADS // 2
    assert all(f"server.{m}" in gw.stdout_text() for m in refused_markers)
    for model in ["local", "smol", *added]:
        resp = httpx.post(gw.url + CHAT, headers=AUTH, json={"model": model, "messages": HELLO}, timeout=10, trust_env=False)
        assert resp.status_code == 200, f"{model}: {resp.status_code} {resp.text[:200]}"
    assert gw.alive


# --- SIGTERM with open streams ------------------------------------------------------------------

class StreamReader(threading.Thread):
    def __init__(self, gw, model: str):
        super().__init__(daemon=True)
        self.gw, self.model = gw, model
        self.first_event = threading.Event()
        self.raw, self.status, self.error, self.ended = "", None, None, None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=20, trust_env=False) as c, c.stream(
                    "POST", self.gw.url + CHAT, headers=AUTH,
                    json={"model": self.model, "messages": HELLO, "stream": True}) as resp:
                self.status = resp.status_code
                for line in resp.iter_lines():
                    self.raw += line + "\n"
                    if line.startswith("data:"):
                        self.first_event.set()
        except Exception as exc:  # noqa: BLE001 - a cut stream may end in any transport error
            self.error = exc
        finally:
            self.ended = time.monotonic()
            self.first_event.set()


def test_sigterm_finishes_open_streams_and_cuts_the_rest_with_an_error(start_sluice, fake):
    drain_s = 3
    gw = start_sluice(lambda m: m["server"].update(drain_timeout_s=drain_s))
    fake.enqueue(model="upstream-local", chunk_delay_ms=100, stream_words=12, count=4)   # ~1.2 s: finish
    fake.enqueue(model="upstream-smol", chunk_delay_ms=100, stream_words=200, count=2)   # ~20 s: cut
    short = [StreamReader(gw, "local") for _ in range(4)]
    long = [StreamReader(gw, "smol") for _ in range(2)]
    for reader in [*short, *long]:
        reader.start()
    for reader in [*short, *long]:
        assert reader.first_event.wait(5) and reader.status == 200, (reader.model, reader.status, reader.error)

    signalled = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    assert wait_until(lambda: gw.get("/ready", timeout=0.5)[0] != 200, timeout=1), "/ready still 200 1 s after SIGTERM"
    assert wait_until(lambda: refuses_connections(gw.port), timeout=1), "still accepting connections 1 s after SIGTERM"
    assert all(reader.is_alive() for reader in long), "the long streams ended before the listener was checked"
    code = gw.wait_exit(drain_s + 3)
    exited = time.monotonic() - signalled
    for reader in [*short, *long]:
        reader.join(3)

    assert code == 0, f"exit code {code} {exited:.1f} s after SIGTERM (None: still running)"
    assert exited < drain_s + 2, f"exited {exited:.1f} s after SIGTERM with drain_timeout_s={drain_s}"
    for reader in short:
        text, done, errors = sse(reader.raw)
        assert reader.error is None and done and not errors, f"a stream that fits the drain was cut: {reader.error!r} {errors}"
        assert text == expected_text(12)
        assert reader.ended - signalled < drain_s, "a short stream ended after the drain window"
    for reader in long:
        assert not reader.is_alive(), "a client's stream hung after the gateway exited"
        text, done, errors = sse(reader.raw)
        assert not done, "a stream cut at the drain timeout must not end with [DONE]"
        assert errors, f"a stream cut at the drain timeout got no error event: {reader.raw[-300:]!r}"
        assert drain_s - 0.5 < reader.ended - signalled < drain_s + 2, f"cut {reader.ended - signalled:.1f} s after SIGTERM"


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_second_signal_during_drain_exits_at_once(start_sluice, fake, second):
    gw = start_sluice(lambda m: m["server"].update(drain_timeout_s=20))
    fake.enqueue(chunk_delay_ms=100, stream_words=200, path=CHAT)  # ~20 s
    reader = StreamReader(gw, "local")
    reader.start()
    assert reader.first_event.wait(5) and reader.status == 200, (reader.status, reader.error)

    gw.send_signal(signal.SIGTERM)
    assert gw.wait_exit(0.5) is None, "exited at the first signal although a stream was open (drain_timeout_s=20)"
    forced = time.monotonic()
    gw.send_signal(second)
    code = gw.wait_exit(2)
    assert code is not None, f"still running 2 s after a second {second.name} during the drain"
    assert code != 0, f"a forced exit must be non-zero, got {code}"
    assert time.monotonic() - forced < 2
    reader.join(3)


# --- sluice reload ------------------------------------------------------------------------------

HUP_RECORDER = """
import signal, sys, time
out = open(sys.argv[1], "a", buffering=1)
signal.signal(signal.SIGHUP, lambda *_: out.write("HUP\\n"))
out.write("ready\\n")
time.sleep(30)
"""


def test_reload_command_does_not_signal_when_the_manifest_is_invalid(sluice_bin, make_manifest, tmp_path):
    record = tmp_path / "signals.txt"
    target = subprocess.Popen([sys.executable, "-c", HUP_RECORDER, str(record)])
    try:
        assert wait_until(lambda: record.exists() and "ready" in record.read_text(), timeout=5)
        bad = make_manifest()
        bad["server"]["max_body_bytes"] = "ten"
        bad_path = write_manifest(bad, tmp_path / "bad.json")
        done = run_cli(sluice_bin, "reload", "--pid", str(target.pid), "--config", str(bad_path))
        assert done.returncode == 1, f"exit {done.returncode}: {done.stdout}{done.stderr}"
        assert "server.max_body_bytes" in done.stdout + done.stderr, done.stdout + done.stderr
        time.sleep(0.3)
        assert "HUP" not in record.read_text(), "SIGHUP sent although the manifest is invalid"

        good_path = write_manifest(make_manifest(), tmp_path / "good.json")
        done = run_cli(sluice_bin, "reload", "--pid", str(target.pid), "--config", str(good_path))
        assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr}"
        assert wait_until(lambda: "HUP" in record.read_text(), timeout=3), "no SIGHUP arrived"
    finally:
        target.kill()
        target.wait(5)


def test_reload_command_with_the_serve_pid_file(start_sluice, sluice_bin, tmp_path):
    pid_file = tmp_path / "sluice.pid"
    gw = start_sluice(serve_args=("--pid-file", str(pid_file)))
    assert pid_file.read_text().strip() == str(gw.pid)

    gw.manifest["models"]["via-cli"] = {"targets": [{"provider": "fake", "model": "upstream-cli"}]}
    replace_manifest(gw, gw.manifest)
    done = run_cli(sluice_bin, "reload", "--pid-file", str(pid_file), "--config", str(gw.config_path))
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr}"
    assert wait_until(lambda: "via-cli" in model_ids(gw), timeout=5), "the reloaded model is not listed"

    assert gw.stop() == 0
    assert not pid_file.exists(), "the pid file is left behind after a clean exit"
