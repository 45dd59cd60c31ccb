"""The MCP gateway (docs/MCP.md): real MCP servers written with the official Python SDK, one over
Streamable HTTP and one over stdio (started and supervised by sluice), reached through sluice's
`/mcp` by the SDK's own client (`streamablehttp_client` + `ClientSession`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

from harness.constants import LIMITED_KEY, SLUICE_TEST_KEY
from harness.mcp_server import web_mcp_server

SERVER = Path(__file__).parent / "mcpservers" / "tools_server.py"
SESSION_KEY = "mcp-session-key-for-tests-0123456789abcdef"
VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]


@pytest.fixture(scope="module")
def web_server():
    """The Streamable HTTP server, for the whole module."""
    with web_mcp_server() as url:
        yield url


def with_mcp(web_url: str, **extra):
    """Edits the default manifest: both servers, the session key, a limited key's tool allowlist."""
    def edit(manifest: dict) -> None:
        manifest["mcp_servers"] = {
            "web": {"url": web_url, "timeout_s": 10},
            "local": {"command": [sys.executable, str(SERVER), "stdio", "local"], "max_restart_delay_s": 1},
        }
        manifest["mcp_session_key"] = SESSION_KEY
        keys = manifest["pipeline"][0]["config"]["keys"]
        keys[1]["mcp_tools"] = ["web__*"]
        manifest["pipeline"].insert(0, {"plugin": "access-log"})
        manifest["pipeline"].insert(1, {"plugin": "metrics"})
        manifest.update(extra)
    return edit


def wait_for_tools(gw, key=SLUICE_TEST_KEY, want=("local__add",), timeout=60.0) -> list[str]:
    """The qualified tool names once `want` are all listed (a stdio server takes a while to start)."""
    deadline = time.monotonic() + timeout
    names: list[str] = []
    while time.monotonic() < deadline:
        names = asyncio.run(list_tool_names(gw, key))
        if all(name in names for name in want):
            return names
        time.sleep(0.5)
    return names


async def list_tool_names(gw, key) -> list[str]:
    async with streamablehttp_client(f"{gw.url}/mcp", headers={"Authorization": f"Bearer {key}"}) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return [tool.name for tool in (await session.list_tools()).tools]


def rpc(gw, message: dict, session: str | None = None, key: str = SLUICE_TEST_KEY, version: str | None = None,
        path: str = "/mcp") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    if version:
        headers["MCP-Protocol-Version"] = version
    return httpx.post(f"{gw.url}{path}", json=message, headers=headers, timeout=30)


def initialize(gw, version: str = "2025-11-25", **options) -> httpx.Response:
    return rpc(gw, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}, **options)


