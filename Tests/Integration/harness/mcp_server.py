"""The Streamable HTTP MCP test server (mcpservers/tools_server.py), started and stopped around a test module."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from harness.net import free_port

SERVER = Path(__file__).resolve().parents[1] / "mcpservers" / "tools_server.py"


@contextmanager
def web_mcp_server(name: str = "web", env: dict[str, str] | None = None) -> Iterator[str]:
    """Runs the test server over Streamable HTTP; yields its `/mcp` URL once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SERVER), "http", name, str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the HTTP MCP server did not start")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)
