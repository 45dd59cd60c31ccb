#!/usr/bin/env python3
"""Instructions per request a pipeline stage adds, counted by valgrind's callgrind: robust on a
busy, shared machine, where CPU time is not. Two sluices run under callgrind, auth + router and
auth + router with the stages added (as bench/stage_cost.py builds them); each serves a warm-up,
has its counters zeroed (`callgrind_control --zero`), serves N requests on one keep-alive
connection, and is dumped. Every thread's instructions count (event loops, the upstream client,
background work, exporters). The difference is turned into time by the instructions per µs of
the base sluice's user CPU, measured outside valgrind in the same run: the per-plugin targets
are in µs, and a stage's work is user-space work.

    python3 bench/stage_instructions.py --stages tracing [--requests N] [--body-kb KB] [--sluice PATH] [--profile DIR]

With --profile, writes each dump's top functions by inclusive instructions (callgrind_annotate)
to DIR/<stages>-{base,with}.txt, by their own instructions to DIR/<stages>-{base,with}-self.txt,
and the dump itself to DIR/<stages>-{base,with}.callgrind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from stage_cost import REPO, STAGES, OTLPSink, start
from translation import Upstream, measure


def instructions(binary: str, base: str, otlp: str, work: Path, stages: str | None, requests: int, stream: bool,
                 profile: Path | None, body_bytes: int = 0) -> int:
    out = work / f"callgrind.{stages or 'base'}"
    wrapper = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--collect-atstart=yes", f"--callgrind-out-file={out}"]
    process, port = start(binary, base, work, stages, otlp, wrapper)
    try:
        measure(port, process.pid, "chat", "chat", stream, 100, body_bytes)  # warm-up (and the first connections)
        subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True)
        measure(port, process.pid, "chat", "chat", stream, requests * 10 // 11, body_bytes)  # measure() adds a tenth
        subprocess.run(["callgrind_control", "--dump=measured", str(process.pid)], check=True, capture_output=True)
    finally:
        process.terminate()
        process.wait(120)
    dumps = sorted(work.glob(f"{out.name}*"), key=lambda p: p.stat().st_mtime)
    measured = next(d for d in dumps if "measured" in d.read_text(errors="replace")[:2000])
    total = int(re.search(r"^summary:\s+(\d+)", measured.read_text(errors="replace"), re.M).group(1))
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
        size = f"-{body_bytes // 1024}k" if body_bytes else ""
        name = f"{stages or 'base'}{'-stream' if stream else ''}{size}-{'with' if stages else 'base'}"
        shutil.copy(measured, profile / f"{name}.callgrind")
        for inclusive in ("yes", "no"):
            annotated = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=99", str(measured)],
                                       check=True, capture_output=True, text=True).stdout
            lines = annotated.splitlines()
            kind = "" if inclusive == "yes" else "-self"
            (profile / f"{name}{kind}.txt").write_text(
                f"callgrind, {requests} requests after a warm-up of 100, {total // requests:,} instructions/request\n"
                + "\n".join(lines[:80 if inclusive == "yes" else 200]) + "\n")
    return total // requests


def user_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK")


def user_us_per_request(binary: str, base: str, work: Path, stream: bool, body_bytes: int, requests: int = 2000, rounds: int = 7) -> float:
    """The base sluice's user CPU per request outside valgrind (the least of some rounds: a busy or
    shared machine only ever adds to it): what turns a
    count of instructions into time on this machine. A stage's instructions run in user space
    (the kernel's share of a request, its socket calls, does not change with a stage)."""
    process, port = start(binary, base, work, None)
    try:
        measure(port, process.pid, "chat", "chat", stream, 200, body_bytes)
        samples = []
        for _ in range(rounds):
            before = user_seconds(process.pid)
            measure(port, process.pid, "chat", "chat", stream, requests, body_bytes)
            samples.append((user_seconds(process.pid) - before) / (requests + requests // 10) * 1e6)
        return min(samples)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", choices=sorted(STAGES), required=True)
    parser.add_argument("--requests", type=int, default=440)
    parser.add_argument("--stream", action="store_true", help="streamed answers instead of whole ones")
    parser.add_argument("--sluice", default=str(REPO / ".build" / "release" / "sluice"))
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--body-kb", type=int, default=0, help="chat bodies of about this many KB (earlier turns added)")
    parser.add_argument("--no-base", action="store_true", help="count only the sluice with the stages")
    args = parser.parse_args()

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), OTLPSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    with tempfile.TemporaryDirectory() as work:
        # valgrind 3.19 gives up on the DWARF 5 that Swift 6 writes; the symbol table is enough.
        stripped = Path(work) / "sluice"
        subprocess.run(["strip", "--strip-debug", "-o", str(stripped), args.sluice], check=True)
        args.sluice = str(stripped)
        sized = {"body_bytes": args.body_kb * 1024}
        without = None if args.no_base else instructions(args.sluice, base, otlp, Path(work), None, args.requests, args.stream, args.profile, **sized)
        with_stages = instructions(args.sluice, base, otlp, Path(work), args.stages, args.requests, args.stream, args.profile, **sized)
        user_us = None if without is None else user_us_per_request(args.sluice, base, Path(work), args.stream, sized["body_bytes"])
    kind = ("stream" if args.stream else "whole") + (f", {args.body_kb} KB bodies" if args.body_kb else "")
    if without is None:
        print(f"{args.stages} {kind}: {with_stages:,} instructions/request with the stages")
    else:
        per_us = without / user_us
        print(f"{args.stages} {kind}: instructions/request without {without:,}, with {with_stages:,}, Δ {with_stages - without:+,} "
              f"({args.requests} requests each); ≈ {(with_stages - without) / per_us:+.1f} µs of CPU at this machine's "
              f"{per_us:,.0f} instructions/µs (the base's user CPU, {user_us:.1f} µs/request outside valgrind)")
    upstream.shutdown()
    sink.shutdown()


if __name__ == "__main__":
    main()
