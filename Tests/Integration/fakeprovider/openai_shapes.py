"""OpenAI wire objects the fake provider answers with.

Kept apart from the HTTP plumbing so the exact shapes (the part the gateway and the SDKs are
sensitive to) are easy to compare with the OpenAI API reference.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import uuid
from typing import Any

from . import replies
from .replies import count_tokens

DEFAULT_EMBEDDING_DIMENSIONS = 8
# The largest `dimensions` an embeddings request may ask for (text-embedding-3-large's size): a
# request the gateway lets through with dimensions 2**31 must get a 400, not make the fake build it.
MAX_EMBEDDING_DIMENSIONS = 3072
SYSTEM_FINGERPRINT = "fp_fake"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    """The OpenAI error envelope, identical for every status."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def default_error_for_status(status: int) -> dict:
    """What OpenAI says for a bare status, used when a fault gives a status but no body."""
    kinds = {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        403: ("invalid_request_error", "unsupported_country_region_territory"),
        404: ("invalid_request_error", "model_not_found"),
        429: ("requests", "rate_limit_exceeded"),
    }
    type_, code = kinds.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return error_body(f"injected fault: HTTP {status}", type_, None, code)


# --- text helpers ---------------------------------------------------------------------------

def content_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts of which text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_turn(messages: list) -> tuple[str, bool]:
    """(the text the reply echoes, whether it is tool output).

    Normally the last user message. When the conversation ends in tool results (role ``tool``
    after an assistant's ``tool_calls``), the reply echoes those results instead: the model
    "reads" what the tool said and answers.
    """
    trailing_tools = []
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "tool":
            trailing_tools.append(content_text(m.get("content")))
        else:
            break
    if trailing_tools:
        return " ".join(reversed(trailing_tools)), True
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    return (content_text(last_user.get("content")) if last_user else ""), False


def reply_words(messages: list, override_words: int | None = None) -> list[str]:
    """The reply, as the words a stream sends one per chunk.

    The reply echoes the last user message. ``override_words`` stretches (by cycling) or trims it
    to exactly N words, so tests can ask for a long, slow stream.
    """
    return replies.echo_words(last_turn(messages)[0], override_words)


def join_words(words: list[str]) -> str:
    """Concatenating the streamed deltas (first word bare, then ' word') gives this text."""
    return " ".join(words)


def stream_deltas(words: list[str]) -> list[str]:
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def tool_to_call(body: dict) -> str | None:
    """The name of the function the fake model calls for this request, or None (it answers text).

    It calls one when ``tools`` are offered and either ``tool_choice`` forces it ("required" or a
    named function) or the last user message mentions the weather; never with ``tool_choice``
    "none", and not right after tool results unless forced.
    """
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    if not tools:
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        return choice["function"]["name"]
    text, after_tools = last_turn(body["messages"])
    if choice == "required" or (not after_tools and replies.TOOL_TRIGGER in text.lower()):
        return tools[0]["function"].get("name")
    return None


def plan_reply(body: dict, override_words: int | None = None) -> replies.Reply:
    """What the fake model answers to a chat request: text (cut by ``stop``/``max_tokens``) or a tool call."""
    name = tool_to_call(body)
    if name is not None:
        return replies.tool_reply(name)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return replies.text_reply(reply_words(body["messages"], override_words), replies.stop_list(body.get("stop")),
                              limit if isinstance(limit, int) and not isinstance(limit, bool) else None)


MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
CONTENT_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")


def check_messages(messages: list) -> tuple[str, str, str] | None:
    """OpenAI's own checks of ``messages`` that a translating gateway can trip: roles, part types,
    and tool calls paired with tool results. Returns (message, param, code) for a 400, or None."""
    open_calls: list[str] = []
    open_at = -1
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]", "invalid_type"
        role = m.get("role")
        if role not in MESSAGE_ROLES:
            return (f"Invalid value: {role!r}. Supported values are: 'system', 'assistant', 'user', 'function', "
                    f"'tool', and 'developer'.", f"messages[{i}].role", "invalid_value")
        content = m.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in CONTENT_PART_TYPES:
                    return (f"Invalid value: {kind!r}. Supported values are: 'text', 'image_url', 'input_audio', "
                            f"'refusal', 'audio', and 'file'.", f"messages[{i}].content[{j}].type", "invalid_value")
        if role == "tool":
            if m.get("tool_call_id") not in open_calls:
                return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                        "message with 'tool_calls'.", f"messages.[{i}].role", None)
            open_calls.remove(m["tool_call_id"])
            continue
        if open_calls:
            return ("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                    "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    + ", ".join(open_calls), f"messages.[{open_at}].role", None)
        if role == "assistant" and m.get("tool_calls"):
            calls = m["tool_calls"]
            if not isinstance(calls, list) or not all(
                    isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("function"), dict)
                    and isinstance(c["function"].get("name"), str) and isinstance(c["function"].get("arguments"), str)
                    for c in calls):
                return ("Invalid 'tool_calls': each needs an id and a function with a name and string arguments.",
                        f"messages[{i}].tool_calls", "invalid_value")
            open_calls, open_at = [c["id"] for c in calls], i
        else:
            open_calls = []
    if open_calls:
        return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                "'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(open_calls), f"messages.[{open_at}].role", None)
    return None


