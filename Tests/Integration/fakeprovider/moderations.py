"""POST /v1/moderations: OpenAI's moderation API, scored by keywords so tests can aim.

Each input gets every category of ``omni-moderation-latest`` with a low score, raised for the
trigger words below; a category at 0.5 or above is flagged. The answer has OpenAI's shape
(``id``, ``model``, ``results[]`` with ``flagged``, ``categories``, ``category_scores`` and
``category_applied_input_types``).
"""

from __future__ import annotations

import uuid
from typing import Any

PATH = "/v1/moderations"

CATEGORIES = [
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic",
]

# trigger word -> (category, score)
TRIGGERS = {
    "kill": ("violence", 0.93),
    "fight": ("violence", 0.62),
    "idiot": ("harassment", 0.71),
    "hateful": ("hate", 0.88),
    "mildly": ("harassment", 0.3),
}


def result_for(text: str) -> dict:
    scores = {category: 0.0001 for category in CATEGORIES}
    lowered = text.lower()
    for word, (category, score) in TRIGGERS.items():
        if word in lowered:
            scores[category] = max(scores[category], score)
    categories = {category: score >= 0.5 for category, score in scores.items()}
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": {category: ["text"] for category in CATEGORIES},
    }


def respond(handler: Any, body: dict) -> None:
    """Answers one moderation request on ``handler`` (the fake's request handler)."""
    if not handler._require(body, "input", (str, list)):
        return
    inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
    if not inputs or not all(isinstance(item, str) for item in inputs):
        handler._error(400, "'input' must be a string or an array of strings", param="input", code="invalid_type")
        return
    handler._send_whole(200, {
        "id": f"modr-{uuid.uuid4().hex[:24]}",
        "model": body.get("model") or "omni-moderation-latest",
        "results": [result_for(text) for text in inputs],
    })
