"""A throwaway Redis for the rate-limit tests: Debian's ``redis-server`` as a subprocess.

    redis = RedisServer(tmp_path).start()   # a free loopback port, no persistence
    redis.url                               # "redis://127.0.0.1:PORT/0" for the manifest
    redis.kill()                            # SIGKILL: connections reset, new ones refused
    redis.restart()                         # the same port again, empty (nothing was saved)
    redis.pause(); redis.resume()           # SIGSTOP/SIGCONT: connects succeed, replies never come
    redis.command("DBSIZE")                 # 3 (a tiny RESP client, enough for checks)
    redis.stop()

Stdlib only. ``$REDIS_SERVER`` overrides the binary (default: ``redis-server`` on PATH).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .net import free_port
from .sluice import _die_with_parent  # the gateway's PR_SET_PDEATHSIG guard: no orphaned servers

READY_TIMEOUT_S = 10.0


class RedisError(Exception):
    """redis-server is missing, did not start, or answered with an error."""


def redis_binary() -> str | None:
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


def _encode(*args: str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, binary: str | None = None):
        self.binary = binary or redis_binary()
        if not self.binary:
            raise RedisError("redis-server not found: `apt-get install redis-server`, or set REDIS_SERVER")
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.log_path = self.workdir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no",
                   "--daemonize", "no", "--loglevel", "warning"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.paused = False
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RedisError(f"redis-server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.command("PING", timeout=0.5) == "PONG":
                    return self
            except (OSError, RedisError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RedisError(f"redis-server not answering PING on port {self.port} within {timeout}s:\n"
                                 f"{self.log_text()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL (no shutdown, nothing saved) and wait until the port is closed."""
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)
        self.paused = False

    def restart(self, timeout: float = READY_TIMEOUT_S) -> "RedisServer":
        """Kills the server if it runs, then starts a fresh, empty one on the same port."""
        self.kill()
        deadline = time.monotonic() + timeout
        while True:  # the port is free at once after a kill on loopback; retry in case it is not
            try:
                return self.start(timeout=max(0.5, deadline - time.monotonic()))
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections and requests, but nothing is answered."""
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- talking to it ----------------------------------------------------------------------

    def command(self, *args: str | int, timeout: float = 2.0):
        """One command on a fresh connection; the decoded reply (str, int, list or None)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(_encode(*args))
            return _Reader(sock).reply()

    def keys(self, pattern: str = "*") -> list[str]:
        return sorted(self.command("KEYS", pattern))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
