"""Gemini API wire objects the fake provider answers with (Google AI Studio and Vertex AI share
them), and the request checks the real API makes that a translating gateway could trip.

Shapes follow the ``generateContent`` reference: a request of ``contents`` (roles ``user`` and
``model``, each a list of parts: ``text``, ``inlineData``, ``fileData``, ``functionCall``,
``functionResponse``), ``systemInstruction``, ``tools[].functionDeclarations`` (parameters in the
OpenAPI subset: ``additionalProperties`` and friends are refused), ``toolConfig`` and
``generationConfig``; an answer of ``candidates`` with ``finishReason``, ``usageMetadata``,
``modelVersion`` and ``responseId``. Streams (``?alt=sse``) are ``data:`` events, each a whole
``GenerateContentResponse`` with the next parts, with no end marker. Errors are
``{"error": {"code", "message", "status", "details"}}``.

What the fake model says is ``replies``' echo or tool call. Test hooks in the prompt: a user text
containing ``blocked`` is refused (``promptFeedback.blockReason``); a model name containing
``thinking`` reports thoughts (a thought part and ``thoughtsTokenCount``), one containing
``cached`` reports ``cachedContentTokenCount``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from . import openai_shapes as shapes
from . import replies
from .replies import count_tokens

FINISH_REASONS = {replies.END: "STOP", replies.STOP_SEQUENCE: "STOP", replies.MAX_TOKENS: "MAX_TOKENS",
                  replies.TOOL: "STOP"}
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                  "cachedContent", "labels"}
GENERATION_FIELDS = {"temperature", "topP", "topK", "maxOutputTokens", "candidateCount", "stopSequences",
                     "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
                     "responseJsonSchema", "responseLogprobs", "logprobs", "thinkingConfig", "responseModalities"}
PART_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
PART_EXTRAS = {"thought", "thoughtSignature"}
SCHEMA_FIELDS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
                 "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
                 "propertyOrdering", "default", "items", "minimum", "maximum"}
BLOCK_TRIGGER = "blocked"


def error_body(code: int, message: str, details: list | None = None) -> dict:
    error = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def rate_limited(retry_seconds: int = 30) -> dict:
    """A 429 body as Google sends it, the wait in a RetryInfo detail."""
    return error_body(429, "Resource has been exhausted (e.g. check quota).", [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generate_content_requests"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_seconds}s"}])


def invalid_key() -> dict:
    """What AI Studio answers a wrong API key: a 400, not a 401."""
    return error_body(400, "API key not valid. Please pass a valid API key.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])


def _invalid(message: str) -> tuple[int, dict]:
    return 400, error_body(400, message)


# --- reading a request ------------------------------------------------------------------------

def _unknown(where: str, name: str) -> tuple[int, dict]:
    return _invalid(f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.')


def _check_schema(schema: Any, where: str) -> tuple[int, dict] | None:
    if not isinstance(schema, dict):
        return _invalid(f"{where}: expected a schema object")
    for key in schema:
        if key not in SCHEMA_FIELDS:
            return _unknown(where, key)
    if schema.get("type") == "object" and not schema.get("properties"):
        return _invalid(f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type")
    for name, prop in (schema.get("properties") or {}).items():
        problem = _check_schema(prop, f"{where}.properties[{name}]")
        if problem:
            return problem
    if "items" in schema:
        return _check_schema(schema["items"], f"{where}.items")
    for i, option in enumerate(schema.get("anyOf") or []):
        problem = _check_schema(option, f"{where}.any_of[{i}]")
        if problem:
            return problem
    return None


def check_request(body: dict) -> tuple[int, dict] | None:
    """The error the real API would answer this request with, or None if it is acceptable."""
    for key in body:
        if key not in REQUEST_FIELDS:
            return _unknown("", key)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return _invalid("* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            return _invalid(f"Please use a valid role: user, model. (contents[{i}])")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return _invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            kinds = [k for k in part if k in PART_FIELDS] if isinstance(part, dict) else []
            extra = [k for k in part if k not in PART_FIELDS | PART_EXTRAS] if isinstance(part, dict) else []
            if extra:
                return _unknown(f"contents[{i}].parts[{j}]", extra[0])
            if len(kinds) != 1:
                return _invalid(f"contents[{i}].parts[{j}]: a part holds exactly one of {sorted(PART_FIELDS)}")
            if "functionResponse" in part:
                response = part["functionResponse"]
                if not isinstance(response.get("name"), str) or not isinstance(response.get("response"), dict):
                    return _invalid(f"contents[{i}].parts[{j}].function_response: name and response are required")
            if "inlineData" in part and not (isinstance(part["inlineData"].get("mimeType"), str)
                                             and isinstance(part["inlineData"].get("data"), str)):
                return _invalid(f"contents[{i}].parts[{j}].inline_data: mimeType and data are required")
            if "fileData" in part and not (isinstance(part["fileData"].get("mimeType"), str)
                                           and isinstance(part["fileData"].get("fileUri"), str)):
                return _invalid(f"contents[{i}].parts[{j}].file_data: mimeType and fileUri are required")
    system = body.get("systemInstruction")
    if system is not None and not (isinstance(system, dict) and isinstance(system.get("parts"), list)):
        return _invalid("systemInstruction: expected a Content with parts")
    for t, tool in enumerate(body.get("tools") or []):
        for f, declaration in enumerate(tool.get("functionDeclarations") or []):
            if not isinstance(declaration.get("name"), str) or not declaration["name"]:
                return _invalid(f"tools[{t}].function_declarations[{f}].name: Name cannot be empty.")
            extra = sorted(set(declaration) - {"name", "description", "parameters", "parametersJsonSchema", "response"})
            if extra:
                return _unknown(f"tools[{t}].function_declarations[{f}]", extra[0])
            if "parameters" in declaration:
                problem = _check_schema(declaration["parameters"], f"tools[{t}].function_declarations[{f}].parameters")
                if problem:
                    return problem
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return _invalid(f"Invalid value at 'tool_config.function_calling_config.mode' ({mode})")
    for key in body.get("generationConfig") or {}:
        if key not in GENERATION_FIELDS:
            return _unknown("generation_config", key)
    return None


def _texts(parts: list) -> list[str]:
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")]


def _response_text(part: dict) -> str:
    response = part["functionResponse"].get("response", {})
    content = response.get("content", response)
    return content if isinstance(content, str) else json.dumps(content)


def last_turn(contents: list) -> tuple[str, bool]:
    """(the text the reply echoes, whether it follows tool results), as in the other dialects."""
    last_user = next((c for c in reversed(contents) if c.get("role") == "user"), None)
    if last_user is None:
        return "", False
    parts = last_user["parts"]
    results = [_response_text(p) for p in parts if "functionResponse" in p]
    text = " ".join(_texts(parts))
    if results and not text:
        return " ".join(results), True
    return text, bool(results)


def prompt_tokens(body: dict) -> int:
    total = sum(count_tokens(t) for t in _texts((body.get("systemInstruction") or {}).get("parts", [])))
    for content in body["contents"]:
        total += sum(count_tokens(t) for t in _texts(content["parts"]))
        total += sum(count_tokens(_response_text(p)) for p in content["parts"] if "functionResponse" in p)
    return total


def tool_to_call(body: dict) -> str | None:
    names = [d["name"] for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    if not names:
        return None
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode", "AUTO")
    if mode == "NONE":
        return None
    if mode == "ANY":
        return (config.get("allowedFunctionNames") or names)[0]
    text, after_tools = last_turn(body["contents"])
    return names[0] if not after_tools and replies.TOOL_TRIGGER in text.lower() else None


def plan_reply(body: dict, override_words: int | None = None) -> replies.Reply:
    name = tool_to_call(body)
    if name is not None:
        return replies.tool_reply(name)
    config = body.get("generationConfig") or {}
    text = last_turn(body["contents"])[0]
    words = replies.echo_words(text, override_words)
    if config.get("responseMimeType") == "application/json":
        words = [json.dumps({"echo": text})]
    return replies.text_reply(words, replies.stop_list(config.get("stopSequences")), config.get("maxOutputTokens"))


def is_blocked(body: dict) -> bool:
    return BLOCK_TRIGGER in last_turn(body["contents"])[0].lower()


# --- answers ----------------------------------------------------------------------------------

def _parts(reply: replies.Reply) -> list[dict]:
    if reply.is_tool_call:
        return [{"functionCall": {"name": reply.tool_name, "args": reply.tool_input}}]
    return [{"text": reply.text}]


def usage_metadata(model: str, prompt: int, output: int) -> dict:
    thoughts = 5 if "thinking" in model else 0
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output + thoughts}
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if "cached" in model:
        usage["cachedContentTokenCount"] = min(prompt, 2)
    return usage


def output_tokens(reply: replies.Reply) -> int:
    return count_tokens(reply.tool_arguments if reply.is_tool_call else reply.text)


def generate_content(model: str, body: dict, reply: replies.Reply) -> dict:
    prompt = prompt_tokens(body)
    if is_blocked(body):
        return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage_metadata(model, prompt, 0),
                "modelVersion": model, "responseId": uuid.uuid4().hex[:20]}
    count = (body.get("generationConfig") or {}).get("candidateCount") or 1
    thought = [{"text": "Thinking it over.", "thought": True}] if "thinking" in model else []
    candidates = [{"content": {"role": "model", "parts": thought + _parts(reply)},
                   "finishReason": FINISH_REASONS[reply.ending], "index": i} for i in range(count)]
    return {"candidates": candidates, "usageMetadata": usage_metadata(model, prompt, output_tokens(reply) * count),
            "modelVersion": model, "responseId": uuid.uuid4().hex[:20]}


def stream_events(model: str, body: dict, reply: replies.Reply) -> list[dict]:
    """The streamed answer: one event per word (a function call comes whole in one event); the
    last event has the finish reason and the whole usage."""
    prompt = prompt_tokens(body)
    response_id = uuid.uuid4().hex[:20]
    base = {"modelVersion": model, "responseId": response_id}
    if is_blocked(body):
        return [{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage_metadata(model, prompt, 0), **base}]
    if reply.is_tool_call:
        pieces = [_parts(reply)]
    else:
        pieces = [[{"text": piece}] for piece in reply.deltas] or [[{"text": ""}]]
    if "thinking" in model:
        pieces.insert(0, [{"text": "Thinking it over.", "thought": True}])
    events = []
    for i, parts in enumerate(pieces):
        candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
        last = i == len(pieces) - 1
        if last:
            candidate["finishReason"] = FINISH_REASONS[reply.ending]
        usage = usage_metadata(model, prompt, output_tokens(reply)) if last else {"promptTokenCount": prompt,
                                                                                     "totalTokenCount": prompt}
        events.append({"candidates": [candidate], "usageMetadata": usage, **base})
    return events


def embed_values(text: str, dimensions: int | None) -> list[float]:
    return shapes.embedding_for(text, dimensions or shapes.DEFAULT_EMBEDDING_DIMENSIONS)


def batch_embed(model: str, body: dict) -> tuple[int, dict]:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return _invalid("* BatchEmbedContentsRequest.requests: requests must not be empty")
    out = []
    for i, request in enumerate(requests):
        if request.get("model") != f"models/{model}":
            return _invalid(f"requests[{i}].model: model must be the one in the URL (models/{model}), "
                            f"got {request.get('model')!r}")
        texts = _texts((request.get("content") or {}).get("parts") or [])
        if not texts:
            return _invalid(f"requests[{i}].content: content must have a text part")
        out.append({"values": embed_values(" ".join(texts), request.get("outputDimensionality"))})
    return 200, {"embeddings": out}


def predict_embeddings(body: dict) -> tuple[int, dict]:
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or not all(isinstance(i.get("content"), str) for i in instances):
        return _invalid("instances: each instance needs a content string")
    dims = (body.get("parameters") or {}).get("outputDimensionality")
    return 200, {"predictions": [{"embeddings": {
        "values": embed_values(i["content"], dims),
        "statistics": {"token_count": count_tokens(i["content"]), "truncated": False}}} for i in instances]}


def models_list(ids: list[str]) -> dict:
    return {"models": [{"name": f"models/{i}", "displayName": i,
                        "supportedGenerationMethods": ["generateContent", "countTokens"]} for i in ids]}
