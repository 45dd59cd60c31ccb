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

DEFAULT_EMBEDDING_DIMENSIONS = 8
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


def count_tokens(text: str) -> int:
    """Whitespace-split 'tokens': deterministic and trivially recomputable by tests."""
    return len(text.split())


def reply_words(messages: list, override_words: int | None = None) -> list[str]:
    """The reply, as the words a stream sends one per chunk.

    The reply echoes the last user message. ``override_words`` stretches (by cycling) or trims it
    to exactly N words, so tests can ask for a long, slow stream.
    """
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    words = f"echo: {content_text(last_user.get('content')) if last_user else ''}".split()
    if override_words is not None:
        words = [words[i % len(words)] for i in range(max(0, override_words))]
    return words


def join_words(words: list[str]) -> str:
    """Concatenating the streamed deltas (first word bare, then ' word') gives this text."""
    return " ".join(words)


def stream_deltas(words: list[str]) -> list[str]:
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


# --- chat completions ------------------------------------------------------------------------

def chat_usage(messages: list, completion_text: str) -> dict:
    prompt = sum(count_tokens(content_text(m.get("content"))) for m in messages if isinstance(m, dict))
    completion = count_tokens(completion_text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_completion(model: str, text: str, usage: dict) -> dict:
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
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


def chat_stream_events(model: str, words: list[str], usage: dict, include_usage: bool) -> list[dict]:
    """Every event of a streamed answer, in order (``[DONE]`` is added by the writer)."""
    return list(iter_chat_stream_events(model, words, usage, include_usage))


def chat_stream_event_count(words: list[str], include_usage: bool) -> int:
    """How many events ``iter_chat_stream_events`` yields (without building them)."""
    return len(words) + 2 + (1 if include_usage else 0)


def iter_chat_stream_events(model: str, words: list[str], usage: dict, include_usage: bool):
    """The events of ``chat_stream_events``, built one at a time (for very long streams)."""
    f = ChunkFactory(model, include_usage)
    yield f.delta({"role": "assistant", "content": "", "refusal": None})
    for i, word in enumerate(words):
        yield f.delta({"content": word if i == 0 else " " + word})
    yield f.delta({}, "stop")
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
