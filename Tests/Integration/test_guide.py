"""docs/PLUGINS.md quotes real files ("From `PATH`:" before a code block): each quote must still be
in its file, so the guide cannot drift from the example package it describes. A line ``// …``
marks an elision; the parts around it are checked separately."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
QUOTE = re.compile(r"^From `([^`]+)`:\n\n```\w*\n(.*?)\n```", re.MULTILINE | re.DOTALL)


def test_every_quote_in_the_plugin_guide_is_in_its_file():
    guide = (REPO_ROOT / "docs" / "PLUGINS.md").read_text()
    quotes = QUOTE.findall(guide)
    assert len(quotes) >= 5, "the guide's quotes were not found; did their form change?"
    for path, block in quotes:
        source = (REPO_ROOT / path).read_text()
        for part in re.split(r"^\s*// …\n", block, flags=re.MULTILINE):
            assert part.strip() and part.rstrip() in source, f"docs/PLUGINS.md quotes {path}, which no longer has:\n{part}"
