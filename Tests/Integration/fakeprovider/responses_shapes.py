"""OpenAI Responses API wire objects (``POST /v1/responses``) the fake provider answers with, and
the request checks the real API makes that a translating gateway could trip.

Shapes follow OpenAI's published OpenAPI document (``Response``, ``ResponseStreamEvent``,
``CreateResponse``) and what api.openai.com sends: a whole ``response`` object, or a stream of
typed events (``event: response.created`` … ``event: response.completed``, each carrying a
``sequence_number`` counted from 0, and no ``[DONE]`` terminator). A failure mid-stream is an
``error`` event (``type``, ``code``, ``message``, ``param``, ``sequence_number``) or a
``response.failed`` event whose response has ``status: failed`` and an ``error``.

What the model says is decided exactly as on the chat endpoint: the request is read as the chat
request a translating gateway would send (``as_chat``), and ``openai_shapes.plan_reply`` plans
the reply, so a native Responses provider and a translated one answer the same words, the same
tool call and the same usage.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import openai_shapes as shapes
from . import replies

PATH = "/v1/responses"
AZURE_PATH = "/openai/v1/responses"  # Azure OpenAI's v1 API: the deployment is the body's model
STORED_PATH = re.compile(r"^(/v1|/openai/v1)/responses/([^/]+)(/input_items)?$")

# CreateResponse's properties in OpenAI's OpenAPI document; anything else is "Unknown parameter".
REQUEST_FIELDS = {"background", "context_management", "conversation", "include", "input", "instructions",
                  "max_output_tokens", "max_tool_calls", "metadata", "model", "parallel_tool_calls",
                  "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_retention", "reasoning",
                  "safety_identifier", "service_tier", "store", "stream", "stream_options", "temperature", "text",
                  "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user"}
ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference",
              "file_search_call", "computer_call", "computer_call_output", "web_search_call",
              "image_generation_call", "code_interpreter_call", "local_shell_call", "local_shell_call_output",
              "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call",
              "custom_tool_call", "custom_tool_call_output")
ROLES = ("user", "assistant", "system", "developer")
INPUT_PART_TYPES = ("input_text", "input_image", "input_file")
ASSISTANT_PART_TYPES = ("output_text", "refusal")
TOOL_TYPES = ("function", "file_search", "computer_use_preview", "web_search", "web_search_preview", "mcp",
              "code_interpreter", "image_generation", "local_shell", "shell", "custom", "apply_patch")
MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens

Problem = tuple[str, str | None, str | None]  # (message, param, code) of a 400


def _hex(n: int = 48) -> str:
    return (uuid.uuid4().hex + uuid.uuid4().hex)[:n]


def response_id() -> str:
    return f"resp_{_hex()}"


def item_id(prefix: str) -> str:
    return f"{prefix}_{_hex()}"


def call_id() -> str:
    return f"call_{_hex(24)}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _supported(values) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)


def _missing(param: str) -> Problem:
    return f"Missing required parameter: '{param}'.", param, "missing_required_parameter"


def _invalid_type(param: str, expected: str, value: Any) -> Problem:
    return f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.", param, "invalid_type"


def _invalid_value(param: str, value: Any, supported) -> Problem:
    return f"Invalid value: {value!r}. Supported values are: {_supported(supported)}.", param, "invalid_value"


# --- request checks ------------------------------------------------------------------------------

def check_request(body: dict) -> Problem | None:
    """OpenAI's checks of a request's own fields (not yet of how its items pair up)."""
    unknown = [name for name in body if name not in REQUEST_FIELDS]
    if unknown:
        return f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter"
    if "model" not in body:
        return _missing("model")
    if not isinstance(body["model"], str):
        return _invalid_type("model", "a string", body["model"])
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        return _invalid_type("stream", "a boolean", body["stream"])
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, (str, list)):
        return _invalid_type("instructions", "a string", instructions)
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        return _invalid_type("previous_response_id", "a string", previous)
    if "input" in body and body["input"] is not None:
        value = body["input"]
        if not isinstance(value, (str, list)):
            return _invalid_type("input", "one of a string or array of input items", value)
        if isinstance(value, list):
            for i, item in enumerate(value):
                problem = check_item(item, f"input[{i}]")
                if problem is not None:
                    return problem
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            return _invalid_type("max_output_tokens", "an integer", limit)
        if limit < MIN_OUTPUT_TOKENS:
            return (f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                    f"{MIN_OUTPUT_TOKENS}, but got {limit} instead.", "max_output_tokens", "integer_below_min_value")
    return check_tools(body.get("tools")) or check_tool_choice(body.get("tool_choice"))


def check_item(item: Any, at: str) -> Problem | None:
    if not isinstance(item, dict):
        return _invalid_type(at, "an input item", item)
    kind = item.get("type", "message" if "role" in item else None)
    if kind is None:
        return _missing(f"{at}.type")
    if kind not in ITEM_TYPES:
        return _invalid_value(f"{at}.type", kind, ITEM_TYPES)
    if kind == "message":
        role = item.get("role")
        if role is None:
            return _missing(f"{at}.role")
        if role not in ROLES:
            return _invalid_value(f"{at}.role", role, ("assistant", "system", "developer", "user"))
        if "content" not in item:
            return _missing(f"{at}.content")
        content = item["content"]
        if isinstance(content, str):
            return None
        if not isinstance(content, list):
            return _invalid_type(f"{at}.content", "one of a string or array of content parts", content)
        allowed = ASSISTANT_PART_TYPES if role == "assistant" else INPUT_PART_TYPES
        for j, part in enumerate(content):
            where = f"{at}.content[{j}]"
            if not isinstance(part, dict):
                return _invalid_type(where, "a content part", part)
            if part.get("type") not in allowed:
                return _invalid_value(where, part.get("type"), allowed)
            if part["type"] in ("input_text", "output_text"):
                if "text" not in part:
                    return _missing(f"{where}.text")
                if not isinstance(part["text"], str):
                    return _invalid_type(f"{where}.text", "a string", part["text"])
        return None
    if kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if name not in item:
                return _missing(f"{at}.{name}")
            if not isinstance(item[name], str):
                return _invalid_type(f"{at}.{name}", "a string", item[name])
    elif kind == "function_call_output":
        for name in ("call_id", "output"):
            if name not in item:
                return _missing(f"{at}.{name}")
        if not isinstance(item["call_id"], str):
            return _invalid_type(f"{at}.call_id", "a string", item["call_id"])
        if not isinstance(item["output"], (str, list)):
            return _invalid_type(f"{at}.output", "one of a string or array of content parts", item["output"])
    elif kind == "item_reference" and not isinstance(item.get("id"), str):
        return _missing(f"{at}.id")
    return None


def check_tools(tools: Any) -> Problem | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _invalid_type("tools", "an array", tools)
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return _invalid_type(f"tools[{i}]", "an object", tool)
        if "type" not in tool:
            return _missing(f"tools[{i}].type")
        if tool["type"] not in TOOL_TYPES:
            return _invalid_value(f"tools[{i}].type", tool["type"], TOOL_TYPES)
        if tool["type"] == "function":
            # A Chat Completions tool ({"type": "function", "function": {...}}) lands here.
            if "name" not in tool:
                return _missing(f"tools[{i}].name")
            if not isinstance(tool["name"], str):
                return _invalid_type(f"tools[{i}].name", "a string", tool["name"])
            if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
                return _invalid_type(f"tools[{i}].parameters", "an object", tool["parameters"])
    return None


def check_tool_choice(choice: Any) -> Problem | None:
    if choice is None or choice in ("auto", "none", "required"):
        return None
    if isinstance(choice, str):
        return _invalid_value("tool_choice", choice, ("none", "auto", "required"))
    if not isinstance(choice, dict):
        return _invalid_type("tool_choice", "one of a string or object", choice)
    if choice.get("type") == "function" and not isinstance(choice.get("name"), str):
        return _missing("tool_choice.name")  # a Chat Completions tool_choice lands here
    return None


def check_pairing(items: list[dict]) -> Problem | None:
    """Every function_call_output answers an earlier function_call, and every function_call is
    answered (the conversation as the model sees it, earlier turns included)."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            calls.append(item["call_id"])
        elif kind == "function_call_output":
            if item["call_id"] not in calls:
                return f"No tool call found for function call output with call_id {item['call_id']}.", "input", None
            answered.add(item["call_id"])
    for call in calls:
        if call not in answered:
            return f"No tool output found for function call {call}.", "input", None
    return None


