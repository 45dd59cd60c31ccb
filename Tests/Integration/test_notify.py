"""sd_notify (docs/ARCHITECTURE.md, "The process contract"): what sluice tells systemd, read from a notification socket of our own.

systemd (Type=notify, WatchdogSec=, ExecReload=) acts on these messages: READY=1 ends the start
job, WATCHDOG=1 keeps the service from being killed, RELOADING=1/READY=1 frame a reload and
STOPPING=1 marks the drain. Every message must come from the main process (NotifyAccess=main).
"""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.manifest import write_manifest
from harness.notify import Notification, NotifySocket
from harness.sluice import sluice_env

AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
WATCHDOG_USEC = 1_000_000  # sluice should ping every 0.5 s


def is_ready(m: Notification) -> bool:
    return m.get("READY") == "1"


def is_reloading(m: Notification) -> bool:
    return m.get("RELOADING") == "1"


def model_ids(gw) -> set[str]:
    resp = httpx.get(gw.base_url + "/models", headers=AUTH, timeout=5, trust_env=False)
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


def assert_from_main_process(notify: NotifySocket, gw) -> None:
    strangers = [m for m in notify.messages if m.pid != gw.pid]
    assert not strangers, f"messages not sent by sluice's main process {gw.pid} (NotifyAccess=main drops them): {strangers}"


def test_ready_is_sent_once_listening_with_a_status(start_sluice, make_manifest):
    manifest = make_manifest()
    port = int(manifest["server"]["listen"][0].rsplit(":", 1)[1])
    accepted_at_ready: list[bool] = []

    def probe(message: Notification) -> None:
        if is_ready(message) and not accepted_at_ready:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                accepted_at_ready.append(True)
            except OSError:
                accepted_at_ready.append(False)

    with NotifySocket(on_message=probe) as notify:
        gw = start_sluice(manifest, env=sluice_env(notify.env()))
        ready = notify.wait_for(is_ready, timeout=5)
        assert ready is not None, f"no READY=1 within 5 s of /ready answering 200; got {notify.messages}"
        assert accepted_at_ready == [True], "READY=1 was sent before the listener accepted connections"
        before = [m for m in notify.messages if m.at <= ready.at]
        assert any("STATUS" in m for m in before), f"no STATUS= by the time of READY=1: {before}"
        assert len([m for m in notify.messages if is_ready(m)]) == 1, "READY=1 sent more than once at start"
        assert_from_main_process(notify, gw)


def test_watchdog_pings_every_half_interval(start_sluice):
    with NotifySocket() as notify:
        gw = start_sluice(env=sluice_env(notify.env(watchdog_usec=WATCHDOG_USEC)))
        ready = notify.wait_for(is_ready, timeout=5)
        assert ready is not None, f"no READY=1: {notify.messages}"
        time.sleep(2.6)
        pings = [m.at for m in notify.messages if m.get("WATCHDOG") == "1" and m.at > ready.at]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 4, f"{len(pings)} WATCHDOG=1 in 2.6 s with WATCHDOG_USEC=1000000 (want one every 0.5 s)"
        assert max(gaps) < 0.8, f"a gap of {max(gaps):.2f} s between pings (half the interval is 0.5 s): {gaps}"
        assert min(gaps) > 0.2, f"pings {min(gaps):.2f} s apart: more often than needed: {gaps}"
        assert_from_main_process(notify, gw)


def test_watchdog_is_not_pinged_for_another_pid(start_sluice):
    """WATCHDOG_PID names the process systemd watches; a child that inherited it must not ping."""
    with NotifySocket() as notify:
        env = sluice_env(notify.env(watchdog_usec=WATCHDOG_USEC, WATCHDOG_PID="1"))
        start_sluice(env=env)
        assert notify.wait_for(is_ready, timeout=5) is not None, f"no READY=1: {notify.messages}"
        time.sleep(1.2)
        pings = [m for m in notify.messages if m.get("WATCHDOG") == "1"]
        assert not pings, f"WATCHDOG=1 sent although WATCHDOG_PID=1 is not sluice: {pings}"


