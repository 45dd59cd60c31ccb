"""A fake provider for Sluice's integration tests: OpenAI, Azure OpenAI and Anthropic.

It speaks the OpenAI chat/embeddings wire format (also under Azure's deployment paths), the
OpenAI Responses API (``/v1/responses``, and Azure's ``/openai/v1/responses``; see
responses_shapes.py) and Anthropic's Messages API closely enough that the gateway cannot tell it
from the real thing,
answers text or tool calls (see replies.py), records every request it receives, and injects
faults on demand. Over TLS it speaks HTTP/1.1 and HTTP/2 (h2wire.py). Stdlib only but for
HTTP/2 (the ``h2`` package), so it also runs outside the test venv:
``python -m fakeprovider.server --port 0``.
"""

from .faults import Fault
from .openai_shapes import embedding_for

__all__ = ["FakeProvider", "Fault", "embedding_for"]


def __getattr__(name: str):
    # Imported lazily so `python -m fakeprovider.server` does not load server.py twice.
    if name == "FakeProvider":
        from .server import FakeProvider
        return FakeProvider
    raise AttributeError(name)