def answer(response: httpx.Response) -> dict:
    """The JSON-RPC answer of a POST, whole or the last message of its SSE stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        import json
        messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        return messages[-1]
    return response.json()


def test_official_client_reaches_both_servers(start_sluice, web_server):
    gw = start_sluice(with_mcp(web_server))
    assert "local__add" in wait_for_tools(gw)

    async def scenario():
        progress: list[float] = []

        async def on_progress(done, total, message):
            progress.append(done)

        async with streamablehttp_client(f"{gw.url}/mcp", headers={"Authorization": f"Bearer {SLUICE_TEST_KEY}"}) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.protocolVersion == "2025-11-25"
                assert init.serverInfo.name == "sluice"
                names = {tool.name for tool in (await session.list_tools()).tools}
                assert {"web__add", "web__echo", "web__slow", "local__add", "local__echo", "local__slow"} <= names

                web = await session.call_tool("web__add", {"a": 2, "b": 3})
                assert web.content[0].text == "5 from web"
                local = await session.call_tool("local__add", {"a": 40, "b": 2})
                assert local.content[0].text == "42 from local"

                prompts = {prompt.name for prompt in (await session.list_prompts()).prompts}
                assert {"web__greet", "local__greet"} <= prompts
                greeting = await session.get_prompt("local__greet", {"name": "Ann"})
                assert greeting.messages[0].content.text == "Hello Ann, from local"

                uris = {str(resource.uri) for resource in (await session.list_resources()).resources}
                assert {"info://web/about", "info://local/about"} <= uris
                about = await session.read_resource("info://web/about")
                assert about.contents[0].text == "the web test server"

                for server in ("web", "local"):
                    progress.clear()
                    slow = await session.call_tool(f"{server}__slow", {"steps": 3}, progress_callback=on_progress)
                    assert slow.content[0].text == f"{server} did 3 steps"
                    assert progress == [1, 2, 3], server

                # An unknown tool is that call's error; the session goes on.
                with pytest.raises(McpError, match="unknown tool"):
                    await session.call_tool("nowhere__add", {"a": 1, "b": 1})
                assert (await session.call_tool("web__echo", {"text": "still here"})).content[0].text == "web: still here"

    asyncio.run(scenario())

    assert gw.wait_for_log('"mcp_method":"tools/call"')
    calls = [line for line in gw.log_lines() if line.get("logger") == "sluice.access" and line.get("mcp_method") == "tools/call"]
    by_tool = {line.get("mcp_tool"): line for line in calls}
    assert by_tool["web__add"]["mcp_server"] == "web" and by_tool["web__add"]["mcp_outcome"] == "ok"
    assert by_tool["local__add"]["mcp_server"] == "local"
    assert by_tool["nowhere__add"]["mcp_outcome"] == "unknown"
    assert all("latency_ms" in line and line["key_name"] == "tester" for line in calls)
    assert "still here" not in gw.stdout_text()  # arguments are never logged without log_bodies

    status, metrics = gw.get("/metrics")
    text = metrics.decode()
    assert 'sluice_mcp_calls_total{mcp_server="web",mcp_method="tools/call",gen_ai_tool_name="web__add",outcome="ok",key_name="tester"}' in text
    assert "sluice_mcp_call_duration_seconds_bucket" in text


def test_protocol_versions_are_negotiated(start_sluice, web_server):
    gw = start_sluice(with_mcp(web_server))
    for version in VERSIONS:
        response = initialize(gw, version)
        assert response.status_code == 200
        assert answer(response)["result"]["protocolVersion"] == version
        session = response.headers["mcp-session-id"]
        listed = rpc(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session=session, version=version)
        assert "web__add" in {tool["name"] for tool in answer(listed)["result"]["tools"]}
    # A version the gateway does not speak: it offers its latest.
    assert answer(initialize(gw, "2024-01-01"))["result"]["protocolVersion"] == "2025-11-25"
    session = initialize(gw).headers["mcp-session-id"]
    refused = rpc(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session=session, version="1999-01-01")
    assert refused.status_code == 400
    # No session: 400; one server alone under its own names.
    assert rpc(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).status_code == 400
    single = initialize(gw, path="/mcp/web")
    names = {tool["name"] for tool in answer(rpc(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                                  session=single.headers["mcp-session-id"], path="/mcp/web"))["result"]["tools"]}
    assert {"add", "echo", "slow"} <= names and not [name for name in names if "__" in name]
    # A session of /mcp/web is no session of /mcp.
    assert rpc(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session=single.headers["mcp-session-id"]).status_code == 404
    # Ending a session.
    ended = httpx.delete(f"{gw.url}/mcp", headers={"Authorization": f"Bearer {SLUICE_TEST_KEY}", "Mcp-Session-Id": session})
    assert ended.status_code == 200


def upstream_ports(port: int) -> set[int]:
    """The client ports of every TCP connection to `port` the kernel knows, open or closing."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in line.split()[1:3])
            if remote == port:
                ports.add(local)
            elif local == port and remote:
                ports.add(remote)
    return ports


