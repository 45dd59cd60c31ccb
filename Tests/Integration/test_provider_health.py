"""Optional providers and provider health: a missing provider key disables only that
provider's models (503), never the gateway, and `/ready?verbose=1` shows each provider's state.
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.net import free_port
from harness.sluice import run_cli

HELLO = [{"role": "user", "content": "hello there"}]


def add_providers(manifest: dict, dead_port: int) -> None:
    manifest["server"]["health_probe_interval_s"] = 0.2
    manifest["providers"]["cloud"] = {
        "plugin": "openai", "optional": True,
        "config": {"api_key": {"env": "SLUICE_TEST_ABSENT_KEY"}},
    }
    manifest["providers"]["dead"] = {
        "plugin": "openai-compatible", "config": {"base_url": f"http://127.0.0.1:{dead_port}/v1"},
    }
    manifest["models"]["cloud-model"] = {"targets": [{"provider": "cloud", "model": "gpt-4o-mini"}]}
    manifest["models"]["dead-model"] = {"targets": [{"provider": "dead", "model": "x"}]}


@pytest.fixture
def gw(start_sluice):
    return start_sluice(lambda m: add_providers(m, free_port()))


def test_missing_optional_key_disables_only_its_models(gw):
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10) as client:
        assert client.chat.completions.create(model="local", messages=HELLO).choices[0].message.content
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="cloud-model", messages=HELLO)
    assert err.value.status_code == 503
    error = err.value.response.json()["error"]
    assert error["code"] == "provider_not_configured"
    assert "SLUICE_TEST_ABSENT_KEY" in error["message"]


def test_ready_verbose_reports_each_provider(gw):
    deadline = time.monotonic() + 5
    while True:
        report = httpx.get(f"{gw.url}/ready?verbose=1", timeout=5)
        providers = report.json()["providers"]
        if providers["fake"]["status"] != "unknown" and providers["dead"]["status"] != "unknown":
            break
        assert time.monotonic() < deadline, providers
        time.sleep(0.1)
    assert report.status_code == 200 and report.json()["status"] == "ready"
    assert providers["fake"]["status"] == "up" and "checked_at" in providers["fake"]
    assert providers["dead"]["status"] == "down"
    assert providers["cloud"]["status"] == "not configured"
    assert "SLUICE_TEST_ABSENT_KEY" in providers["cloud"]["detail"]
    assert "providers" not in httpx.get(f"{gw.url}/ready", timeout=5).json()


def test_dead_provider_fails_fast_with_503(gw):
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10) as client:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="dead-model", messages=HELLO)
    assert err.value.status_code == 503
    assert time.monotonic() - started < 2


def test_check_warns_about_left_out_providers(gw):
    result = run_cli(gw.binary, "check", str(gw.config_path), env=gw.env)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stdout and "providers.cloud.config.api_key" in result.stdout
