"""The Responses translators' recorded outputs (Tests/KernelTests/Golden) against the openai SDK's
own models: what a strict client (``_strict_response_validation=True``) would accept.

The Swift golden tests check that the translators still produce what was recorded; this checks
that what was recorded is what the API's clients expect. No gateway is started.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming, CompletionCreateParamsStreaming
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming, ResponseCreateParamsStreaming

GOLDEN = Path(__file__).resolve().parents[1] / "KernelTests" / "Golden"
STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def cases(*translations: str) -> list[Path]:
    return [path for path in sorted(GOLDEN.glob("*.json")) if json.loads(path.read_text())["translation"] in translations]


def is_refusal(expected) -> bool:
    """A recorded 400: the translator refused the request, there is nothing to validate."""
    return isinstance(expected, dict) and set(expected) <= {"error", "param"}


@pytest.mark.parametrize("path", cases("completion_to_response"), ids=lambda p: p.stem)
def test_whole_response_is_a_response(path: Path) -> None:
    Response.model_validate(json.loads(path.read_text())["expected"])


@pytest.mark.parametrize("path", cases("response_to_completion"), ids=lambda p: p.stem)
def test_whole_completion_is_a_chat_completion(path: Path) -> None:
    expected = json.loads(path.read_text())["expected"]
    if not is_refusal(expected):
        ChatCompletion.model_validate(expected)


@pytest.mark.parametrize("path", cases("responses_to_chat_request", "chat_to_responses_request"), ids=lambda p: p.stem)
def test_translated_request_is_a_valid_request(path: Path) -> None:
    golden = json.loads(path.read_text())
    expected = golden["expected"]
    if is_refusal(expected):
        assert expected["param"], "a refusal names the offending field"
        return
    if golden["translation"] == "responses_to_chat_request":
        params = CompletionCreateParamsStreaming if expected.get("stream") else CompletionCreateParamsNonStreaming
    else:
        params = ResponseCreateParamsStreaming if expected.get("stream") else ResponseCreateParamsNonStreaming
    pydantic.TypeAdapter(params).validate_python(expected)


@pytest.mark.parametrize("path", cases("chat_stream_to_responses"), ids=lambda p: p.stem)
def test_stream_events_are_response_stream_events(path: Path) -> None:
    """Every event is one of the SDK's, numbered in order and named by its type; a client adding
    up the deltas holds what the closing events say."""
    expected = json.loads(path.read_text())["expected"]
    events = [item for item in expected if "error" not in item]
    items: dict[int, dict] = {}
    done: dict[int, dict] = {}
    for number, item in enumerate(events):
        data = item["data"]
        assert item["event"] == data["type"]
        assert data["sequence_number"] == number
        STREAM_EVENT.validate_python(data)
        kind = data["type"]
        if kind == "response.output_item.added":
            items[data["output_index"]] = {**data["item"], "content": [], "arguments": "", "summary": []}
        elif kind == "response.content_part.added":
            items[data["output_index"]]["content"].append(dict(data["part"]))
        elif kind == "response.output_text.delta":
            items[data["output_index"]]["content"][data["content_index"]]["text"] += data["delta"]
        elif kind == "response.refusal.delta":
            items[data["output_index"]]["content"][data["content_index"]]["refusal"] += data["delta"]
        elif kind == "response.function_call_arguments.delta":
            items[data["output_index"]]["arguments"] += data["delta"]
        elif kind == "response.reasoning_summary_part.added":
            items[data["output_index"]]["summary"].append(dict(data["part"]))
        elif kind == "response.reasoning_summary_text.delta":
            items[data["output_index"]]["summary"][data["summary_index"]]["text"] += data["delta"]
        elif kind == "response.output_item.done":
            done[data["output_index"]] = data["item"]
        elif kind in ("response.completed", "response.incomplete"):
            output = data["response"]["output"]
            assert [done[index] for index in sorted(done)] == output
            for index, final in enumerate(output):
                built = items[index]
                if final["type"] == "message":
                    assert built["content"] == final["content"]
                elif final["type"] == "function_call":
                    assert built["arguments"] == final["arguments"]
                elif final["type"] == "reasoning":
                    assert built["summary"] == final["summary"]
            assert number == len(events) - 1, "the last event closes the stream"
    if len(events) == len(expected):
        assert events[-1]["data"]["type"] in ("response.completed", "response.incomplete")


@pytest.mark.parametrize("path", cases("responses_stream_to_chat"), ids=lambda p: p.stem)
def test_stream_chunks_are_chat_completion_chunks(path: Path) -> None:
    for item in json.loads(path.read_text())["expected"]:
        if "error" not in item and item["data"] != "[DONE]":
            ChatCompletionChunk.model_validate(item["data"])