def test_a_lone_answer_comes_back_as_json_over_a_reused_connection(start_sluice, web_server):
    """The test server answers each call on an SSE stream; an answer with nothing before it comes
    back as plain JSON, and the gateway reads each stream to its end so that its upstream
    connection serves a later call. The calls share one client connection, so one event loop
    (whose pool of upstream connections is its own) serves them all. The client has its answer
    before the server's stream has ended, so a call may find the last connection still being read
    and open another; twenty calls still open only a few, not one each."""
    gw = start_sluice(with_mcp(web_server))
    session = initialize(gw).headers["mcp-session-id"]
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "web__add", "arguments": {"a": 2, "b": 2}}}
    headers = {"Authorization": f"Bearer {SLUICE_TEST_KEY}", "Accept": "application/json, text/event-stream",
               "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    web_port = int(web_server.rsplit(":", 1)[1].split("/")[0])
    with httpx.Client(base_url=gw.url, headers=headers, timeout=30) as client:
        first = client.post("/mcp", json=call)
        assert first.headers["content-type"].startswith("application/json"), first.headers
        before = upstream_ports(web_port)
        assert before, "the first call's upstream connection is not in /proc/net/tcp"
        for _ in range(20):
            response = client.post("/mcp", json=call)
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["result"]["content"][0]["text"] == "4 from web"
    assert len(upstream_ports(web_port) - before) <= 5


def test_key_allowlist_filters_and_refuses(start_sluice, web_server):
    gw = start_sluice(with_mcp(web_server))
    wait_for_tools(gw)
    names = asyncio.run(list_tool_names(gw, LIMITED_KEY))
    assert {"web__add", "web__echo", "web__slow"} <= set(names) and all(name.startswith("web__") for name in names)

    async def scenario():
        async with streamablehttp_client(f"{gw.url}/mcp", headers={"Authorization": f"Bearer {LIMITED_KEY}"}) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert (await session.call_tool("web__add", {"a": 1, "b": 1})).content[0].text == "2 from web"
                with pytest.raises(McpError, match="may not call the tool `local__add`"):
                    await session.call_tool("local__add", {"a": 1, "b": 1})

    asyncio.run(scenario())
    # No key at all: 401 before anything else.
    assert httpx.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 401
    denied = [line for line in gw.log_lines() if line.get("mcp_outcome") == "denied"]
    assert denied and denied[0]["key_name"] == "limited"


def test_session_continues_on_another_replica(start_sluice, web_server):
    first = start_sluice(with_mcp(web_server), name="a")
    second = start_sluice(with_mcp(web_server), name="b")
    response = initialize(first)
    session = response.headers["mcp-session-id"]
    assert rpc(first, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session=session).status_code == 202
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "web__echo", "arguments": {"text": "hop"}}}
    moved = rpc(second, call, session=session, version="2025-11-25")
    assert moved.status_code == 200
    assert answer(moved)["result"]["content"][0]["text"] == "web: hop"

    # One character changed, a foreign key's seal, or garbage: 404, as for an unknown session.
    tampered = session[:-2] + ("A" if session[-2] != "A" else "B") + session[-1]
    assert rpc(second, call, session=tampered).status_code == 404
    assert rpc(second, call, session="not-a-session").status_code == 404
    other = start_sluice(with_mcp(web_server, mcp_session_key="another-key-of-at-least-32-characters!!"), name="c")
    assert rpc(other, call, session=session).status_code == 404
    # A session is its caller's: another key cannot take it over.
    assert rpc(second, call, session=session, key=LIMITED_KEY).status_code == 404


def stdio_children(gw) -> list[int]:
    """The pids of the stdio MCP server this gateway started (its children running the script)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == gw.pid and "tools_server.py" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_stdio_server_killed_comes_back(start_sluice, web_server):
    gw = start_sluice(with_mcp(web_server))
    assert "local__add" in wait_for_tools(gw)
    children = stdio_children(gw)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    assert gw.wait_for_log("mcp stdio server exited", timeout=10)

    session = initialize(gw).headers["mcp-session-id"]
    listed = {tool["name"] for tool in answer(rpc(gw, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session=session))["result"]["tools"]}
    web_call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "web__add", "arguments": {"a": 1, "b": 2}}}
    assert answer(rpc(gw, web_call, session=session))["result"]["content"][0]["text"] == "3 from web"
    if "local__add" not in listed:
        down = rpc(gw, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "local__add", "arguments": {"a": 1, "b": 2}}},
                   session=session)
        assert "`local`" in answer(down)["error"]["message"]

    assert "local__add" in wait_for_tools(gw)
    assert stdio_children(gw) and stdio_children(gw) != children

    gw.stop()
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


def test_manifest_errors_name_the_path(sluice_bin, make_manifest, tmp_path):
    from harness.manifest import write_manifest
    from harness.sluice import run_cli
    manifest = make_manifest()
    manifest["mcp_servers"] = {"both": {"url": "http://x/mcp", "command": ["x"]}, "none": {}, "bad": {"url": "ftp://x"}}
    manifest["mcp_session_key"] = "tiny-key-XYZ"
    result = run_cli(sluice_bin, "check", str(write_manifest(manifest, tmp_path / "plugins.json")))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "mcp_servers.both" in output and "not both" in output
    assert "mcp_servers.none" in output
    assert "mcp_servers.bad.url" in output
    assert "mcp_session_key" in output and "tiny-key-XYZ" not in output
