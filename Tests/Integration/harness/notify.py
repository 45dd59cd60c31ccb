"""A stand-in for systemd's notification socket: what sluice reports through sd_notify.

    with NotifySocket() as notify:
        gw = start_sluice(env=sluice_env(notify.env()))
        ready = notify.wait_for(lambda m: m.get("READY") == "1", timeout=10)

Each datagram is one ``Notification``: its ``KEY=VALUE`` lines as a dict, when it arrived
(``time.monotonic()``) and the sender's pid from SCM_CREDENTIALS, which is how systemd decides
whether a message is from the main process (``NotifyAccess=main``).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

_UCRED = struct.Struct("iII")  # pid, uid, gid


@dataclass
class Notification:
    fields: dict[str, str]
    at: float
    pid: int | None
    raw: str = field(repr=False, default="")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.fields


class NotifySocket:
    """A unix datagram socket in a short temporary directory, read by a background thread."""

    def __init__(self, on_message: Callable[[Notification], None] | None = None) -> None:
        """``on_message`` runs on the reader thread as each message arrives (keep it short)."""
        self._on_message = on_message
        self._dir = tempfile.mkdtemp(prefix="sn-", dir="/tmp")  # sun_path holds 108 bytes only
        self.path = os.path.join(self._dir, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.settimeout(0.2)
        self._cond = threading.Condition()
        self._messages: list[Notification] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="notify-socket", daemon=True)
        self._thread.start()

    def env(self, watchdog_usec: int | None = None, **more: str) -> dict[str, str]:
        """The variables to start sluice with: NOTIFY_SOCKET, and WATCHDOG_USEC when given."""
        env = {"NOTIFY_SOCKET": self.path, **more}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def _run(self) -> None:
        while not self._closed:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack(payload[:_UCRED.size])[0]
            text = data.decode("utf-8", "replace")
            fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
            message = Notification(fields, time.monotonic(), pid, text)
            if self._on_message is not None:
                self._on_message(message)
            with self._cond:
                self._messages.append(message)
                self._cond.notify_all()

    @property
    def messages(self) -> list[Notification]:
        with self._cond:
            return list(self._messages)

    def wait_for(self, predicate: Callable[[Notification], bool], timeout: float,
                 after: float = float("-inf")) -> Notification | None:
        """The first message that arrived after ``after`` (a monotonic time) and matches, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self._messages:
                    if message.at > after and predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        self._thread.join(1)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "NotifySocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
