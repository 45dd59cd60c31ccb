"""`sluice schema`: a JSON Schema of plugins.json built from the plugins' own config schemas.
The copy in docs/ (which plugins.json names in "$schema") must match the binary's output, and
every manifest in the repository must validate against it with a standard validator."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from harness.sluice import run_cli

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = [REPO / "plugins.json", *sorted((REPO / "deploy").glob("*.json"))]


def generated(sluice_bin: Path) -> dict:
    result = run_cli(sluice_bin, "schema")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_schema_is_valid_and_committed_copy_is_current(sluice_bin):
    schema = generated(sluice_bin)
    jsonschema.Draft202012Validator.check_schema(schema)
    committed = json.loads((REPO / "docs" / "plugins.schema.json").read_text())
    assert committed == schema, "docs/plugins.schema.json is stale: run `sluice schema > docs/plugins.schema.json`"
    names = {branch["properties"]["plugin"]["const"] for branch in schema["properties"]["pipeline"]["items"]["oneOf"]}
    assert {"api-key-auth", "router", "validation", "rate-limit"} <= names


def test_every_manifest_in_the_repo_validates(sluice_bin):
    validator = jsonschema.Draft202012Validator(generated(sluice_bin))
    assert MANIFESTS, "no manifests found"
    for path in MANIFESTS:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(json.loads(path.read_text()))]
        assert not errors, f"{path.name}: {errors}"


def test_schema_catches_what_check_catches(sluice_bin):
    validator = jsonschema.Draft202012Validator(generated(sluice_bin))
    bad = json.loads((REPO / "plugins.json").read_text())
    bad["pipeline"][0]["plugin"] = "api-key-auht"
    bad["server"]["max_body_bytes"] = "ten"
    bad["server"]["listne"] = 1
    assert len(list(validator.iter_errors(bad))) >= 3


def test_manifest_reference_is_current(sluice_bin):
    result = run_cli(sluice_bin, "schema", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    committed = (REPO / "docs" / "MANIFEST.md").read_text()
    assert committed == result.stdout, "docs/MANIFEST.md is stale: run `sluice schema --format markdown > docs/MANIFEST.md`"
    for plugin in ("api-key-auth", "router", "cache", "external", "anthropic", "azure-openai"):
        assert f"### `{plugin}`" in committed
