"""A throwaway PostgreSQL for the spend tests: Debian's ``postgresql`` (15) as a subprocess.

    pg = PostgresServer().start()      # a private cluster in a temp dir, a free loopback port
    pg.url                             # "postgres://sluice:PASSWORD@127.0.0.1:PORT/postgres"
    pg.query("SELECT count(*) FROM sluice_spend_ledger")   # rows via psql, as lists of strings
    pg.stop()                          # stops the server and removes the cluster

``initdb`` and ``postgres`` refuse to run as root. As root the cluster is made and served by the
``postgres`` user the Debian package creates (``runuser -u postgres``), in a folder of its own
under /tmp (pytest's tmp dirs are private to root). As anyone else they run as that user.
``$PG_BIN`` overrides the binaries' folder (default: the newest /usr/lib/postgresql/*/bin).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .net import free_port
from .sluice import _die_with_parent

READY_TIMEOUT_S = 30.0


class PostgresError(Exception):
    """PostgreSQL is missing, did not start, or a query failed."""


def postgres_bin() -> Path | None:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    user = "sluice"

    def __init__(self, port: int | None = None):
        self.bin = postgres_bin()
        if self.bin is None:
            raise PostgresError("PostgreSQL not found: `apt-get install postgresql`, or set PG_BIN")
        self.port = port or free_port()
        self.password = secrets.token_hex(12)
        self.root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.proc: subprocess.Popen | None = None
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if self.as_root else command

    def start(self, timeout: float = READY_TIMEOUT_S) -> "PostgresServer":
        os.chmod(self.root, 0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        if not self.data.exists():
            init = subprocess.run(self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                                                  f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
                                                  "--encoding=UTF8", "--no-instructions"]),
                                  capture_output=True, text=True, timeout=120)
            if init.returncode != 0:
                raise PostgresError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        command = self._as_owner([str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                                  "-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off",
                                  "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=100"])
        log = open(self.log_path, "ab")
        if self.as_root:
            shutil.chown(self.log_path, "postgres", "postgres")
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise PostgresError(f"postgres exited with {self.proc.returncode}:\n{self.log_text()}")
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True)
            if ready.returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise PostgresError(f"postgres not ready on port {self.port} within {timeout}s:\n{self.log_text()}")
            time.sleep(0.1)

    def query(self, sql: str) -> list[list[str]]:
        """Rows of one statement through psql (tab-separated, unaligned), in database ``postgres``."""
        return self.query_in("postgres", sql)

    def query_in(self, database: str, sql: str) -> list[list[str]]:
        """Rows of one statement in ``database``."""
        psql = self.bin / "psql"
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run([str(psql), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
                               "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True, env=env, timeout=30)
        if done.returncode != 0:
            raise PostgresError(f"psql failed: {done.stderr}")
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def scalar(self, sql: str) -> str:
        rows = self.query(sql)
        return rows[0][0] if rows else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: "smart" shutdown; SIGINT would be "fast"
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
