"""A small MCP server written with the official Python SDK (FastMCP), for the gateway's tests.

``python tools_server.py stdio LABEL`` serves over stdin/stdout; ``python tools_server.py http
LABEL PORT`` over Streamable HTTP at http://127.0.0.1:PORT/mcp. Every answer names LABEL, so a
test sees which server answered.
"""

from __future__ import annotations

import asyncio
import sys

from mcp.server.fastmcp import Context, FastMCP

transport, label = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
server = FastMCP(f"tools-{label}", host="127.0.0.1", port=port or 8000, log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> str:
    """Adds two numbers."""
    return f"{a + b} from {label}"


@server.tool()
def echo(text: str) -> str:
    """Says the text back."""
    return f"{label}: {text}"


@server.tool()
async def slow(steps: int, ctx: Context, delay_s: float = 0.05) -> str:
    """Reports progress step by step, then answers."""
    for step in range(steps):
        await ctx.report_progress(step + 1, steps, f"step {step + 1}")
        await asyncio.sleep(delay_s)
    return f"{label} did {steps} steps"


@server.prompt()
def greet(name: str) -> str:
    """A greeting."""
    return f"Hello {name}, from {label}"


@server.resource(f"info://{label}/about")
def about() -> str:
    """What this server is."""
    return f"the {label} test server"


if __name__ == "__main__":
    server.run(transport="stdio" if transport == "stdio" else "streamable-http")
