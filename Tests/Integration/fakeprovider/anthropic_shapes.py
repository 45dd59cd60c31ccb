"""Anthropic Messages API wire objects the fake provider answers with, and the request checks
the real API makes that a translating gateway could trip (extra fields, a ``system`` role among
the messages, tool_use without its tool_result, ...).

Shapes follow the Messages API reference (``POST /v1/messages``, anthropic-version 2023-06-01):
the whole ``message`` object, the streamed event sequence (message_start, content_block_start,
ping, content_block_delta, content_block_stop, message_delta, message_stop) and the error
envelope ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import replies
from .replies import count_tokens

PATH = "/v1/messages"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

STOP_REASONS = {replies.END: "end_turn", replies.STOP_SEQUENCE: "stop_sequence",
                replies.MAX_TOKENS: "max_tokens", replies.TOOL: "tool_use"}

# Top-level request fields the API accepts; anything else is "Extra inputs are not permitted".
REQUEST_FIELDS = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
                  "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
                  "container", "mcp_servers", "context_management", "output_config", "output_format",
                  "cache_control", "diagnostics", "inference_geo", "speed", "user_profile_id", "workspace_id"}
BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
               "search_result", "server_tool_use", "web_search_tool_result"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def error_body(type_: str, message: str) -> dict:
    return {"type": "error", "error": {"type": type_, "message": message}}


def default_error_for_status(status: int) -> dict:
    type_ = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return error_body(type_, f"injected fault: HTTP {status}")


# --- reading a request ------------------------------------------------------------------------

def _blocks(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _text_of(content: Any) -> str:
    return " ".join(b.get("text", "") for b in _blocks(content) if b.get("type") == "text")


def system_text(system: Any) -> str:
    return _text_of(system)


def tool_result_text(block: dict) -> str:
    return _text_of(block.get("content", ""))


def last_turn(messages: list) -> tuple[str, bool]:
    """(the text the reply echoes, whether it is tool output): the last user message's text,
    or, when that message carries only tool results, what the tools said."""
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    if last_user is None:
        return "", False
    blocks = _blocks(last_user.get("content"))
    results = [tool_result_text(b) for b in blocks if b.get("type") == "tool_result"]
    text = " ".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    if results and not text:
        return " ".join(results), True
    return text, bool(results)


def input_tokens(body: dict) -> int:
    """System text plus every text block and tool result of the messages, one token per word."""
    total = count_tokens(system_text(body.get("system", "")))
    for m in body["messages"]:
        for b in _blocks(m.get("content")):
            if b.get("type") == "text":
                total += count_tokens(b.get("text", ""))
            elif b.get("type") == "tool_result":
                total += count_tokens(tool_result_text(b))
    return total


def tool_to_call(body: dict) -> str | None:
    """The tool the fake model calls, or None: as in the OpenAI dialect (see openai_shapes)."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]
    if not tools:
        return None
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type")
    if kind == "none":
        return None
    if kind == "tool":
        return choice.get("name")
    text, after_tools = last_turn(body["messages"])
    if kind == "any" or (not after_tools and replies.TOOL_TRIGGER in text.lower()):
        return tools[0]["name"]
    return None


def plan_reply(body: dict, override_words: int | None = None) -> replies.Reply:
    name = tool_to_call(body)
    if name is not None:
        return replies.tool_reply(name)
    words = replies.echo_words(last_turn(body["messages"])[0], override_words)
    return replies.text_reply(words, replies.stop_list(body.get("stop_sequences")), body["max_tokens"])


def output_tokens(reply: replies.Reply) -> int:
    return count_tokens(reply.tool_arguments if reply.is_tool_call else reply.text)


def check_request(body: dict) -> str | None:
    """The 400 message the real API would give this request, or None if it is acceptable."""
    extra = sorted(set(body) - REQUEST_FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required" if "model" not in body else "model: Input should be a valid string"
    max_tokens = body.get("max_tokens")
    if "max_tokens" not in body:
        return "max_tokens: Field required"
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required" if messages is None else "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list) or not all(isinstance(b, dict) and b.get("type") == "text"
                                                   and isinstance(b.get("text"), str) for b in system):
            return "system: Input should be a valid string or a list of text blocks"
    for name in ("stop_sequences",):
        if name in body and (not isinstance(body[name], list) or not all(isinstance(s, str) for s in body[name])):
            return f"{name}: Input should be a valid list of strings"
    if "metadata" in body:
        meta = body["metadata"]
        if not isinstance(meta, dict):
            return "metadata: Input should be a valid dictionary"
        if set(meta) - {"user_id"}:
            return f"metadata.{sorted(set(meta) - {'user_id'})[0]}: Extra inputs are not permitted"
    if "tools" in body:
        tools = body["tools"]
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                return f"tools.{i}.name: Field required"
            if tool.get("type") in (None, "custom"):
                schema = tool.get("input_schema")
                if not isinstance(schema, dict):
                    return f"tools.{i}.custom.input_schema: Field required"
                if schema.get("type") != "object":
                    return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
                extra_keys = sorted(set(tool) - {"name", "description", "input_schema", "type", "cache_control"})
                if extra_keys:
                    return f"tools.{i}.custom.{extra_keys[0]}: Extra inputs are not permitted"
    if "tool_choice" in body:
        choice = body["tool_choice"]
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required"
    return _check_messages(messages)


