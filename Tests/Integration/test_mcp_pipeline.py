"""The MCP gateway's pipeline end to end through the real binary (docs/MCP.md "The pipeline"):
authentication, rate limits, the access log, metrics, tracing, progress, list changes, timeouts,
a server that is down, the drain, server-to-client requests relayed (sampling, elicitation,
roots) and cancellations, against tools_server.py over Streamable HTTP and over stdio, through
the official `mcp` client where it can and httpx where the wire itself is the point."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx
import jwt
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

from harness.constants import SLUICE_TEST_KEY
from harness.mcp_server import web_mcp_server
from harness.net import free_port
from harness.otlp import OTLPReceiver
from harness.sluice import sluice_env

SERVER = Path(__file__).parent / "mcpservers" / "tools_server.py"
SESSION_KEY = "mcp-session-key-for-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {SLUICE_TEST_KEY}"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
JWT_SECRET = "jwt-mcp-secret-0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def markers(tmp_path_factory) -> Path:
    """Where the test servers leave `{tag}-started`, `-finished`, `-cancelled` files."""
    return tmp_path_factory.mktemp("markers")


@pytest.fixture(scope="module")
def web_server(markers):
    """The Streamable HTTP test server, for the whole module."""
    with web_mcp_server(env={**sluice_env(), "MARKER_DIR": str(markers)}) as url:
        yield url


def with_mcp(web_url: str, markers: Path, pipeline: list[dict] | None = None, servers: dict | None = None, **extra):
    """Both test servers, the session key, and `pipeline` stages before the auth plugin."""
    def edit(manifest: dict) -> None:
        manifest["mcp_servers"] = {
            "web": {"url": web_url, "timeout_s": 10},
            "local": {"command": [sys.executable, str(SERVER), "stdio", "local"], "max_restart_delay_s": 1,
                      "env": {"MARKER_DIR": str(markers)}, "timeout_s": 10},
            **(servers or {}),
        }
        manifest["mcp_session_key"] = SESSION_KEY
        for index, stage in enumerate(pipeline or [{"plugin": "access-log"}, {"plugin": "metrics"}]):
            manifest["pipeline"].insert(index, stage)
        manifest.update(extra)
    return edit


def client(gw, headers=None, path="/mcp"):
    return streamablehttp_client(f"{gw.url}{path}", headers={**AUTH, **(headers or {})})


def wait_until(predicate, timeout=15.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def wait_for_local(gw, headers=None) -> None:
    """The stdio server takes a while to start: until `local__add` is listed."""
    async def names():
        async with client(gw, headers) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return {tool.name for tool in (await session.list_tools()).tools}
    assert wait_until(lambda: "local__add" in asyncio.run(names()), timeout=60), "the stdio server never listed its tools"


def rpc(gw, message: dict, session: str | None = None, headers: dict | None = None, timeout: float = 30) -> httpx.Response:
    all_headers = {**AUTH, "Accept": "application/json, text/event-stream", **(headers or {})}
    if session:
        all_headers["Mcp-Session-Id"] = session
    return httpx.post(f"{gw.url}/mcp", json=message, headers=all_headers, timeout=timeout)


def messages(response: httpx.Response) -> list[dict]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return [response.json()]


def open_session(gw, headers: dict | None = None) -> str:
    response = rpc(gw, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "clientInfo": {"name": "raw", "version": "1"},
        "capabilities": {"sampling": {}, "elicitation": {}, "roots": {}}}}, headers=headers)
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    assert rpc(gw, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session, headers).status_code == 202
    return session


def call(name: str, arguments: dict, id=7, token=None) -> dict:
    params = {"name": name, "arguments": arguments}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}


def metric(gw, name: str, **labels) -> float | None:
    """The value of the one sample of `name` whose labels include `labels` (None if there is none)."""
    found = None
    for line in gw.get("/metrics")[1].decode().splitlines():
        if not line.startswith(name + "{"):
            continue
        label_text, value = line[len(name) + 1:].rsplit("} ", 1)
        pairs = dict(part.split("=", 1) for part in label_text.split('",') if "=" in part)
        pairs = {key: value.strip('"') for key, value in pairs.items()}
        if all(pairs.get(key) == wanted for key, wanted in labels.items()):
            assert found is None, f"several samples of {name} match {labels}"
            found = float(value)
    return found


def access_lines(gw, method: str | None = None) -> list[dict]:
    return [line for line in gw.log_lines()
            if line.get("logger") == "sluice.access" and "mcp_method" in line and (method is None or line["mcp_method"] == method)]


# --- authentication --------------------------------------------------------------------------------

def test_jwt_auth_guards_mcp_and_its_claim_limits_tools(start_sluice, web_server, markers):
    def edit(manifest):
        with_mcp(web_server, markers)(manifest)
        auth = {"plugin": "jwt-auth", "config": {"hmac_secrets": [{"secret": JWT_SECRET}], "mcp_tools_claim": "mcp_tools",
                                                 "models_claim_absent": "all"}}
        manifest["pipeline"] = [stage if stage["plugin"] != "api-key-auth" else auth for stage in manifest["pipeline"]]
    gw = start_sluice(edit)

    def token(**claims):
        now = int(time.time())
        return jwt.encode({"sub": "alice", "iat": now, "exp": now + 300, **claims}, JWT_SECRET, algorithm="HS256")

    # No token, or a bad one: 401 before the body is read, with the challenge.
    refused = httpx.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                         headers={"Accept": "application/json, text/event-stream"})
    assert refused.status_code == 401 and refused.headers.get("www-authenticate", "").startswith("Bearer")
    assert httpx.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                      headers={"Authorization": "Bearer " + token()[:-3] + "abc"}).status_code == 401

    async def scenario(bearer: str):
        async with streamablehttp_client(f"{gw.url}/mcp", headers={"Authorization": f"Bearer {bearer}"}) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {tool.name for tool in (await session.list_tools()).tools}
                outcome = None
                try:
                    outcome = (await session.call_tool("web__add", {"a": 1, "b": 2})).content[0].text
                except McpError as error:
                    outcome = error.error
                return names, outcome, (await session.call_tool("web__echo", {"text": "hi"})).content[0].text

    names, outcome, echoed = asyncio.run(scenario(token(mcp_tools=["web__echo", "local__e*"])))
    assert "web__echo" in names and "web__add" not in names and "web__slow" not in names
    assert outcome.code == -32003 and "`alice` may not call the tool `web__add`" in outcome.message
    assert echoed == "web: hi"
    # Without the claim: every tool.
    names, outcome, _ = asyncio.run(scenario(token(sub="bob")))
    assert {"web__add", "web__echo"} <= names and outcome == "3 from web"
    denied = [line for line in access_lines(gw, "tools/call") if line.get("mcp_outcome") == "denied"]
    assert [line["key_name"] for line in denied] == ["alice"]


# --- rate limits -----------------------------------------------------------------------------------

def test_tool_calls_per_minute_refuse_the_call_past_the_limit(start_sluice, web_server, markers):
    def edit(manifest):
        with_mcp(web_server, markers)(manifest)
        # After the authenticator: it counts per key.
        at = next(i for i, stage in enumerate(manifest["pipeline"]) if stage["plugin"] == "api-key-auth")
        manifest["pipeline"].insert(at + 1, {"plugin": "rate-limit", "config": {"tool_calls_per_minute": 2}})
    gw = start_sluice(edit)
    session = open_session(gw)
    for index in range(2):
        answered = rpc(gw, call("web__add", {"a": index, "b": 1}, id=10 + index), session)
        assert messages(answered)[-1]["result"]["content"][0]["text"] == f"{index + 1} from web"
    refused = rpc(gw, call("web__add", {"a": 5, "b": 5}, id=12), session)
    # The call fails, not the transport: HTTP 200 and that call's JSON-RPC error.
    assert refused.status_code == 200
    error = refused.json()
    assert error["id"] == 12
    assert error["error"]["code"] == -32004 and error["error"]["data"]["status"] == 429
    assert "limit" in error["error"]["message"].lower()
    # Listing is not a tool call: still served.
    listed = rpc(gw, {"jsonrpc": "2.0", "id": 13, "method": "tools/list"}, session)
    assert "web__add" in {tool["name"] for tool in messages(listed)[-1]["result"]["tools"]}

    async def through_the_sdk():
        async with client(gw) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                with pytest.raises(McpError, match="limit"):
                    await session.call_tool("web__echo", {"text": "x"})
    asyncio.run(through_the_sdk())
    assert gw.wait_for_log('"error_code":"rate_limit_exceeded"', count=2)
    refusals = [line for line in access_lines(gw, "tools/call") if line.get("error_code") == "rate_limit_exceeded"]
    assert len(refusals) == 2 and all(line["key_name"] == "tester" for line in refusals)
    assert metric(gw, "sluice_mcp_calls_total", mcp_server="web", mcp_method="tools/call", outcome="ok") == 2
    refused = sum(metric(gw, "sluice_mcp_calls_total", mcp_server="web", gen_ai_tool_name=tool, outcome="rate_limited") or 0
                  for tool in ("web__add", "web__echo", "unknown"))
    assert refused == 2


# --- access log and metrics ------------------------------------------------------------------------

def test_access_log_has_one_line_per_message_without_arguments(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    session = open_session(gw)
    secret_argument = "argument-that-must-not-be-logged-4711"
    for server in ("web", "local"):
        answered = rpc(gw, call(f"{server}__echo", {"text": secret_argument}, id=f"{server}-1"), session)
        assert messages(answered)[-1]["result"]["content"][0]["text"] == f"{server}: {secret_argument}"
    assert gw.wait_for_log('"mcp_tool":"local__echo"')
    # One line per message: each call once, the session's own messages too.
    calls = [line for line in access_lines(gw, "tools/call") if line.get("mcp_tool") in ("web__echo", "local__echo")]
    assert [line["mcp_tool"] for line in calls] == ["web__echo", "local__echo"]
    assert access_lines(gw, "notifications/initialized") and access_lines(gw, "initialize")
    for server, line in zip(("web", "local"), calls):
        assert line["mcp_server"] == server
        assert line["mcp_outcome"] == "ok" and line["status"] == 200
        assert isinstance(line["latency_ms"], (int, float)) and "upstream_ms" in line
        assert line["key_name"] == "tester"
    assert secret_argument not in gw.stdout_text() and secret_argument not in gw.stderr_text()
    assert SLUICE_TEST_KEY not in gw.stdout_text()

    for server in ("web", "local"):
        labels = {"mcp_server": server, "mcp_method": "tools/call", "gen_ai_tool_name": f"{server}__echo", "outcome": "ok"}
        assert metric(gw, "sluice_mcp_calls_total", key_name="tester", **labels) == 1
        assert metric(gw, "sluice_mcp_call_duration_seconds_count", **labels) == 1
    # A name no server listed is no label of its own.
    rpc(gw, call("web__no_such_tool", {}, id=99), session)
    assert wait_until(lambda: metric(gw, "sluice_mcp_calls_total", gen_ai_tool_name="unknown", mcp_server="web") == 1, timeout=5)
    assert "web__no_such_tool" not in gw.get("/metrics")[1].decode()


def test_access_log_has_arguments_with_log_bodies(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers, pipeline=[{"plugin": "access-log", "config": {"log_bodies": True}}]))
    session = open_session(gw)
    rpc(gw, call("web__echo", {"text": "visible-argument-0815"}), session)
    assert gw.wait_for_log("visible-argument-0815")


# --- tracing ---------------------------------------------------------------------------------------

def test_a_span_per_call_and_the_trace_reaches_the_http_server(start_sluice, web_server, markers):
    collector = OTLPReceiver()
    try:
        gw = start_sluice(with_mcp(web_server, markers, pipeline=[{"plugin": "tracing", "config": {
            "otlp_endpoint": collector.url, "protocol": "http/json", "service_name": "sluice-mcp", "export_interval_ms": 100}}]))
        traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"

        async def scenario():
            async with client(gw, {"traceparent": traceparent}) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return (await session.call_tool("web__seen_headers", {})).content[0].text
        seen = dict(line.split("=", 1) for line in asyncio.run(scenario()).splitlines())
        assert seen["traceparent"].split("-")[1] == TRACE_ID
        forwarded_parent = seen["traceparent"].split("-")[2]
        assert forwarded_parent != CLIENT_SPAN  # sluice's own client span sits between
        assert SLUICE_TEST_KEY not in json.dumps(seen)  # the client's credentials stay at the gateway

        def spans():
            with collector.lock:
                return list(collector.spans)
        assert wait_until(lambda: any(s["name"] == "execute_tool web__seen_headers" for s in spans()), timeout=10), spans()
        server = next(s for s in spans() if s["name"] == "execute_tool web__seen_headers")
        assert server["trace_id"] == TRACE_ID and server["parent_id"] == CLIENT_SPAN
        assert server["attributes"]["mcp.method.name"] == "tools/call"
        assert server["attributes"]["gen_ai.tool.name"] == "web__seen_headers"
        assert server["attributes"]["sluice.mcp.server"] == "web"
        upstream = next(s for s in spans() if s["span_id"] == forwarded_parent)
        assert upstream["parent_id"] == server["span_id"] and upstream["kind"] in (3, "SPAN_KIND_CLIENT")
        # initialize, notifications/initialized: a span each too.
        assert {"mcp initialize", "mcp notifications/initialized"} <= {s["name"] for s in spans()}
    finally:
        collector.stop()


# --- progress and list changes ---------------------------------------------------------------------

def test_progress_arrives_on_the_calls_stream_under_the_clients_token(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    session = open_session(gw)
    for server in ("web", "local"):
        answered = rpc(gw, call(f"{server}__slow", {"steps": 3}, id=f"p-{server}", token=f"tok-{server}"), session)
        assert answered.headers["content-type"].startswith("text/event-stream")
        stream = messages(answered)
        progress = [m for m in stream if m.get("method") == "notifications/progress"]
        assert [m["params"]["progress"] for m in progress] == [1, 2, 3], server
        assert {m["params"]["progressToken"] for m in progress} == {f"tok-{server}"}
        assert stream[-1]["id"] == f"p-{server}" and stream[-1]["result"]["content"][0]["text"] == f"{server} did 3 steps"


def test_list_changed_reaches_a_client_listening_on_get(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)

    async def scenario():
        changed = anyio.Event()
        count = [0]

        async def on_message(message):
            if isinstance(message, types.ServerNotification) and isinstance(message.root, types.ToolListChangedNotification):
                count[0] += 1
                changed.set()

        async with client(gw) as (read, write, _):
            async with ClientSession(read, write, message_handler=on_message) as session:
                await session.initialize()
                for server in ("web", "local"):
                    # The GET stream opens beside the session: ask until its notification comes.
                    changed = anyio.Event()
                    for _ in range(20):
                        assert (await session.call_tool(f"{server}__change_tools", {})).content[0].text == "told"
                        with anyio.move_on_after(0.5):
                            await changed.wait()
                        if changed.is_set():
                            break
                    assert changed.is_set(), f"no tools/list_changed from {server}"
    asyncio.run(scenario())


# --- failures --------------------------------------------------------------------------------------

def test_timeout_names_the_server_and_cancels_the_call_there(start_sluice, web_server, markers):
    def edit(manifest):
        with_mcp(web_server, markers)(manifest)
        for server in manifest["mcp_servers"].values():
            server["timeout_s"] = 1
    gw = start_sluice(edit)
    wait_for_local(gw)
    session = open_session(gw)
    for server in ("web", "local"):
        tag = f"timeout-{server}"
        started = time.monotonic()
        answered = rpc(gw, call(f"{server}__sleepy", {"seconds": 8, "tag": tag}, id=f"t-{server}"), session)
        assert time.monotonic() - started < 6
        error = messages(answered)[-1]
        assert error["id"] == f"t-{server}"
        assert error["error"]["code"] == -32002 and f"`{server}`" in error["error"]["message"], error
        # Sluice gave up and told the server, which stopped the call.
        assert wait_until(lambda: (markers / f"{tag}-cancelled").exists(), timeout=5), f"{server} was not told"
        assert not (markers / f"{tag}-finished").exists()
    assert wait_until(lambda: len(access_lines(gw, "tools/call")) >= 2, timeout=5)
    assert {line["mcp_server"]: line["mcp_outcome"] for line in access_lines(gw, "tools/call")} == {"web": "timeout", "local": "timeout"}


def test_a_down_http_server_leaves_the_others_usable(start_sluice, web_server, markers):
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    gw = start_sluice(with_mcp(web_server, markers, servers={"gone": {"url": dead, "timeout_s": 2}}))
    wait_for_local(gw)

    async def scenario():
        async with client(gw) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {tool.name for tool in (await session.list_tools()).tools}
                assert {"web__add", "local__add"} <= names
                assert not [name for name in names if name.startswith("gone__")]
                with pytest.raises(McpError) as failure:
                    await session.call_tool("gone__add", {"a": 1, "b": 1})
                assert failure.value.error.code == -32001 and "`gone`" in failure.value.error.message
                assert (await session.call_tool("web__add", {"a": 1, "b": 1})).content[0].text == "2 from web"
                assert (await session.call_tool("local__add", {"a": 1, "b": 1})).content[0].text == "2 from local"
    asyncio.run(scenario())
    assert "mcp server left out of tools/list" in gw.stdout_text()
    assert any(line.get("mcp_server") == "gone" and line.get("mcp_outcome") == "unavailable" for line in access_lines(gw, "tools/call"))


def test_sigterm_lets_a_call_in_flight_finish(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    session = open_session(gw)
    result: dict = {}

    def slow_call():
        result["response"] = rpc(gw, call("web__sleepy", {"seconds": 2, "tag": "drain"}), session)
    caller = threading.Thread(target=slow_call)
    caller.start()
    assert wait_until(lambda: (markers / "drain-started").exists(), timeout=10)
    gw.send_signal(signal.SIGTERM)
    caller.join(15)
    assert messages(result["response"])[-1]["result"]["content"][0]["text"] == "web slept 2.0"
    assert gw.wait_exit(15) == 0
    assert (markers / "drain-finished").exists()


# --- server-to-client requests ---------------------------------------------------------------------

def test_sampling_elicitation_and_roots_are_relayed_to_the_client(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    seen_ids: list = []

    async def sampling(context, params: types.CreateMessageRequestParams):
        seen_ids.append(context.request_id)
        return types.CreateMessageResult(role="assistant", model="client-model",
                                         content=types.TextContent(type="text", text=params.messages[0].content.text.upper()))

    async def elicitation(context, params: types.ElicitRequestParams):
        seen_ids.append(context.request_id)
        return types.ElicitResult(action="accept", content={"name": "Ann"})

    async def roots(context):
        seen_ids.append(context.request_id)
        return types.ListRootsResult(roots=[types.Root(uri="file:///srv/one"), types.Root(uri="file:///srv/two")])

    async def scenario():
        async with client(gw) as (read, write, _):
            async with ClientSession(read, write, sampling_callback=sampling, elicitation_callback=elicitation,
                                     list_roots_callback=roots) as session:
                await session.initialize()
                for server in ("web", "local"):
                    with anyio.fail_after(20):
                        sampled = await session.call_tool(f"{server}__ask_sampling", {"prompt": "hello"})
                        assert sampled.content[0].text == f"{server} sampled: HELLO"
                        elicited = await session.call_tool(f"{server}__ask_name", {})
                        assert elicited.content[0].text == f"{server} elicited: accept Ann"
                        listed = await session.call_tool(f"{server}__ask_roots", {})
                        assert listed.content[0].text == f"{server} roots: file:///srv/one,file:///srv/two"
    asyncio.run(scenario())
    # Ids sluice can route back: the server's name first, unique.
    assert len(seen_ids) == 6 and len(set(seen_ids)) == 6
    assert all(isinstance(id, str) for id in seen_ids)
    assert [id.split("/", 1)[0] for id in seen_ids] == ["web"] * 3 + ["local"] * 3


def test_an_http_servers_request_outside_a_call_reaches_the_get_stream(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    seen_ids: list = []

    async def roots(context):
        seen_ids.append(context.request_id)
        return types.ListRootsResult(roots=[types.Root(uri="file:///srv/get")])

    async def scenario():
        async with client(gw) as (read, write, _):
            async with ClientSession(read, write, list_roots_callback=roots) as session:
                await session.initialize()
                # The GET stream opens beside the session (and then upstream): ask until it is there.
                for _ in range(10):
                    text = (await session.call_tool("web__ask_roots_outside", {})).content[0].text
                    if text != "no answer":
                        return text
                return text
    assert asyncio.run(scenario()) == "web roots: file:///srv/get"
    assert seen_ids and all(isinstance(id, str) and id.startswith("web/") for id in seen_ids)
    # The access log is written by its own thread: the line can come a moment after the answer.
    assert wait_until(lambda: any(line["mcp_method"] == "response" and line.get("mcp_server") == "web"
                                  and line.get("mcp_outcome") == "ok" for line in access_lines(gw)), timeout=5), access_lines(gw)


def test_a_stdio_servers_request_with_several_sessions_calls_in_flight_is_answered_by_sluice(start_sluice, web_server, markers):
    """The stdio transport does not say whose call a request belongs to: with another client's call
    in flight, sluice answers it itself rather than show one client's request to another; with
    only this client's calls in flight, the client gets it."""
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    other = open_session(gw)
    asked: list = []

    async def roots(context):
        asked.append(context.request_id)
        return types.ListRootsResult(roots=[types.Root(uri="file:///srv/mine")])

    async def scenario():
        async with client(gw) as (read, write, _):
            async with ClientSession(read, write, list_roots_callback=roots) as session:
                await session.initialize()
                caller = threading.Thread(target=rpc, args=(gw, call("local__sleepy", {"seconds": 3, "tag": "busy"}), other))
                caller.start()
                while not (markers / "busy-started").exists():
                    await anyio.sleep(0.05)
                crowded = (await session.call_tool("local__ask_roots", {})).content[0].text
                caller.join(15)
                alone = (await session.call_tool("local__ask_roots", {})).content[0].text
                # Two calls of this one session in flight: the request is this client's.
                async with anyio.create_task_group() as group:
                    group.start_soon(session.call_tool, "local__sleepy", {"seconds": 2, "tag": "own"})
                    while not (markers / "own-started").exists():
                        await anyio.sleep(0.05)
                    parallel = (await session.call_tool("local__ask_roots", {})).content[0].text
                return crowded, alone, parallel
    crowded, alone, parallel = asyncio.run(scenario())
    assert crowded == "local roots: "
    assert alone == "local roots: file:///srv/mine"
    assert parallel == "local roots: file:///srv/mine"
    assert len(asked) == 2


