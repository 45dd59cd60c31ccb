"""systemd/sluice.service and sluice.socket (docs/systemd.md).

systemd does not run as PID 1 here, so the units are checked offline: `systemd-analyze verify`
(with ExecStart pointing at the binary under test), the exposure score of `systemd-analyze
security --offline`, the settings the process contract depends on, and the binary itself run
under the unit's system-call filter, address-family restriction and MemoryDenyWriteExecute,
rebuilt here as a seccomp filter from systemd's own lists.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from harness.constants import SLUICE_TEST_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
UNITS = REPO_ROOT / "systemd"
INSTALLED_BIN = "/usr/local/bin/sluice"
MAX_EXPOSURE = 2.0
AUTH = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze not found (Debian's systemd package)"
    return path


def unit_settings(path: Path) -> dict[str, list[str]]:
    """KEY -> every value it is given, across sections (enough for these two files)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|ms)?", value)
    assert match, f"unexpected time span {value!r}"
    number, unit = float(match[1]), match[2] or "s"
    return number * {"s": 1, "sec": 1, "min": 60, "ms": 0.001}[unit]


def drain_timeouts() -> dict[str, float]:
    manifests = [REPO_ROOT / "plugins.json", REPO_ROOT / "deploy" / "container-plugins.json"]
    return {p.name: float(json.loads(p.read_text())["server"]["drain_timeout_s"]) for p in manifests}


