"""Amazon Bedrock Runtime, as the fake provider answers it: Converse, ConverseStream (in AWS's
binary ``application/vnd.amazon.eventstream`` framing) and InvokeModel for Titan and Cohere
embeddings, behind AWS Signature Version 4.

Every request's signature is checked with botocore's own signer: the request is rebuilt from
what arrived (method, path, the headers it says it signed, body), signed again by
``botocore.auth.SigV4Auth`` at the same ``x-amz-date``, and the two ``Authorization`` values
compared. The verdict is recorded on the request (``sigv4``: ``"valid"`` or why not) and a bad
signature is refused as Bedrock refuses it (403). botocore is imported only when a Bedrock request
arrives, so the rest of the fake stays stdlib-only.

Credentials the fake knows are in ``CREDENTIALS`` (access key id -> secret, session token or None).
Models whose id contains one of these words misbehave on purpose:

    ``bad-crc``           a stream whose third message has a wrong message checksum
    ``bad-prelude``       a stream whose second message has a wrong prelude checksum
    ``stream-throttled``  a stream that ends with a throttlingException message
    ``stream-error``      a stream that ends with a modelStreamErrorException message

and ``sluice-health-probe`` answers 400 ValidationException (as an unknown model id does).
HTTP errors are best queued as faults: ``FakeProvider.enqueue(**error_fault(...))``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
import struct
import uuid
from typing import Any, Iterable
from urllib.parse import unquote

from . import replies
from .openai_shapes import embedding_for
from .replies import count_tokens

PATH = re.compile(r"^/model/([^/]+)/(converse|converse-stream|invoke)$")
REGION = "us-east-1"
SERVICE = "bedrock"
ACCESS_KEY_ID = "AKIAFAKEBEDROCK0001"
SECRET_ACCESS_KEY = "fake/Bedrock+Secret0001"
SESSION_ACCESS_KEY_ID = "ASIAFAKEBEDROCK0002"
SESSION_SECRET_ACCESS_KEY = "fake/Bedrock+Secret0002"
SESSION_TOKEN = "FwoGZXIvYXdzEFAKE//session+token=="
CREDENTIALS = {
    ACCESS_KEY_ID: (SECRET_ACCESS_KEY, None),
    SESSION_ACCESS_KEY_ID: (SESSION_SECRET_ACCESS_KEY, SESSION_TOKEN),
}
ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
TITAN_DIMENSIONS = (256, 512, 1024)
COHERE_DIMENSIONS = 1024
COHERE_MAX_TEXTS = 96
STOP_REASONS = {replies.END: "end_turn", replies.STOP_SEQUENCE: "stop_sequence",
                replies.MAX_TOKENS: "max_tokens", replies.TOOL: "tool_use"}
BLOCK_TYPES = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "reasoningContent", "cachePoint"}
INFERENCE_KEYS = {"maxTokens", "temperature", "topP", "stopSequences"}
REQUEST_KEYS = {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
                "additionalModelResponseFieldPaths", "promptVariables", "requestMetadata", "performanceConfig"}


def matches(path: str) -> bool:
    return PATH.match(path) is not None


def error_fault(status: int, type_: str, message: str, path: str | None = None, retry_after: str | None = None,
                count: int = 1) -> dict:
    """A fault (for ``FakeProvider.enqueue``) that answers as Bedrock fails: ``{"message"}`` and
    the exception's name in ``x-amzn-ErrorType``."""
    headers = {"x-amzn-ErrorType": type_ + ERROR_NAMESPACE, "x-amzn-RequestId": str(uuid.uuid4())}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return {"status": status, "body": {"message": message}, "headers": headers, "path": path, "count": count}


# --- the event stream framing ---------------------------------------------------------------

def encode_message(headers: dict[str, str], payload: bytes, *, bad_prelude: bool = False, bad_crc: bool = False) -> bytes:
    """One event stream message with string headers; the checksums spoilt on request."""
    header_bytes = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        header_bytes += struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    total = 16 + len(header_bytes) + len(payload)
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude_crc = binascii.crc32(prelude) ^ (1 if bad_prelude else 0)
    message = prelude + struct.pack(">I", prelude_crc) + header_bytes + payload
    return message + struct.pack(">I", binascii.crc32(message) ^ (1 if bad_crc else 0))