def test_a_relayed_request_is_answered_only_by_its_own_session(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    mine, other = open_session(gw), open_session(gw)
    headers = {**AUTH, "Accept": "application/json, text/event-stream", "Mcp-Session-Id": mine}
    for server in ("web", "local"):
        with httpx.Client(timeout=20) as http:
            with http.stream("POST", f"{gw.url}/mcp", json=call(f"{server}__ask_name", {}, id=f"e-{server}"), headers=headers) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                request = None
                for line in lines:
                    if line.startswith("data:"):
                        request = json.loads(line[5:])
                        break
                assert request and request["method"] == "elicitation/create", request
                relayed = request["id"]
                assert isinstance(relayed, str) and relayed.startswith(f"{server}/")
                answer = {"jsonrpc": "2.0", "id": relayed, "result": {"action": "accept", "content": {"name": "Mallory"}}}
                # Another session cannot answer it.
                forged = rpc(gw, answer, other)
                assert forged.status_code in (202, 400, 404)
                if server == "local":
                    assert forged.status_code != 202 and forged.json()["error"]["code"] == -32602
                # An id sluice never gave out: a clear error.
                unknown = rpc(gw, {"jsonrpc": "2.0", "id": f"{server}/nonsense", "result": {}}, mine)
                assert unknown.status_code in (202, 400) if server == "web" else unknown.status_code == 400
                assert rpc(gw, {"jsonrpc": "2.0", "id": "nowhere/1", "result": {}}, mine).status_code == 400
                # Its own session can.
                answer["result"]["content"]["name"] = "Bob"
                assert rpc(gw, answer, mine).status_code == 202
                final = None
                for line in lines:
                    if line.startswith("data:"):
                        final = json.loads(line[5:])
                        if "result" in final or "error" in final:
                            break
                assert final["id"] == f"e-{server}"
                assert final["result"]["content"][0]["text"] == f"{server} elicited: accept Bob", final


# --- cancellation ----------------------------------------------------------------------------------

def test_a_clients_cancellation_reaches_the_server(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    session, stranger = open_session(gw), open_session(gw)
    for server in ("web", "local"):
        tag = f"cancel-{server}"
        result: dict = {}

        def slow_call():
            result["response"] = rpc(gw, call(f"{server}__sleepy", {"seconds": 8, "tag": tag}, id=41), session)
        caller = threading.Thread(target=slow_call)
        caller.start()
        assert wait_until(lambda: (markers / f"{tag}-started").exists(), timeout=10)
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 41, "reason": "changed my mind"}}
        # Another session's id 41 is not this one: nothing is cancelled.
        assert rpc(gw, cancel, stranger).status_code == 202
        time.sleep(1)
        assert not (markers / f"{tag}-cancelled").exists()
        assert rpc(gw, cancel, session).status_code == 202
        assert wait_until(lambda: (markers / f"{tag}-cancelled").exists(), timeout=5), f"{server} did not stop the call"
        caller.join(15)
        assert not caller.is_alive()
        assert not (markers / f"{tag}-finished").exists()


def test_a_client_that_leaves_cancels_its_call(start_sluice, web_server, markers):
    gw = start_sluice(with_mcp(web_server, markers))
    wait_for_local(gw)
    session = open_session(gw)
    headers = {**AUTH, "Accept": "application/json, text/event-stream", "Mcp-Session-Id": session}
    for server in ("web", "local"):
        tag = f"gone-{server}"
        # A raw connection: the answer's head may wait for the answer, and the test must leave before.
        body = json.dumps(call(f"{server}__sleepy", {"seconds": 8, "tag": tag}, id=f"gone-{server}")).encode()
        head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as connection:
            connection.sendall(head + body)
            assert wait_until(lambda: (markers / f"{tag}-started").exists(), timeout=10)
        # The connection is closed: sluice tells the server, which stops the call.
        assert wait_until(lambda: (markers / f"{tag}-cancelled").exists(), timeout=10), f"{server} was not told"
        assert not (markers / f"{tag}-finished").exists()
