"""`sluice check` and `sluice plugins` (docs/MANIFEST.md): errors name the file, the JSON path and the fix.

An admin's typo must be caught by `check` before a deploy, with a message that points at the
line to edit, and `check` must report every problem at once rather than one per run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from harness.manifest import write_manifest
from harness.sluice import run_cli, sluice_env


@pytest.fixture
def check(sluice_bin: Path, make_manifest, tmp_path: Path):
    """``check(name, edit=None, env=None) -> (exit code, stdout+stderr, file name)``.

    Writes the default manifest, edited in place by ``edit``, as ``tmp_path/name`` and checks it.
    """
    def run(name: str, edit=None, env: dict | None = None) -> tuple[int, str, str]:
        manifest = make_manifest()
        if edit is not None:
            edit(manifest)
        path = write_manifest(manifest, tmp_path / name)
        done = run_cli(sluice_bin, "check", str(path), env=env)
        return done.returncode, done.stdout + done.stderr, path.name
    return run


def line_with(output: str, needle: str) -> str:
    lines = [line for line in output.splitlines() if needle in line]
    assert lines, f"no line mentions {needle!r} in:\n{output}"
    return lines[0]


def add_misspelled_auth(manifest: dict) -> None:
    """pipeline[1] becomes a second auth entry whose plugin name has a typo."""
    typo = copy.deepcopy(manifest["pipeline"][0])
    typo["plugin"] = "api-key-auht"
    manifest["pipeline"].insert(1, typo)


def test_check_accepts_the_test_manifest(check):
    code, output, _ = check("good.json")
    assert code == 0, output


def test_check_unknown_plugin_suggests_the_closest(check):
    code, output, name = check("typo-plugin.json", add_misspelled_auth)
    assert code != 0, output
    line = line_with(output, "pipeline[1].plugin")
    assert "api-key-auht" in line and "api-key-auth" in line.replace("api-key-auht", ""), line
    assert name in output


def test_check_wrong_type_names_the_path(check):
    code, output, name = check("wrong-type.json", lambda m: m["server"].update(max_body_bytes="ten"))
    assert code != 0, output
    line = line_with(output, "server.max_body_bytes")
    assert "ten" in line, line
    assert name in output


def test_check_unknown_key_is_an_error(check):
    def misspell_listen(m: dict) -> None:
        m["server"]["listne"] = m["server"].pop("listen")
    code, output, name = check("unknown-key.json", misspell_listen)
    assert code != 0, output
    assert "server" in line_with(output, "listne")
    assert name in output


def test_check_pipeline_must_end_with_a_terminal_plugin(check):
    code, output, name = check("no-router.json", lambda m: m["pipeline"].pop())
    assert code != 0, output
    assert "pipeline" in output
    assert name in output


def test_check_missing_secret_is_named(check):
    def use_missing_env(m: dict) -> None:
        m["pipeline"][0]["config"]["keys"][0]["key"] = {"env": "MISSING_VAR_XYZ"}
    code, output, name = check("missing-secret.json", use_missing_env, env=sluice_env(drop=("MISSING_VAR_XYZ",)))
    assert code != 0, output
    assert "MISSING_VAR_XYZ" in output
    assert name in output


def test_check_reports_every_error_at_once(check):
    def two_mistakes(m: dict) -> None:
        add_misspelled_auth(m)
        m["server"]["max_body_bytes"] = "ten"
    code, output, _ = check("two-errors.json", two_mistakes)
    assert code != 0, output
    assert "pipeline[1].plugin" in output and "server.max_body_bytes" in output, output


def test_check_invalid_json_names_the_file(sluice_bin, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"server": {"listen": [}\n')
    done = run_cli(sluice_bin, "check", str(path))
    assert done.returncode != 0
    assert "broken.json" in done.stdout + done.stderr


def test_check_missing_file_names_it(sluice_bin, tmp_path):
    done = run_cli(sluice_bin, "check", str(tmp_path / "nowhere.json"))
    assert done.returncode != 0
    assert "nowhere.json" in done.stdout + done.stderr


def test_plugins_lists_the_builtins_and_their_config(sluice_bin):
    done = run_cli(sluice_bin, "plugins")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for plugin in ("router", "api-key-auth", "openai-compatible", "openai"):
        assert re.search(rf"(?<![\w-]){re.escape(plugin)}(?![\w-])", out), f"{plugin!r} not listed:\n{out}"
    for field in ("keys", "retries", "timeout_s", "base_url", "api_key"):  # fields the test manifest uses
        assert field in out, f"config field {field!r} not shown:\n{out}"