def _check_messages(messages: list) -> str | None:
    pending: list[str] = []  # tool_use ids of the previous assistant message
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = m.get("role")
        if role not in ("user", "assistant"):
            if role == "system":
                return ('messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                        'parameter, not "system" as an input message role.')
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = m.get("content")
        if not isinstance(content, (str, list)):
            return f"messages.{i}.content: Input should be a valid string or list"
        blocks = _blocks(content)
        if isinstance(content, list) and len(blocks) != len(content):
            return f"messages.{i}.content: every block must be an object"
        for j, b in enumerate(blocks):
            kind = b.get("type")
            where = f"messages.{i}.content.{j}"
            if kind not in BLOCK_TYPES:
                return f"{where}.type: Input tag {kind!r} found using 'type' does not match any of the expected tags"
            if kind == "text" and not isinstance(b.get("text"), str):
                return f"{where}.text.text: Field required"
            if kind == "image":
                source = b.get("source")
                if not isinstance(source, dict) or source.get("type") not in ("base64", "url", "file"):
                    return f"{where}.image.source: Field required"
                if source["type"] == "base64" and not (isinstance(source.get("media_type"), str)
                                                       and isinstance(source.get("data"), str)):
                    return f"{where}.image.source.base64: media_type and data are required"
            if kind == "tool_use":
                if role != "assistant":
                    return f"{where}: tool_use blocks may only appear in assistant messages"
                if not (isinstance(b.get("id"), str) and isinstance(b.get("name"), str)
                        and isinstance(b.get("input"), dict)):
                    return f"{where}.tool_use: id, name and input (an object) are required"
            if kind == "tool_result":
                if role != "user":
                    return f"{where}: tool_result blocks may only appear in user messages"
                if b.get("tool_use_id") not in pending:
                    return (f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            f"`tool_use` block in the previous message.")
        if pending:
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            missing = [t for t in pending if t not in answered]
            if role != "user" or missing:
                return (f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(missing or pending)}. Each `tool_use` block must have a "
                        f"corresponding `tool_result` block in the next message.")
        pending = [b["id"] for b in blocks if b.get("type") == "tool_use"] if role == "assistant" else []
    if pending:
        return (f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(pending)}. Each `tool_use` block must have a corresponding "
                f"`tool_result` block in the next message.")
    return None


# --- answers ----------------------------------------------------------------------------------

def usage(input_count: int, output_count: int) -> dict:
    return {"input_tokens": input_count, "output_tokens": output_count,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def content_blocks(reply: replies.Reply, tool_id: str | None = None) -> list[dict]:
    if reply.is_tool_call:
        return [{"type": "tool_use", "id": tool_id or new_id("toolu"), "name": reply.tool_name,
                 "input": reply.tool_input}]
    return [{"type": "text", "text": reply.text}]


def message(model: str, reply: replies.Reply, usage_: dict) -> dict:
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(reply),
        "stop_reason": STOP_REASONS[reply.ending],
        "stop_sequence": reply.stop_sequence,
        "usage": usage_,
    }


def stream_event_count(reply: replies.Reply) -> int:
    pieces = len(reply.argument_pieces()) + 1 if reply.is_tool_call else len(reply.deltas)
    return 6 + pieces  # message_start, content_block_start, ping, ..., block_stop, message_delta, message_stop


def iter_stream_events(model: str, reply: replies.Reply, input_count: int, output_count: int):
    """The streamed answer's events, in the API's order. A text block streams one text_delta per
    word; a tool_use block streams its input as input_json_delta pieces (the first one empty, as
    the API does)."""
    msg_id = new_id("msg")
    yield {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage(input_count, 1)}}
    if reply.is_tool_call:
        yield {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": new_id("toolu"), "name": reply.tool_name, "input": {}}}
        yield {"type": "ping"}
        for piece in ["", *reply.argument_pieces()]:
            yield {"type": "content_block_delta", "index": 0,
                   "delta": {"type": "input_json_delta", "partial_json": piece}}
    else:
        yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        yield {"type": "ping"}
        for piece in reply.deltas:
            yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
    yield {"type": "content_block_stop", "index": 0}
    yield {"type": "message_delta",
           "delta": {"stop_reason": STOP_REASONS[reply.ending], "stop_sequence": reply.stop_sequence},
           "usage": {"output_tokens": output_count}}
    yield {"type": "message_stop"}
