"""Google's endpoints on the fake provider: the Gemini API of Google AI Studio, Vertex AI's model
endpoints (Gemini and embedding models under ``publishers/google``, Claude under
``publishers/anthropic``) and the OAuth token endpoint service accounts trade JWTs at.

    POST /{v1beta|v1}/models/{model}:generateContent | :streamGenerateContent?alt=sse | :batchEmbedContents
    GET  /{v1beta|v1}/models                                  (with x-goog-api-key; without, OpenAI's list)
    POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent | :streamGenerateContent?alt=sse | :predict
    POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict | :streamRawPredict
    POST /token                                               (see vertex.py)

AI Studio wants ``x-goog-api-key`` (a key containing ``invalid`` is refused the way Google
refuses a wrong key: 400 ``API_KEY_INVALID``); Vertex AI wants a bearer token the token endpoint
issued or a test allowed. The server hands requests here through ``route``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from . import anthropic_shapes as anthropic
from . import gemini_shapes as gemini
from . import vertex

AI_STUDIO = re.compile(r"^/(v1beta|v1|v1alpha)/models/([^/:]+):(\w+)$")
AI_STUDIO_MODELS = re.compile(r"^/(v1beta|v1|v1alpha)/models$")
VERTEX = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/(google|anthropic)/models/([^/:]+):(\w+)$")

Handle = Callable[[bytes, Any, Any, Any], None]


def model_in_path(path: str) -> str | None:
    """The model a Google path names (faults can be aimed at it)."""
    match = AI_STUDIO.match(path) or VERTEX.match(path)
    return match.groups()[-2] if match else None


def route(handler, method: str, path: str) -> Handle | None:
    """The handler for a Google endpoint, or None when the path is not one."""
    if method == "POST" and path == vertex.TOKEN_PATH:
        return lambda raw, body, fault, conn: _token(handler, raw)
    # GET /v1/models is OpenAI's too: Google's only when a Google key asks.
    if method == "GET" and AI_STUDIO_MODELS.match(path) and "x-goog-api-key" in _headers(handler):
        return lambda raw, body, fault, conn: _ai_studio_models(handler)
    if method != "POST":
        return None
    if match := AI_STUDIO.match(path):
        _, model, action = match.groups()
        return lambda raw, body, fault, conn: _ai_studio(handler, model, action, body, fault, conn)
    if match := VERTEX.match(path):
        _, _, publisher, model, action = match.groups()
        if publisher == "anthropic":
            handler._anthropic = True  # errors in Anthropic's shape, as Vertex passes Claude's through
            return lambda raw, body, fault, conn: _vertex_claude(handler, model, action, body, fault, conn)
        return lambda raw, body, fault, conn: _vertex_google(handler, model, action, body, fault, conn)
    return None


# --- helpers ----------------------------------------------------------------------------------

def _headers(handler) -> dict:
    return handler._record["headers"] if handler._record else {}


def _query(handler) -> dict:
    return handler._record["query"] if handler._record else {}


def _google_error(handler, status: int, message: str, details: list | None = None) -> None:
    handler._send_whole(status, gemini.error_body(status, message, details))


def _json_body(handler, body: Any) -> bool:
    if not isinstance(body, dict):
        _google_error(handler, 400, "Invalid JSON payload received. Expected an object.")
        return False
    return True


def _stream(handler, events: list[dict], fault, conn) -> None:
    """Gemini's SSE: ``data:`` events separated by CRLF pairs, as Google sends them, no end marker."""
    handler._note(stream=True, total_chunks=len(events))
    if fault.drop_after_chunks == 0:
        handler._drop(conn)
        return
    handler._start(200, "text/event-stream", None)
    handler._note(status=200)
    for i, event in enumerate(events):
        if i and fault.chunk_delay_ms:
            conn.wait(fault.chunk_delay_ms / 1000)
        payload = b"data: " + json.dumps(event).encode() + b"\r\n\r\n"
        if i == len(events) - 1:
            handler._note(completed=True, chunks_sent=i + 1)
            conn.send_chunk(payload, last=True)
            return
        conn.send_chunk(payload)
        handler._note(chunks_sent=i + 1)
        if fault.drop_after_chunks is not None and i + 1 >= fault.drop_after_chunks:
            handler._drop(conn)
            return


