"""Reading server-sent events the way a strict client would, for tests that check the wire.

OpenAI streams are ``data: {json}`` events ending with ``data: [DONE]``; Anthropic streams are
``event: NAME`` + ``data: {json}`` events whose data ``type`` equals the event name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class SSEEvent:
    event: str | None   # the ``event:`` field, None when absent
    data: str           # the ``data:`` lines joined with newlines

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(text: str) -> list[SSEEvent]:
    """Every event of an SSE body (comments and ids ignored; a trailing unterminated event kept)."""
    events, name, data = [], None, []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data or name is not None:
                events.append(SSEEvent(name, "\n".join(data)))
            name, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data or name is not None:
        events.append(SSEEvent(name, "\n".join(data)))
    return events


def openai_chunks(text: str) -> tuple[list[dict], bool]:
    """(the JSON chunks of an OpenAI stream, whether ``data: [DONE]`` ended it)."""
    chunks, done = [], False
    for event in parse_sse(text):
        if event.data == "[DONE]":
            done = True
        elif event.data:
            chunks.append(event.json())
    return chunks, done


def anthropic_events(text: str) -> list[dict]:
    """The data objects of an Anthropic stream, checking each event's name matches its type."""
    out = []
    for event in parse_sse(text):
        data = event.json()
        assert event.event == data.get("type"), f"event {event.event!r} carries data of type {data.get('type')!r}"
        out.append(data)
    return out
