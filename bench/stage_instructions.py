#!/usr/bin/env python3
"""Instructions per request a pipeline stage adds, counted by valgrind's callgrind: robust on a
busy, shared machine, where CPU time is not. Two sluices run under callgrind, auth + router and
auth + router with the stages added (as bench/stage_cost.py builds them); each serves a warm-up,
has its counters zeroed (`callgrind_control --zero`), serves N requests on one keep-alive
connection, and is dumped. Every thread's instructions count (event loops, the upstream client,
background work, exporters).

    python3 bench/stage_instructions.py --stages tracing [--requests N] [--body-kb KB] [--sluice PATH] [--profile DIR]

With --profile, writes each dump's top functions by inclusive instructions (callgrind_annotate)
to DIR/<stages>-{base,with}.txt.
"""

from __future__ import annotations

import argparse
import re
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
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=99", str(measured)],
                                   check=True, capture_output=True, text=True).stdout
        lines = annotated.splitlines()
        size = f"-{body_bytes // 1024}k" if body_bytes else ""
        name = f"{stages or 'base'}{'-stream' if stream else ''}{size}-{'with' if stages else 'base'}.txt"
        (profile / name).write_text(f"callgrind, {requests} requests after a warm-up of 100, {total // requests:,} instructions/request\n"
                                    + "\n".join(lines[:80]) + "\n")
    return total // requests


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
    kind = ("stream" if args.stream else "whole") + (f", {args.body_kb} KB bodies" if args.body_kb else "")
    if without is None:
        print(f"{args.stages} {kind}: {with_stages:,} instructions/request with the stages")
    else:
        print(f"{args.stages} {kind}: instructions/request without {without:,}, with {with_stages:,}, Δ {with_stages - without:+,} "
              f"({args.requests} requests each)")
    upstream.shutdown()
    sink.shutdown()


if __name__ == "__main__":
    main()
