"""The plugins.json the tests serve, built fresh per use so tests can mutate their copy."""

from __future__ import annotations

import json
from pathlib import Path

from .constants import DRAIN_TIMEOUT_S, LIMITED_KEY, MAX_BODY_BYTES, PROVIDER_NAME, PUBLIC_MODELS


def fake_connection(base_url: str, ca_file: str | None) -> dict:
    """A provider config's way to the fake: its URL and, over TLS, the CA that signed it."""
    return {"base_url": base_url, **({"ca_file": ca_file} if ca_file else {})}


def default_manifest(listen_port: int, fake_base_url: str, ca_file: str | None = None) -> dict:
    """Two public models on the fake provider, key auth, and a router with no retries."""
    return {
        "server": {
            "listen": [f"127.0.0.1:{listen_port}"],
            "max_body_bytes": MAX_BODY_BYTES,
            "drain_timeout_s": DRAIN_TIMEOUT_S,
        },
        "providers": {
            PROVIDER_NAME: {
                "plugin": "openai-compatible",
                "config": {**fake_connection(fake_base_url, ca_file), "api_key": {"env": "FAKE_PROVIDER_KEY"}},
            },
        },
        "models": {
            public: {"targets": [{"provider": PROVIDER_NAME, "model": upstream}]}
            for public, upstream in PUBLIC_MODELS.items()
        },
        "pipeline": [
            {"plugin": "api-key-auth", "config": {"keys": [
                {"name": "tester", "key": {"env": "SLUICE_TEST_KEY"}, "models": ["*"]},
                {"name": "limited", "key": LIMITED_KEY, "models": ["smol"]},
            ]}},
            {"plugin": "router", "config": {"retries": 0, "timeout_s": 30}},
        ],
    }


def write_manifest(manifest: dict, path: Path) -> Path:
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
