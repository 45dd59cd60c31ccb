"""Helpers shared by the policy-plugin tests (validation, rate-limit, jwt-auth).

Those tests start gateways with their own pipelines; one gateway per module (``module_gateway``)
keeps a table of fifty requests fast, and ``with_pipeline`` builds such a manifest.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from .manifest import default_manifest
from .net import free_port
from .sluice import Sluice, SluiceError

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGES = "/v1/messages"
UPSTREAM_PATHS = (CHAT, EMBEDDINGS, MESSAGES)


def api_key_auth(manifest: dict) -> dict:
    """The default manifest's api-key-auth entry (keys "tester": all models, "limited": smol)."""
    return copy.deepcopy(next(p for p in manifest["pipeline"] if p["plugin"] == "api-key-auth"))


def router(manifest: dict) -> dict:
    return copy.deepcopy(next(p for p in manifest["pipeline"] if p["plugin"] == "router"))


def with_pipeline(fake_base_url: str, *middle: dict, auth: dict | None = None, port: int | None = None) -> dict:
    """The default manifest with pipeline ``[auth, *middle, router]`` (auth: api-key-auth by default)."""
    manifest = default_manifest(port or free_port(), fake_base_url)
    manifest["pipeline"] = [auth or api_key_auth(manifest), *middle, router(manifest)]
    return manifest


def start_gateway(sluice_bin: Path, manifest: dict, workdir: Path, name: str,
                  env: dict[str, str] | None = None) -> Sluice:
    """Starts a gateway or fails the test with its log (a manifest the binary refuses included)."""
    try:
        return Sluice(sluice_bin, copy.deepcopy(manifest), workdir, env=env, name=name).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)


def upstream_calls(fake) -> list[dict]:
    """The model requests the fake provider received (health probes of GET /v1/models left out)."""
    return [r for r in fake.requests() if r["path"] in UPSTREAM_PATHS]


def openai_error(body: dict) -> dict:
    """The inner object of an OpenAI-shaped error body, checked for its four fields."""
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def anthropic_error(body: dict) -> dict:
    """The inner object of an Anthropic-shaped error body (``{"type": "error", "error": {...}}``)."""
    assert isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert isinstance(error.get("type"), str) and isinstance(error.get("message"), str) and error["message"], error
    return error