def _generate(handler, model: str, action: str, body: dict, fault, conn) -> None:
    """generateContent / streamGenerateContent, shared by AI Studio and Vertex AI."""
    problem = gemini.check_request(body)
    if problem is not None:
        handler._send_whole(*problem)
        return
    reply = gemini.plan_reply(body, fault.stream_words)
    usage = gemini.usage_metadata(model, gemini.prompt_tokens(body), gemini.output_tokens(reply))
    handler._note(usage=usage)
    if action == "streamGenerateContent":
        if _query(handler).get("alt") != "sse":
            _google_error(handler, 400, "this fake serves streamGenerateContent as server-sent events only (alt=sse)")
            return
        _stream(handler, gemini.stream_events(model, body, reply), fault, conn)
    else:
        handler._send_whole(200, gemini.generate_content(model, body, reply))


# --- Google AI Studio -------------------------------------------------------------------------

def _api_key_refused(handler) -> bool:
    key = _headers(handler).get("x-goog-api-key")
    if not key:
        _google_error(handler, 403, "Method doesn't allow unregistered callers (callers without established identity). "
                                    "Please use API Key or other form of API consumer identity to call this API.")
        return True
    if "invalid" in key:
        handler._send_whole(400, gemini.invalid_key())
        return True
    return False


def _ai_studio_models(handler) -> None:
    if not _api_key_refused(handler):
        handler._send_whole(200, gemini.models_list(handler.server.provider.models))


def _ai_studio(handler, model: str, action: str, body: Any, fault, conn) -> None:
    if _api_key_refused(handler) or not _json_body(handler, body):
        return
    if action in ("generateContent", "streamGenerateContent"):
        _generate(handler, model, action, body, fault, conn)
    elif action == "batchEmbedContents":
        handler._send_whole(*gemini.batch_embed(model, body))
    else:
        _google_error(handler, 404, f"Method not found: {action}")


# --- Vertex AI --------------------------------------------------------------------------------

def _bearer_refused(handler) -> bool:
    if vertex.token_is_valid(_headers(handler).get("authorization")):
        return False
    message = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
               "other valid authentication credential.")
    if handler._anthropic:
        handler._send_whole(401, anthropic.error_body("authentication_error", message))
    else:
        _google_error(handler, 401, message)
    return True


def _vertex_google(handler, model: str, action: str, body: Any, fault, conn) -> None:
    if _bearer_refused(handler) or not _json_body(handler, body):
        return
    if action in ("generateContent", "streamGenerateContent"):
        _generate(handler, model, action, body, fault, conn)
    elif action == "predict":
        handler._send_whole(*gemini.predict_embeddings(body))
    else:
        _google_error(handler, 404, f"Method not found: {action}")


def _vertex_claude(handler, model: str, action: str, body: Any, fault, conn) -> None:
    """Anthropic's Messages API behind rawPredict: no ``model`` in the body (it is in the URL),
    ``anthropic_version`` instead of a header."""
    if _bearer_refused(handler):
        return
    if not isinstance(body, dict):
        handler._error(400, "The request body must be a JSON object.")
        return
    if action not in ("rawPredict", "streamRawPredict"):
        handler._error(404, f"Method not found: {action}")
        return
    if "model" in body:
        handler._error(400, "model: Extra inputs are not permitted")
        return
    if body.get("anthropic_version") != vertex.CLAUDE_VERSION:
        handler._error(400, f"anthropic_version: must be {vertex.CLAUDE_VERSION!r}")
        return
    if (action == "streamRawPredict") != (body.get("stream") is True):
        handler._error(400, "stream: streamRawPredict needs \"stream\": true, rawPredict none")
        return
    checked = {k: v for k, v in body.items() if k != "anthropic_version"} | {"model": model}
    problem = anthropic.check_request(checked)
    if problem is not None:
        handler._error(400, problem)
        return
    reply = anthropic.plan_reply(checked, fault.stream_words)
    input_count, output_count = anthropic.input_tokens(checked), anthropic.output_tokens(reply)
    usage = anthropic.usage(input_count, output_count)
    handler._note(usage=usage)
    if body.get("stream") is True:
        handler._stream(anthropic.iter_stream_events(model, reply, input_count, output_count),
                        anthropic.stream_event_count(reply), fault, conn, named_events=True,
                        error_event=lambda _: anthropic.error_body("overloaded_error", "Overloaded"))
    else:
        handler._send_whole(200, anthropic.message(model, reply, usage))


# --- OAuth ------------------------------------------------------------------------------------

def _token(handler, raw: bytes) -> None:
    status, answer = vertex.exchange(raw, handler.server.provider.url + vertex.TOKEN_PATH)
    handler._send_whole(status, answer)