@pytest.fixture
def units_under_test(sluice_bin: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the units whose ExecStart=/ExecReload= run the binary under test."""
    copies = []
    for name in ("sluice.service", "sluice.socket"):
        text = (UNITS / name).read_text()
        copy = tmp_path / name
        copy.write_text(text.replace(INSTALLED_BIN, str(sluice_bin)))
        copies.append(copy)
    return copies[0], copies[1]


def test_units_verify_cleanly(units_under_test):
    service, socket_unit = units_under_test
    done = subprocess.run([systemd_analyze(), "verify", str(service), str(socket_unit)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), \
        f"systemd-analyze verify: exit {done.returncode}\n{done.stdout}{done.stderr}"


def test_service_exposure_is_at_most_2(units_under_test):
    service, _ = units_under_test
    done = subprocess.run([systemd_analyze(), "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
                           "--no-pager", str(service)], capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, f"no exposure level in:\n{done.stdout}{done.stderr}"
    exposure = float(match[1])
    assert exposure <= MAX_EXPOSURE and done.returncode == 0, \
        f"exposure {exposure} > {MAX_EXPOSURE}; the settings that cost:\n" + \
        "\n".join(line for line in done.stdout.splitlines() if line.startswith("✗"))


def test_service_settings_match_the_process_contract():
    s = unit_settings(UNITS / "sluice.service")
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == [f"{INSTALLED_BIN} serve --config /etc/sluice/plugins.json"]
    assert "/bin/kill -HUP $MAINPID" in s["ExecReload"]
    assert s.get("NotifyAccess", ["main"]) == ["main"]
    assert s["Restart"] == ["on-failure"]
    assert seconds(s["WatchdogSec"][0]) == 30
    stop = seconds(s["TimeoutStopSec"][0])
    for manifest, drain in drain_timeouts().items():
        assert stop > drain, f"TimeoutStopSec={stop:g}s does not cover {manifest}'s drain_timeout_s={drain:g}"
    assert any(v.startswith("openai-api-key:/etc/sluice/credentials/") for v in s["LoadCredential"])
    assert s["DynamicUser"] == ["yes"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]


def test_socket_is_named_and_matches_the_default_manifest():
    s = unit_settings(UNITS / "sluice.socket")
    listen = json.loads((REPO_ROOT / "plugins.json").read_text())["server"]["listen"]
    assert s["ListenStream"] == ["127.0.0.1:8080"] and s["ListenStream"][0] in listen
    assert s["FileDescriptorName"] == ["http"]
    assert s["NoDelay"] == ["true"]
    assert int(s["Backlog"][0]) >= 1024
    assert s["Service"] == ["sluice.service"]


# --- the binary under the unit's seccomp settings ---------------------------------------------

def syscall_group(name: str) -> set[str]:
    """Every system call in a systemd group (e.g. @system-service), nested groups expanded."""
    out = subprocess.run([systemd_analyze(), "syscall-filter", name], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= syscall_group(entry) if entry.startswith("@") else {entry}
    return calls


def filter_program(allowed: set[str]) -> str:
    """C that installs SystemCallFilter (EPERM otherwise), RestrictAddressFamilies and
    MemoryDenyWriteExecute as seccomp rules, as systemd does, then execs its arguments."""
    allow = "\n".join(f"#ifdef __NR_{c}\n  BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, __NR_{c}, 0, 1), ALLOW,\n#endif"
                      for c in sorted(allowed) if re.fullmatch(r"[a-z0-9_]+", c))
    return f"""
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#define NR BPF_STMT(BPF_LD|BPF_W|BPF_ABS, offsetof(struct seccomp_data, nr))
#define ARG(n) BPF_STMT(BPF_LD|BPF_W|BPF_ABS, offsetof(struct seccomp_data, args[n]))
#define ALLOW BPF_STMT(BPF_RET|BPF_K, SECCOMP_RET_ALLOW)
#define DENY(e) BPF_STMT(BPF_RET|BPF_K, SECCOMP_RET_ERRNO|(e))
int main(int argc, char **argv) {{
  struct sock_filter f[] = {{
  NR, BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, __NR_mmap, 0, 4),            /* MemoryDenyWriteExecute */
  ARG(2), BPF_STMT(BPF_ALU|BPF_AND|BPF_K, PROT_WRITE|PROT_EXEC),
  BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, PROT_WRITE|PROT_EXEC, 0, 1), DENY(EPERM),
  NR, BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, __NR_mprotect, 1, 0),
  BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, __NR_pkey_mprotect, 0, 3),
  ARG(2), BPF_JUMP(BPF_JMP|BPF_JSET|BPF_K, PROT_EXEC, 0, 1), DENY(EPERM),
  NR, BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, __NR_shmat, 0, 3),
  ARG(2), BPF_JUMP(BPF_JMP|BPF_JSET|BPF_K, SHM_EXEC, 0, 1), DENY(EPERM),
  NR, BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, __NR_socket, 0, 6),          /* RestrictAddressFamilies */
  ARG(0), BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, AF_UNIX, 2, 0),
  BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, AF_INET, 1, 0),
  BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, AF_INET6, 0, 1), BPF_JUMP(BPF_JMP|BPF_JA, 1, 0, 0), DENY(EAFNOSUPPORT),
  NR,                                                               /* SystemCallFilter */
{allow}
  DENY(EPERM),
  }};
  struct sock_fprog prog = {{ .len = sizeof(f) / sizeof(f[0]), .filter = f }};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {{
    perror("seccomp"); return 125;
  }}
  execv(argv[1], argv + 1);
  perror("execv");
  return 126;
}}
"""


def test_binary_runs_under_the_units_syscall_filter(start_sluice, tmp_path):
    settings = unit_settings(UNITS / "sluice.service")
    assert settings["SystemCallFilter"] == ["@system-service", "~@privileged @resources"], \
        "the unit's filter changed: change the rules rebuilt here too"
    assert settings["SystemCallErrorNumber"] == ["EPERM"] and settings["MemoryDenyWriteExecute"] == ["yes"]
    allowed = syscall_group("@system-service") - syscall_group("@privileged") - syscall_group("@resources")
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert compiler, "no C compiler (cc, gcc or clang) to build the seccomp filter"
    source = tmp_path / "sandbox.c"
    source.write_text(filter_program(allowed))
    sandbox = tmp_path / "sandbox"
    subprocess.run([compiler, "-O1", "-o", str(sandbox), str(source)], check=True, timeout=60,
                   capture_output=True)

    gw = start_sluice(wrapper=[str(sandbox)], name="sandboxed")
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=10, trust_env=False) as client:
        whole = client.post("/v1/chat/completions", json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
        assert whole.status_code == 200, whole.text
        streamed = client.post("/v1/chat/completions", json={"model": "local", "stream": True,
                                                             "messages": [{"role": "user", "content": "hi"}]})
        assert streamed.status_code == 200 and "data: [DONE]" in streamed.text, streamed.text[-300:]
    gw.send_signal(signal.SIGHUP)
    assert gw.wait_exit(0.5) is None, "sluice died on SIGHUP under the filter"
    assert gw.get("/ready")[0] == 200
    assert gw.stop() == 0, f"sluice did not exit cleanly under the filter\n{gw.log_report()}"