def test_a_reload_asked_for_the_moment_it_is_ready_is_done(start_sluice):
    """`systemctl reload` may come the instant READY=1 arrives. The SIGHUP must find the
    gateway's handler, not SIGHUP's default, which ends the process (it did, every time, when
    the handler was installed after READY=1)."""
    hung_up: list[int] = []

    def hang_up_at_ready(message: Notification) -> None:
        if is_ready(message) and not hung_up and message.pid:
            hung_up.append(message.pid)
            os.kill(message.pid, signal.SIGHUP)

    with NotifySocket(on_message=hang_up_at_ready) as notify:
        gw = start_sluice(env=sluice_env(notify.env()))
        assert notify.wait_for(is_ready, timeout=5) is not None, f"no READY=1: {notify.messages}"
        reloading = notify.wait_for(is_reloading, timeout=5)
        assert hung_up, "READY=1 came without the sender's pid"
        assert reloading is not None, f"no RELOADING=1 for a SIGHUP sent at READY=1: {notify.messages}"
        assert notify.wait_for(is_ready, timeout=5, after=reloading.at) is not None, f"no READY=1 after the reload: {notify.messages}"
        assert gw.proc.poll() is None, "the gateway ended on a SIGHUP sent at READY=1"


def test_reload_is_framed_by_reloading_and_ready(start_sluice, make_manifest):
    with NotifySocket() as notify:
        gw = start_sluice(env=sluice_env(notify.env()))
        assert notify.wait_for(is_ready, timeout=5) is not None, f"no READY=1: {notify.messages}"

        # A valid manifest with one more model.
        gw.manifest["models"]["added"] = {"targets": [{"provider": "fake", "model": "upstream-added"}]}
        write_manifest(gw.manifest, gw.config_path)
        signalled = time.monotonic()
        gw.send_signal(signal.SIGHUP)
        reloading = notify.wait_for(is_reloading, timeout=5, after=signalled)
        assert reloading is not None, f"no RELOADING=1 within 5 s of SIGHUP: {notify.messages}"
        stamp = reloading.get("MONOTONIC_USEC")
        assert stamp and stamp.isdigit(), f"RELOADING=1 must carry MONOTONIC_USEC in the same message: {reloading.raw!r}"
        assert abs(int(stamp) / 1e6 - signalled) < 2, f"MONOTONIC_USEC={stamp} is not CLOCK_MONOTONIC now ({signalled:.3f} s)"
        ready = notify.wait_for(is_ready, timeout=5, after=reloading.at)
        assert ready is not None, f"no READY=1 after RELOADING=1: {notify.messages}"
        assert "added" in model_ids(gw)

        # An invalid one: refused, and READY=1 again with a STATUS that says so.
        write_manifest({**gw.manifest, "server": {**gw.manifest["server"], "max_body_bytes": "ten"}}, gw.config_path)
        signalled = time.monotonic()
        gw.send_signal(signal.SIGHUP)
        reloading = notify.wait_for(is_reloading, timeout=5, after=signalled)
        assert reloading is not None, f"no RELOADING=1 for the invalid manifest: {notify.messages}"
        ready = notify.wait_for(is_ready, timeout=5, after=reloading.at)
        assert ready is not None, f"no READY=1 after a refused reload (systemd would wait forever): {notify.messages}"
        statuses = [m.get("STATUS") for m in notify.messages if m.at >= reloading.at and "STATUS" in m]
        assert any("fail" in s.lower() for s in statuses), f"no STATUS= saying the reload failed: {statuses}"
        assert {"local", "smol", "added"} <= model_ids(gw), "the previous manifest must keep serving"
        assert_from_main_process(notify, gw)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_is_sent_on_drain(start_sluice, sig):
    with NotifySocket() as notify:
        gw = start_sluice(env=sluice_env(notify.env()))
        assert notify.wait_for(is_ready, timeout=5) is not None, f"no READY=1: {notify.messages}"
        signalled = time.monotonic()
        gw.send_signal(sig)
        stopping = notify.wait_for(lambda m: m.get("STOPPING") == "1", timeout=5, after=signalled)
        assert stopping is not None, f"no STOPPING=1 within 5 s of {sig.name}: {notify.messages}"
        code = gw.wait_exit(10)
        assert code == 0, f"exit code {code} after {sig.name} (None: still running)"
        assert_from_main_process(notify, gw)