# --- reading a request ---------------------------------------------------------------------------

def input_items(value: Any) -> list[dict]:
    """The request's ``input`` as items: a string is one user message; items keep what was sent."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item if "type" in item else {**item, "type": "message"} for item in value]


def with_ids(items: list[dict]) -> list[dict]:
    """Items as OpenAI keeps them (and lists them under input_items): each with an id, and a
    message's string content as one text part."""
    out = []
    for item in items:
        item = dict(item)
        if item["type"] == "message":
            if isinstance(item.get("content"), str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": part, "text": item["content"]}]
            item.setdefault("id", item_id("msg"))
            item.setdefault("status", "completed")
        elif item["type"] == "function_call":
            item.setdefault("id", item_id("fc"))
            item.setdefault("status", "completed")
        elif item["type"] == "function_call_output":
            item.setdefault("id", item_id("fco"))
            item.setdefault("status", "completed")
        out.append(item)
    return out


def text_of(content: Any) -> str:
    """A message's text: a string, or its text parts (input_text or output_text) joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text"))
    return ""


def output_text_of(output: Any) -> str:
    if isinstance(output, str):
        return output
    return text_of(output)


def as_chat(body: dict, items: list[dict]) -> dict:
    """The request as the Chat Completions request a faithful translation would be: instructions
    as a system message, messages with their text, function calls as an assistant's tool_calls,
    their outputs as tool messages; tools, tool_choice and max_output_tokens in chat's shape."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif isinstance(instructions, list):
        messages += [{"role": m.get("role", "system"), "content": text_of(m.get("content"))}
                     for m in instructions if isinstance(m, dict)]
    for item in items:
        kind = item.get("type")
        if kind == "message":
            messages.append({"role": item["role"], "content": text_of(item.get("content"))})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and last.get("tool_calls") and last["content"] is None:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output_text_of(item["output"])})
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools:
        chat["tools"] = [{"type": "function", "function": {"name": t["name"], "parameters": t.get("parameters") or {}}}
                         for t in tools]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif isinstance(choice, str):
        chat["tool_choice"] = choice
    if isinstance(body.get("max_output_tokens"), int):
        chat["max_completion_tokens"] = body["max_output_tokens"]
    return chat


