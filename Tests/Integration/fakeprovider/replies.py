"""What the fake model "says", independent of the wire dialect (OpenAI chat or Anthropic Messages).

The reply echoes the last user turn word by word (``echo: hello there``), or calls a tool:
when the request offers tools and the last user text mentions the weather (or the tool choice
forces a call), the answer is a call of the first (or the chosen) tool with the fixed input
``{"location": "Paris"}``. Stop sequences cut the text where they first occur, and a token limit
(one word = one token) cuts it after that many words, exactly as a real model would stop.
Both dialects render the same ``Reply``, so a test can predict either from the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

TOOL_TRIGGER = "weather"
TOOL_INPUT = {"location": "Paris"}
ARGUMENT_PIECE_CHARS = 6  # streamed tool arguments arrive in pieces of this many characters

# Why the reply ended, in neutral terms; each dialect maps these to its own names.
END, STOP_SEQUENCE, MAX_TOKENS, TOOL = "end", "stop_sequence", "max_tokens", "tool"


@dataclass
class Reply:
    deltas: list[str] = field(default_factory=list)  # the text as streamed, one word per piece
    ending: str = END
    stop_sequence: str | None = None                  # the stop sequence that ended it, if one did
    tool_name: str | None = None                      # set when the reply is a tool call

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def is_tool_call(self) -> bool:
        return self.tool_name is not None

    @property
    def tool_input(self) -> dict:
        return dict(TOOL_INPUT)

    @property
    def tool_arguments(self) -> str:
        """The tool input as OpenAI sends it: a JSON string, ``{"location": "Paris"}``."""
        return json.dumps(TOOL_INPUT)

    def argument_pieces(self) -> list[str]:
        """``tool_arguments`` split into several pieces, as a streamed tool call sends them."""
        args = self.tool_arguments
        return [args[i:i + ARGUMENT_PIECE_CHARS] for i in range(0, len(args), ARGUMENT_PIECE_CHARS)]


def count_tokens(text: str) -> int:
    """Whitespace-split 'tokens': deterministic and trivially recomputable by tests."""
    return len(text.split())


def stop_list(value) -> list[str]:
    """OpenAI's ``stop`` (a string or a list) or Anthropic's ``stop_sequences``, as a list."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str) and s]
    return []


def _cut_deltas(deltas: list[str], length: int) -> list[str]:
    out, used = [], 0
    for piece in deltas:
        if used >= length:
            break
        piece = piece[:length - used]
        used += len(piece)
        if piece:
            out.append(piece)
    return out


def text_reply(words: list[str], stops: list[str] = (), max_tokens: int | None = None) -> Reply:
    """The echo reply: ``words`` one per delta (``"echo:"``, ``" hello"``, ...), cut as a model would."""
    ending = END
    if max_tokens is not None and 0 < max_tokens < len(words):
        words, ending = words[:max_tokens], MAX_TOKENS
    deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
    text = "".join(deltas)
    hits = [(text.find(s), s) for s in stops if s in text]
    if hits:
        at, seq = min(hits)
        return Reply(_cut_deltas(deltas, at), STOP_SEQUENCE, seq)
    return Reply(deltas, ending)


def tool_reply(name: str) -> Reply:
    return Reply([], TOOL, None, name)


def echo_words(text: str, override_words: int | None = None) -> list[str]:
    """``echo: TEXT`` as words; ``override_words`` stretches (by cycling) or trims it to exactly N."""
    words = f"echo: {text}".split()
    if override_words is not None:
        words = [words[i % len(words)] for i in range(max(0, override_words))]
    return words