def event_message(event_type: str, body: dict, **spoil: bool) -> bytes:
    # Bedrock pads every event with a "p" member of varying length, so sizes leak nothing.
    body = {**body, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[:len(event_type) + 3]}
    return encode_message({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                          json.dumps(body, separators=(",", ":")).encode(), **spoil)


def exception_message(exception_type: str, message: str) -> bytes:
    return encode_message({":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
                          json.dumps({"message": message}).encode())


def decode_messages(data: bytes) -> list[dict]:
    """The messages of an event stream, through botocore's decoder (which checks both checksums)."""
    from botocore.eventstream import EventStreamBuffer
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [{"headers": m.headers, "payload": json.loads(m.payload)} for m in buffer]


# --- signatures -----------------------------------------------------------------------------

def _authorization_parts(value: str) -> dict[str, str] | None:
    if not value.startswith("AWS4-HMAC-SHA256 "):
        return None
    parts = {}
    for item in value[len("AWS4-HMAC-SHA256 "):].split(","):
        key, _, val = item.strip().partition("=")
        parts[key] = val
    return parts if {"Credential", "SignedHeaders", "Signature"} <= parts.keys() else None


def verify_signature(method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[bool, str]:
    """(valid, why) for a request as received: ``headers`` lower-cased, ``url`` with the raw path."""
    import botocore.auth
    from unittest import mock
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = _authorization_parts(headers.get("authorization", ""))
    if parts is None:
        return False, "no AWS4-HMAC-SHA256 authorization"
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[2:] != [REGION, SERVICE, "aws4_request"]:
        return False, f"credential scope {parts['Credential'].split('/', 1)[-1]!r} is not {REGION}/{SERVICE}"
    key_id = scope[0]
    if key_id not in CREDENTIALS:
        return False, "unknown access key"
    secret, token = CREDENTIALS[key_id]
    if token is not None and headers.get("x-amz-security-token") != token:
        return False, "missing or wrong session token"
    amz_date = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return False, "no x-amz-date"
    if scope[1] != amz_date[:8]:
        return False, "credential date differs from x-amz-date"
    if abs((datetime.datetime.utcnow() - when).total_seconds()) > 300:
        return False, "signature expired"
    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is not None and payload_hash != hashlib.sha256(body).hexdigest():
        return False, "x-amz-content-sha256 does not match the body"
    signed = parts["SignedHeaders"].split(";")
    if "host" not in signed:
        return False, "host is not signed"
    rebuilt = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers[name] for name in signed if name in headers})
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        SigV4Auth(Credentials(key_id, secret, token), SERVICE, REGION).add_auth(rebuilt)
    if rebuilt.headers["Authorization"] != headers["authorization"]:
        return False, "signature mismatch"
    return True, "valid"


# --- Converse -------------------------------------------------------------------------------

def _check_converse(body: dict) -> str | None:
    """What real Bedrock would refuse with a ValidationException, as far as the gateway could get it wrong."""
    unknown = sorted(set(body) - REQUEST_KEYS)
    if unknown:
        return f"Malformed input request: extraneous key [{unknown[0]}] is not permitted, please reformat your input and try again."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
    uses_tools = False
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"The value at messages.{i}.role is not valid."
        if i == 0 and role != "user":
            return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
        if i > 0 and messages[i - 1].get("role") == role:
            return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
        for j, block in enumerate(content):
            if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in BLOCK_TYPES:
                return f"The value at messages.{i}.content.{j} is not a valid ContentBlock."
            kind, value = next(iter(block.items()))
            if kind == "text" and (not isinstance(value, str) or not value.strip()):
                return "The text field in the ContentBlock object is blank. Add text to the text field, and try again."
            if kind == "image":
                if value.get("format") not in ("png", "jpeg", "gif", "webp"):
                    return f"The value at messages.{i}.content.{j}.image.format is not valid."
                try:
                    base64.b64decode(value["source"]["bytes"], validate=True)
                except (KeyError, TypeError, ValueError, binascii.Error):
                    return f"The value at messages.{i}.content.{j}.image.source.bytes is not valid base64."
            if kind in ("toolUse", "toolResult"):
                uses_tools = True
                if kind == "toolUse" and role != "assistant" or kind == "toolResult" and role != "user":
                    return f"The {kind} block at messages.{i}.content.{j} is in the wrong role."
                if not value.get("toolUseId"):
                    return f"The value at messages.{i}.content.{j}.{kind}.toolUseId is missing."
                if kind == "toolUse" and not isinstance(value.get("input"), dict):
                    return f"The value at messages.{i}.content.{j}.toolUse.input is not an object."
    system = body.get("system", [])
    if not isinstance(system, list) or any(not isinstance(s, dict) or not isinstance(s.get("text"), str) for s in system):
        return "The value at system is not valid."
    inference = body.get("inferenceConfig", {})
    if not isinstance(inference, dict) or set(inference) - INFERENCE_KEYS:
        return "The value at inferenceConfig is not valid."
    tool_config = body.get("toolConfig")
    if uses_tools and tool_config is None:
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    if tool_config is not None:
        tools = tool_config.get("tools")
        if not isinstance(tools, list) or not tools:
            return "The value at toolConfig.tools is not valid."
        for k, tool in enumerate(tools):
            spec = tool.get("toolSpec") if isinstance(tool, dict) else None
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
                return f"The value at toolConfig.tools.{k}.toolSpec is not valid."
        choice = tool_config.get("toolChoice")
        if choice is not None and (not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool")):
            return "The value at toolConfig.toolChoice is not valid."
    return None


def _block_text(block: dict) -> str:
    if "text" in block:
        return block["text"]
    if "toolResult" in block:
        return " ".join(c.get("text", "") for c in block["toolResult"].get("content", []) if isinstance(c, dict))
    return ""


def _last_turn(messages: list) -> tuple[str, bool]:
    """(the text the reply echoes, whether it is tool output): the last user turn's tool results
    if it has any, else its text."""
    last = messages[-1] if messages else {}
    if last.get("role") != "user":
        return "", False
    results = [_block_text(b) for b in last["content"] if "toolResult" in b]
    if results:
        return " ".join(results), True
    return " ".join(_block_text(b) for b in last["content"] if "text" in b), False


def _tool_to_call(body: dict) -> str | None:
    config = body.get("toolConfig") or {}
    names = [t["toolSpec"]["name"] for t in config.get("tools", [])]
    if not names:
        return None
    choice = config.get("toolChoice") or {"auto": {}}
    if "tool" in choice:
        return choice["tool"].get("name")
    text, after_tools = _last_turn(body["messages"])
    if "any" in choice or (not after_tools and replies.TOOL_TRIGGER in text.lower()):
        return names[0]
    return None


def plan_reply(body: dict, override_words: int | None = None) -> replies.Reply:
    name = _tool_to_call(body)
    if name is not None:
        return replies.tool_reply(name)
    inference = body.get("inferenceConfig") or {}
    return replies.text_reply(replies.echo_words(_last_turn(body["messages"])[0], override_words),
                              replies.stop_list(inference.get("stopSequences")), inference.get("maxTokens"))


def input_tokens(body: dict) -> int:
    words = sum(count_tokens(s.get("text", "")) for s in body.get("system", []))
    for message in body["messages"]:
        words += sum(count_tokens(_block_text(b)) for b in message["content"])
    return words


def usage(input_count: int, output_count: int) -> dict:
    return {"inputTokens": input_count, "outputTokens": output_count, "totalTokens": input_count + output_count}


def tool_use_id() -> str:
    return "tooluse_" + uuid.uuid4().hex[:22]


def converse_answer(reply: replies.Reply, usage_: dict) -> dict:
    if reply.is_tool_call:
        content = [{"toolUse": {"toolUseId": tool_use_id(), "name": reply.tool_name, "input": reply.tool_input}}]
    else:
        content = [{"text": reply.text}]
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": STOP_REASONS[reply.ending],
            "usage": usage_, "metrics": {"latencyMs": 7}}


def stream_messages(reply: replies.Reply, usage_: dict, misbehave: str = "") -> Iterable[bytes]:
    """The ConverseStream messages for a reply, one per item (the stream's chunks)."""
    messages: list[tuple[str, dict]] = [("messageStart", {"role": "assistant"})]
    if reply.is_tool_call:
        messages.append(("contentBlockStart", {"contentBlockIndex": 0,
                                               "start": {"toolUse": {"toolUseId": tool_use_id(), "name": reply.tool_name}}}))
        messages += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}})
                     for piece in reply.argument_pieces()]
    else:
        messages += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}) for piece in reply.deltas]
    messages.append(("contentBlockStop", {"contentBlockIndex": 0}))
    messages.append(("messageStop", {"stopReason": STOP_REASONS[reply.ending]}))
    messages.append(("metadata", {"usage": usage_, "metrics": {"latencyMs": 7}}))
    for index, (event_type, body) in enumerate(messages):
        if index == 2 and "stream-throttled" in misbehave:
            yield exception_message("throttlingException", "Too many tokens, please wait before trying again.")
            return
        if index == 2 and "stream-error" in misbehave:
            yield exception_message("modelStreamErrorException", "The model failed to generate a response.")
            return
        yield event_message(event_type, body, bad_prelude=index == 1 and "bad-prelude" in misbehave,
                            bad_crc=index == 2 and "bad-crc" in misbehave)