def usage(chat_usage: dict) -> dict:
    """A chat ``usage`` in the Responses shape (``cache_write_tokens`` as the current API and
    SDK have it, beside the published document's ``cached_tokens``)."""
    return {"input_tokens": chat_usage["prompt_tokens"], "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": chat_usage["completion_tokens"], "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": chat_usage["total_tokens"]}


# --- the answer ----------------------------------------------------------------------------------

def echoed_tools(tools: Any) -> list[dict]:
    """The request's tools as a Response echoes them: function tools with ``strict`` (default
    true) and ``parameters`` filled in."""
    out = []
    for tool in tools or []:
        if tool.get("type") == "function":
            tool = {"type": "function", "description": tool.get("description"), "name": tool["name"],
                    "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}
        out.append(tool)
    return out


@dataclass
class Answer:
    """One Response to one request: its id, items and every event of its stream."""
    body: dict
    reply: replies.Reply
    usage: dict
    id: str = field(default_factory=response_id)
    created_at: int = field(default_factory=lambda: int(time.time()))
    item_id: str = ""
    call_id: str = ""

    def __post_init__(self) -> None:
        self.item_id = item_id("fc" if self.reply.is_tool_call else "msg")
        self.call_id = call_id() if self.reply.is_tool_call else ""

    @property
    def incomplete(self) -> bool:
        return self.reply.ending == replies.MAX_TOKENS

    @property
    def final_status(self) -> str:
        return "incomplete" if self.incomplete else "completed"

    # items

    def text_part(self, text: str) -> dict:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def item(self, done: bool) -> dict:
        if self.reply.is_tool_call:
            return {"id": self.item_id, "type": "function_call", "status": "completed" if done else "in_progress",
                    "arguments": self.reply.tool_arguments if done else "", "call_id": self.call_id,
                    "name": self.reply.tool_name}
        return {"id": self.item_id, "type": "message", "status": self.final_status if done else "in_progress",
                "content": [self.text_part(self.reply.text)] if done else [], "role": "assistant"}

    # the response object

    def response(self, status: str | None = None, error: dict | None = None) -> dict:
        """The Response object; ``status`` None is the finished one (with output and usage)."""
        body = self.body
        finished = status is None
        status = status or self.final_status
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if finished and self.incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": body["model"],
            "output": [self.item(done=True)] if finished else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": echoed_tools(body.get("tools")),
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": self.usage if finished else None,
            "metadata": body.get("metadata") or {},
        }

    # the stream

    def event_count(self) -> int:
        if self.reply.is_tool_call:
            return 6 + len(self.reply.argument_pieces())
        return 8 + len(self.reply.deltas)

    def events(self) -> Iterator[dict]:
        """Every event of the streamed answer, numbered from 0, built one at a time."""
        seq = 0

        def ev(kind: str, **fields: Any) -> dict:
            nonlocal seq
            event = {"type": kind, **fields, "sequence_number": seq}
            seq += 1
            return event

        yield ev("response.created", response=self.response("in_progress"))
        yield ev("response.in_progress", response=self.response("in_progress"))
        yield ev("response.output_item.added", output_index=0, item=self.item(done=False))
        if self.reply.is_tool_call:
            for piece in self.reply.argument_pieces():
                yield ev("response.function_call_arguments.delta", item_id=self.item_id, output_index=0,
                         delta=piece, obfuscation=_hex(8))
            yield ev("response.function_call_arguments.done", item_id=self.item_id, output_index=0,
                     arguments=self.reply.tool_arguments, name=self.reply.tool_name)
        else:
            at = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
            yield ev("response.content_part.added", **at, part=self.text_part(""))
            for piece in self.reply.deltas:
                yield ev("response.output_text.delta", **at, delta=piece, logprobs=[], obfuscation=_hex(8))
            yield ev("response.output_text.done", **at, text=self.reply.text, logprobs=[])
            yield ev("response.content_part.done", **at, part=self.text_part(self.reply.text))
        yield ev("response.output_item.done", output_index=0, item=self.item(done=True))
        yield ev("response.incomplete" if self.incomplete else "response.completed", response=self.response())

    # mid-stream failures, as OpenAI sends them

    def failure_event(self, kind: str, sequence_number: int) -> dict:
        """An ``error`` event, or a ``response.failed`` event, numbered ``sequence_number``."""
        message = "The server had an error while processing your request. Sorry about that!"
        if kind == "response.failed":
            failed = self.response("failed", error={"code": "server_error", "message": message})
            return {"type": "response.failed", "response": failed, "sequence_number": sequence_number}
        return {"type": "error", "code": "server_error", "message": message, "param": None,
                "sequence_number": sequence_number}


def stored(answer: Answer, items: list[dict]) -> dict:
    """What the fake keeps of an answer for previous_response_id and GET /v1/responses/{id}."""
    return {"input": items, "response": answer.response()}


def not_found(response_id_: str) -> dict:
    return shapes.error_body(f"Response with id '{response_id_}' not found.", "invalid_request_error", None, None)


def encode_event(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + json.dumps(event).encode() + b"\n\n"