def check_tools(tools: Any) -> tuple[str, str, str] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "Invalid type for 'tools': expected an array.", "tools", "invalid_type"
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            return f"Invalid value for 'tools[{i}].type': expected 'function'.", f"tools[{i}].type", "invalid_value"
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return (f"Missing required parameter: 'tools[{i}].function.name'.", f"tools[{i}].function.name",
                    "missing_required_parameter")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            return (f"Invalid type for 'tools[{i}].function.parameters': expected an object.",
                    f"tools[{i}].function.parameters", "invalid_type")
    return None


# --- chat completions ------------------------------------------------------------------------

FINISH_REASONS = {replies.END: "stop", replies.STOP_SEQUENCE: "stop", replies.MAX_TOKENS: "length",
                  replies.TOOL: "tool_calls"}


def chat_usage(messages: list, completion_text: str) -> dict:
    prompt = sum(count_tokens(content_text(m.get("content"))) for m in messages if isinstance(m, dict))
    completion = count_tokens(completion_text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def reply_usage(messages: list, reply: replies.Reply) -> dict:
    return chat_usage(messages, reply.tool_arguments if reply.is_tool_call else reply.text)


def tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def chat_completion(model: str, text: str | replies.Reply, usage: dict) -> dict:
    """A whole ``chat.completion``; ``text`` is the reply text or a planned ``Reply``."""
    reply = text if isinstance(text, replies.Reply) else replies.Reply([text])
    if reply.is_tool_call:
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
            "id": tool_call_id(), "type": "function",
            "function": {"name": reply.tool_name, "arguments": reply.tool_arguments}}]}
    else:
        message = {"role": "assistant", "content": reply.text, "refusal": None}
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": FINISH_REASONS[reply.ending],
        }],
        "usage": usage,
    }


class ChunkFactory:
    """Builds the ``chat.completion.chunk`` objects of one stream (they share id and created)."""

    def __init__(self, model: str, include_usage: bool):
        self.id = new_id("chatcmpl")
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _chunk(self, choices: list, usage: Any = None) -> dict:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage  # OpenAI sends "usage": null on every chunk but the last
        return chunk

    def delta(self, delta: dict, finish_reason: str | None = None) -> dict:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def usage(self, usage: dict) -> dict:
        return self._chunk([], usage)


def chat_stream_events(model: str, words: list[str] | replies.Reply, usage: dict, include_usage: bool) -> list[dict]:
    """Every event of a streamed answer, in order (``[DONE]`` is added by the writer)."""
    return list(iter_chat_stream_events(model, words, usage, include_usage))


def chat_stream_event_count(words: list[str] | replies.Reply, include_usage: bool) -> int:
    """How many events ``iter_chat_stream_events`` yields (without building them)."""
    reply = _as_reply(words)
    body = len(reply.argument_pieces()) if reply.is_tool_call else len(reply.deltas)
    return body + 2 + (1 if include_usage else 0)


def _as_reply(words: list[str] | replies.Reply) -> replies.Reply:
    return words if isinstance(words, replies.Reply) else replies.Reply(stream_deltas(words))


def iter_chat_stream_events(model: str, words: list[str] | replies.Reply, usage: dict, include_usage: bool):
    """The events of ``chat_stream_events``, built one at a time (for very long streams).

    A text reply streams one word per chunk; a tool call streams its id and name first, then
    its arguments in several pieces, as OpenAI does.
    """
    reply = _as_reply(words)
    f = ChunkFactory(model, include_usage)
    if reply.is_tool_call:
        yield f.delta({"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
            "index": 0, "id": tool_call_id(), "type": "function",
            "function": {"name": reply.tool_name, "arguments": ""}}]})
        for piece in reply.argument_pieces():
            yield f.delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    else:
        yield f.delta({"role": "assistant", "content": "", "refusal": None})
        for piece in reply.deltas:
            yield f.delta({"content": piece})
    yield f.delta({}, FINISH_REASONS[reply.ending])
    if include_usage:
        yield f.usage(usage)


# --- embeddings ------------------------------------------------------------------------------

def embedding_for(text: str, dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic vector in [-1, 1], exactly representable as float32.

    Exact float32 values mean the base64 form decodes to the very same numbers as the float
    form, so tests can compare with ``==``.
    """
    out: list[float] = []
    counter = 0
    while len(out) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for i in range(0, len(digest), 2):
            raw = int.from_bytes(digest[i:i + 2], "little") / 65535.0 * 2.0 - 1.0
            out.append(struct.unpack("<f", struct.pack("<f", raw))[0])
        counter += 1
    return out[:dimensions]


def encode_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the little-endian float32 array, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_inputs(value: Any) -> list[str] | None:
    """Normalises ``input``: a string, a list of strings, or token arrays (turned into text)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return value
        if all(isinstance(v, int) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, list) for v in value):
            return [" ".join(map(str, v)) for v in value]
    return None


def embeddings_response(model: str, texts: list[str], encoding_format: str, dimensions: int) -> dict:
    data = []
    for i, text in enumerate(texts):
        vector = embedding_for(text, dimensions)
        data.append({
            "object": "embedding",
            "index": i,
            "embedding": encode_base64(vector) if encoding_format == "base64" else vector,
        })
    tokens = sum(count_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# --- models ----------------------------------------------------------------------------------

def models_list(ids: list[str]) -> dict:
    created = int(time.time())
    return {"object": "list",
            "data": [{"id": i, "object": "model", "created": created, "owned_by": "fake"} for i in ids]}