# --- embeddings -----------------------------------------------------------------------------

def invoke(model: str, body: Any) -> tuple[int, dict, dict]:
    """(status, body, extra headers) for InvokeModel on an embedding model."""
    if "titan-embed" in model:
        if not isinstance(body, dict) or not isinstance(body.get("inputText"), str) or set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}:
            return _validation("Malformed input request: #: required key [inputText] not found, please reformat your input and try again.")
        dims = body.get("dimensions", 1024)
        if dims not in TITAN_DIMENSIONS:
            return _validation(f"Malformed input request: #/dimensions: {dims} is not a valid enum value, please reformat your input and try again.")
        tokens = max(1, count_tokens(body["inputText"]))
        return 200, {"embedding": embedding_for(body["inputText"], dims), "inputTextTokenCount": tokens}, _token_headers(tokens)
    if "cohere.embed" in model:
        texts = body.get("texts") if isinstance(body, dict) else None
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _validation("Malformed input request: #: required key [texts] not found, please reformat your input and try again.")
        if len(texts) > COHERE_MAX_TEXTS:
            return _validation(f"Malformed input request: #/texts: expected maximum item count: {COHERE_MAX_TEXTS}, found: {len(texts)}, please reformat your input and try again.")
        if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering"):
            return _validation("Malformed input request: #: required key [input_type] not found, please reformat your input and try again.")
        tokens = sum(max(1, count_tokens(t)) for t in texts)
        return 200, {"embeddings": [embedding_for(t, COHERE_DIMENSIONS) for t in texts], "id": str(uuid.uuid4()),
                     "response_type": "embeddings_floats", "texts": texts}, _token_headers(tokens)
    return _validation("The provided model doesn't support this operation.")


