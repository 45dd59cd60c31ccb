"""Running the real sluice binary: `sluice serve` as a managed subprocess, and one-shot CLI calls.

Everything is on loopback ports picked at random, so sessions can run side by side. Output goes
to files in the test's tmp dir, so a failing test can show the gateway's log and the secrets test
can read it.
"""

from __future__ import annotations

import ctypes
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

from .constants import SLUICE_ENV
from .manifest import write_manifest

READY_TIMEOUT_S = 20.0
# Variables that would make sluice talk to a service manager that is not ours.
_SERVICE_MANAGER_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                         "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")


class SluiceError(Exception):
    """sluice did not start or stop as expected; the message carries its log."""


def sluice_env(extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The test process's environment plus the test secrets, minus service-manager variables.

    The service-manager variables a test wants (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``, …) go in
    ``extra``, which is applied last; socket activation is ``Sluice(listen_sockets=…)``.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_MANAGER_VARS and k not in drop}
    env.update(SLUICE_ENV)
    env.update(extra or {})
    return env


try:  # resolved here, not in the forked child, where loading symbols is not fork-safe
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL the gateway if pytest dies without tearing down."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def run_cli(binary: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs ``sluice ARGS`` to completion; ``.stdout``/``.stderr`` are text."""
    return subprocess.run([str(binary), *args], env=env if env is not None else sluice_env(), cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def _listen_port(manifest: dict) -> int:
    return int(manifest["server"]["listen"][0].rsplit(":", 1)[1])


# Socket activation as systemd does it: the sockets arrive as fds 3, 4, … with LISTEN_FDS and
# LISTEN_PID set to the gateway's own pid. Popen cannot know that pid before exec, so this tiny
# program runs in the child, moves the sockets into place, sets LISTEN_PID to its pid and execs
# sluice, which keeps the pid. argv: the inherited fds ("7,8"), then the command.
_SOCKET_ACTIVATION = """
import os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
for target, fd in enumerate(fds, start=3):
    os.dup2(fd, target)
for fd in fds:
    if fd >= 3 + len(fds):
        os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""
_HIGH_FD = 100  # the sockets are passed from here up, clear of the targets 3, 4, …


def listening_socket(backlog: int = 1024) -> socket.socket:
    """A TCP socket listening on a free 127.0.0.1 port, to hand to sluice (``listen_sockets``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


class Sluice:
    """One ``sluice serve --config FILE`` process.

        gw = Sluice(binary, manifest, tmp_path).start()   # returns once GET /ready is 200
        gw.base_url        # "http://127.0.0.1:PORT/v1" for the OpenAI SDK
        gw.stop()          # SIGTERM, then SIGKILL after the grace period
    """

    live: ClassVar[list["Sluice"]] = []  # running instances, for logs in failure reports

    def __init__(self, binary: Path, manifest: dict, workdir: Path, env: dict[str, str] | None = None,
                 name: str = "sluice", *, listen_sockets: list[tuple[socket.socket, str]] | None = None,
                 wrapper: list[str] | None = None, port: int | None = None,
                 serve_args: tuple[str, ...] = ()):
        """``listen_sockets``: [(listening socket, name)] passed by socket activation (the gateway
        then answers on the first one's port); ``wrapper``: a command that runs sluice (e.g.
        systemd-socket-activate), with ``port`` where it answers; ``serve_args``: more flags."""
        self.binary = Path(binary)
        self.manifest = manifest
        self.workdir = Path(workdir)
        self.env = env if env is not None else sluice_env()
        self.name = name
        self.listen_sockets = list(listen_sockets or [])
        self.wrapper = list(wrapper or [])
        self.serve_args = tuple(serve_args)
        if port is not None:
            self.port = port
        elif self.listen_sockets:
            self.port = self.listen_sockets[0][0].getsockname()[1]
        else:
            self.port = _listen_port(manifest)
        self.config_path = self.workdir / f"{name}.plugins.json"
        self.stdout_path = self.workdir / f"{name}.stdout.log"
        self.stderr_path = self.workdir / f"{name}.stderr.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, ready_timeout: float = READY_TIMEOUT_S) -> "Sluice":
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_manifest(self.manifest, self.config_path)
        command = [*self.wrapper, str(self.binary), "serve", "--config", str(self.config_path), *self.serve_args]
        env, passed = dict(self.env), []
        try:
            if self.listen_sockets:
                passed = [fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, _HIGH_FD) for sock, _ in self.listen_sockets]
                command = [sys.executable, "-c", _SOCKET_ACTIVATION, ",".join(map(str, passed)), *command]
                env["LISTEN_FDNAMES"] = ":".join(name for _, name in self.listen_sockets)
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(
                    command, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    pass_fds=passed, preexec_fn=_die_with_parent)
        finally:
            for fd in passed:
                os.close(fd)
        Sluice.live.append(self)
        try:
            self.wait_ready(ready_timeout)
        except SluiceError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise SluiceError(f"sluice exited with {code} before it was ready\n{self.log_report()}")
            status, _ = self.get("/ready", timeout=1)
            if status == 200:
                return
            last = f"HTTP {status}" if status else "connection refused"
            time.sleep(0.05)
        raise SluiceError(f"GET /ready not 200 within {timeout:.0f}s (last: {last})\n{self.log_report()}")

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM, wait for the drain, SIGKILL if still alive. Returns the exit code."""
        if self in Sluice.live:
            Sluice.live.remove(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if grace_s is None:
                grace_s = float(self.manifest.get("server", {}).get("drain_timeout_s", 5)) + 5
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        """Signals the process without waiting (e.g. SIGTERM to watch the drain from outside)."""
        assert self.proc is not None, "not started"
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process has exited, or None if it is still running after ``timeout``."""
        assert self.proc is not None, "not started"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def rss_bytes(self) -> int:
        """Resident set size now (Linux: VmRSS in /proc/PID/status)."""
        assert self.proc is not None, "not started"
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # reported in kB
        raise RuntimeError(f"no VmRSS in /proc/{self.proc.pid}/status")

    # --- probes and logs --------------------------------------------------------------------

    def get(self, path: str, timeout: float = 5) -> tuple[int | None, bytes]:
        """A bare GET on loopback (no proxies, no pooling); (None, b"") if it cannot connect."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            return None, b""
        finally:
            conn.close()

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log_lines(self) -> list[dict]:
        """stdout's whole lines parsed as JSON (the process contract); a non-JSON line raises
        ValueError. A last line without its newline is still being written and is left out."""
        return [json.loads(line) for line in self.stdout_text().split("\n")[:-1] if line.strip()]

    def wait_for_log(self, text: str, timeout: float = 5, count: int = 1) -> bool:
        """Whether ``text`` shows up on stdout (``count`` times) within ``timeout``: a thread of the
        gateway's own writes the lines, a moment after the event they tell of."""
        deadline = time.monotonic() + timeout
        while self.stdout_text().count(text) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def log_report(self, tail: int = 80) -> str:
        parts = []
        for label, text in (("stdout", self.stdout_text()), ("stderr", self.stderr_text())):
            lines = text.splitlines()[-tail:]
            parts.append(f"--- {self.name} {label} (last {len(lines)} lines) ---\n" + "\n".join(lines))
        return "\n".join(parts)
