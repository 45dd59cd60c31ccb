"""Logs go to the journal with structured fields when systemd connects stdout to it
(`JOURNAL_STREAM`). A journald of our own runs for the test when none is running."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.manifest import write_manifest
from harness.net import free_port
from harness.sluice import sluice_env

JOURNALD = Path("/lib/systemd/systemd-journald")
SOCKET = Path("/run/systemd/journal/socket")


@pytest.fixture(scope="module")
def journald():
    """A running journald: the system's, or one started here (needs root, as CI is)."""
    if SOCKET.exists() and subprocess.run(["journalctl", "-n", "0"], capture_output=True).returncode == 0 \
            and _responds():
        yield None
        return
    assert JOURNALD.exists() and shutil.which("journalctl"), "systemd (journald, journalctl) is not installed"
    process = subprocess.Popen([str(JOURNALD)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not SOCKET.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert SOCKET.exists(), "journald did not start"
    yield process
    process.terminate()
    process.wait(5)


def _responds() -> bool:
    marker = f"sluice-journal-probe-{uuid.uuid4()}"
    subprocess.run(["systemd-cat", "-t", "sluice-probe", "echo", marker], capture_output=True)
    time.sleep(0.2)
    return marker in subprocess.run(["journalctl", "-t", "sluice-probe", "-o", "cat"], capture_output=True, text=True).stdout


@contextlib.contextmanager
def _gateway_on_journal(sluice_bin, manifest: dict, tmp_path: Path):
    """sluice serving with JOURNAL_STREAM naming its stdout, as under systemd; yields the process
    once ready, stops it afterwards, and checks that nothing went to stdout."""
    port = int(manifest["server"]["listen"][0].rsplit(":", 1)[1])
    config = write_manifest(manifest, tmp_path / "plugins.json")
    with open(tmp_path / "stdout", "w") as out:
        stat = os.fstat(out.fileno())
        env = {**sluice_env(), "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        gateway = subprocess.Popen([str(sluice_bin), "serve", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "sluice did not become ready"
                time.sleep(0.05)
            yield gateway
        finally:
            gateway.terminate()
            gateway.wait(10)
    assert (tmp_path / "stdout").read_text() == "", "with JOURNAL_STREAM set, nothing goes to stdout"


def _journal(*matches: str, until=lambda entries: bool(entries), timeout: float = 5) -> list[dict]:
    """The journal's entries for ``matches`` (FIELD=value), once ``until(entries)`` or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = subprocess.run(["journalctl", "-o", "json", *matches, "--no-pager"], capture_output=True, text=True)
        entries = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
        if until(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_access_log_lines_become_journal_fields(sluice_bin, make_manifest, tmp_path, fake, journald):
    manifest = make_manifest()
    manifest["pipeline"].insert(0, {"plugin": "access-log"})
    port = int(manifest["server"]["listen"][0].rsplit(":", 1)[1])
    request_id = f"journal-{uuid.uuid4()}"
    with _gateway_on_journal(sluice_bin, manifest, tmp_path):
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=10,
                            headers={"authorization": f"Bearer {SLUICE_TEST_KEY}", "x-request-id": request_id},
                            json={"model": "local", "messages": [{"role": "user", "content": "hello there"}]})
        assert answer.status_code == 200

    entries = _journal(f"REQUEST_ID={request_id}")
    [entry] = [e for e in entries if e.get("MESSAGE") == "request"]
    assert entry["SYSLOG_IDENTIFIER"] == "sluice"
    assert entry["KEY_NAME"] == "tester" and entry["MODEL"] == "local" and entry["PROVIDER"] == "fake"
    assert entry["STATUS"] == "200" and entry["PRIORITY"] == "6"
    assert SLUICE_TEST_KEY not in json.dumps(entries)


STALLED_REQUESTS = 700  # more than journald's socket queues (net.unix.max_dgram_qlen, 512)


def test_a_stalled_journald_costs_no_request_and_no_record(sluice_bin, make_manifest, tmp_path, fake, journald):
    """journald stopped (SIGSTOP) while 700 requests pass: each is answered (no event loop waits
    on journald's full socket), and once journald goes on, every access record reaches it."""
    if journald is None:
        pytest.skip("the system's journald is running: it is not this test's to stop")
    manifest = make_manifest()
    manifest["pipeline"].insert(0, {"plugin": "access-log"})
    port = int(manifest["server"]["listen"][0].rsplit(":", 1)[1])
    body = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
    with _gateway_on_journal(sluice_bin, manifest, tmp_path) as gateway:
        journald.send_signal(signal.SIGSTOP)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as client:
                statuses = Counter(client.post("/v1/chat/completions", json=body,
                                               headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"}).status_code
                                   for _ in range(STALLED_REQUESTS))
        finally:
            journald.send_signal(signal.SIGCONT)
        assert statuses == {200: STALLED_REQUESTS}, f"with journald stopped: {statuses}"
    records = _journal(f"_PID={gateway.pid}", "MESSAGE=request",
                       until=lambda entries: len(entries) >= STALLED_REQUESTS, timeout=10)
    assert len(records) == STALLED_REQUESTS, f"{len(records)} access records in the journal for {STALLED_REQUESTS} requests"
