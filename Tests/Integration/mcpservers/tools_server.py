"""A small MCP server written with the official Python SDK (FastMCP), for the gateway's tests.

``python tools_server.py stdio LABEL`` serves over stdin/stdout; ``python tools_server.py http
LABEL PORT`` over Streamable HTTP at http://127.0.0.1:PORT/mcp. Every answer names LABEL, so a
test sees which server answered.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import anyio
from mcp import types
from mcp.server.fastmcp import Context, FastMCP
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel

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


def mark(name: str) -> None:
    """Leaves a file in $MARKER_DIR, so a test sees what a tool went through (started, cancelled)."""
    if os.environ.get("MARKER_DIR"):
        (Path(os.environ["MARKER_DIR"]) / name).write_text(label)


@server.tool()
async def sleepy(seconds: float, tag: str) -> str:
    """Sleeps; marks `{tag}-started`, then `{tag}-finished`, or `{tag}-cancelled` if it was cancelled."""
    mark(f"{tag}-started")
    try:
        await asyncio.sleep(seconds)
    except BaseException:
        mark(f"{tag}-cancelled")
        raise
    mark(f"{tag}-finished")
    return f"{label} slept {seconds}"


@server.tool()
def seen_headers(ctx: Context) -> str:
    """The HTTP headers this call arrived with (the trace context sluice passed), as `name=value` lines."""
    request = ctx.request_context.request
    if request is None:
        return ""
    return "\n".join(f"{name}={value}" for name, value in request.headers.items())


@server.tool()
async def change_tools(ctx: Context) -> str:
    """Tells the client the tool list changed (outside this call: the GET stream over HTTP)."""
    await ctx.session.send_tool_list_changed()
    return "told"


@server.tool()
async def ask_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model (sampling/createMessage) during the call."""
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
        max_tokens=16, related_request_id=ctx.request_id)
    return f"{label} sampled: {result.content.text}"


class Name(BaseModel):
    name: str


@server.tool()
async def ask_name(ctx: Context) -> str:
    """Asks the user for a name (elicitation/create) during the call."""
    result = await ctx.elicit("What is your name?", schema=Name)
    return f"{label} elicited: {result.action} {result.data.name if result.data else ''}"


@server.tool()
async def ask_roots(ctx: Context) -> str:
    """Asks the client for its roots (roots/list), on this call's stream."""
    result = await ctx.session.send_request(types.ServerRequest(types.ListRootsRequest()), types.ListRootsResult,
                                            metadata=ServerMessageMetadata(related_request_id=ctx.request_id))
    return f"{label} roots: " + ",".join(str(root.uri) for root in result.roots)


@server.tool()
async def ask_roots_outside(ctx: Context) -> str:
    """Asks the client for its roots outside this call's stream (over HTTP: on the GET stream),
    giving up after 2 s (a GET stream not yet open upstream never sees the request)."""
    try:
        with anyio.fail_after(2):
            result = await ctx.session.list_roots()
    except TimeoutError:
        return "no answer"
    return f"{label} roots: " + ",".join(str(root.uri) for root in result.roots)


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