def _token_headers(tokens: int) -> dict:
    return {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)}


def _validation(message: str) -> tuple[int, dict, dict]:
    return 400, {"message": message}, {"x-amzn-ErrorType": "ValidationException" + ERROR_NAMESPACE}


# --- the HTTP side --------------------------------------------------------------------------

def handle(handler, method: str, path: str, raw: bytes, body: Any, fault, conn) -> None:
    """Answers one Bedrock Runtime request on the fake's HTTP handler."""
    match = PATH.match(path)
    model, action = unquote(match.group(1)), match.group(2)
    headers = handler._record["headers"] if handler._record else {}
    handler._note(bedrock_model=model, bedrock_action=action)

    def send(status: int, payload: dict, extra: dict | None = None) -> None:
        handler._send_whole(status, payload, {"x-amzn-RequestId": str(uuid.uuid4()), **(extra or {})})

    host = headers.get("host", "")
    valid, why = verify_signature(method, f"http://{host}{path}", headers, raw)
    handler._note(sigv4=why)
    if not valid:
        if why in ("unknown access key", "missing or wrong session token"):
            send(403, {"message": "The security token included in the request is invalid."},
                 {"x-amzn-ErrorType": "UnrecognizedClientException" + ERROR_NAMESPACE})
        else:
            send(403, {"message": f"The request signature we calculated does not match the signature you provided ({why})."},
                 {"x-amzn-ErrorType": "InvalidSignatureException" + ERROR_NAMESPACE})
        return
    if method != "POST":
        send(404, {"message": "Not Found"}, {"x-amzn-ErrorType": "UnknownOperationException" + ERROR_NAMESPACE})
        return
    if not isinstance(body, dict):
        send(*_validation("Malformed input request, please reformat your input and try again."))
        return
    if model == "sluice-health-probe":
        send(*(_validation("The provided model identifier is invalid.")))
        return
    if action == "invoke":
        send(*invoke(model, body))
        return
    problem = _check_converse(body)
    if problem is not None:
        send(*(_validation(problem)))
        return
    reply = plan_reply(body, fault.stream_words)
    usage_ = usage(input_tokens(body), 0 if reply.is_tool_call else len(reply.deltas))
    handler._note(usage=usage_)
    if action == "converse":
        send(200, converse_answer(reply, usage_))
        return
    _stream(handler, list(stream_messages(reply, usage_, model)), fault, conn)


def _stream(handler, messages: list[bytes], fault, conn) -> None:
    """Writes the messages as HTTP chunks; every other message is split in two chunks, so a reader
    must put messages together across chunk boundaries."""
    handler._note(stream=True, total_chunks=len(messages))
    handler._start(200, "application/vnd.amazon.eventstream", None, {"x-amzn-RequestId": str(uuid.uuid4())})
    handler._note(status=200)
    for i, message in enumerate(messages):
        if i and fault.chunk_delay_ms:
            conn.wait(fault.chunk_delay_ms / 1000)
        last = i == len(messages) - 1
        if last:
            handler._note(completed=True, chunks_sent=i + 1)
        if i % 2 == 1:
            middle = len(message) // 2
            conn.send_chunk(message[:middle])
            conn.send_chunk(message[middle:], last=last)
        else:
            conn.send_chunk(message, last=last)
        if not last:
            handler._note(chunks_sent=i + 1)
