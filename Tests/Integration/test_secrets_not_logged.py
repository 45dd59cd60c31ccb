"""Neither the clients' keys nor the provider's key may ever reach the gateway's logs.

Runs last (marker ``run_last``) so the session gateway's log holds everything the other tests
did, including failures, auth errors and aborted streams. A second gateway is stopped before
its log is read, so nothing can hide in an unflushed buffer.
"""

from __future__ import annotations

import time

import openai
import pytest

from harness.constants import FAKE_PROVIDER_KEY, LIMITED_KEY, SLUICE_TEST_KEY

SECRETS = {"client key": SLUICE_TEST_KEY, "limited key": LIMITED_KEY, "provider key": FAKE_PROVIDER_KEY,
           "wrong key": "wrong-secret-qwe456"}
HELLO = [{"role": "user", "content": "hello there"}]

pytestmark = pytest.mark.run_last


def exercise(base_url: str) -> None:
    """Makes every key pass through the gateway: success, stream, refusal, wrong key."""
    def sdk(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)

    with sdk(SLUICE_TEST_KEY) as c:
        c.chat.completions.create(model="local", messages=HELLO)
        list(c.chat.completions.create(model="local", messages=HELLO, stream=True))
    with sdk(LIMITED_KEY) as c, pytest.raises(openai.PermissionDeniedError):
        c.chat.completions.create(model="local", messages=HELLO)
    with sdk(SECRETS["wrong key"]) as c, pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="local", messages=HELLO)


def assert_no_secrets(text: str, where: str) -> None:
    leaked = [name for name, secret in SECRETS.items() if secret in text]
    assert not leaked, f"{', '.join(leaked)} found in {where}"


def test_session_gateway_log_has_no_secrets(gateway):
    exercise(gateway.base_url)
    time.sleep(0.5)  # let the last lines reach the file
    assert_no_secrets(gateway.stdout_text(), "the session gateway's stdout")
    assert_no_secrets(gateway.stderr_text(), "the session gateway's stderr")


def test_session_gateway_stdout_is_json_lines(gateway):
    try:
        gateway.log_lines()
    except ValueError as exc:
        pytest.fail(f"stdout is not JSON lines (docs/ARCHITECTURE.md, 'The process contract'): {exc}")


def test_stopped_gateway_log_has_no_secrets(start_sluice):
    gw = start_sluice(name="secrets")
    exercise(gw.base_url)
    gw.stop()
    stdout = gw.stdout_text()
    assert stdout.strip(), "a gateway that served, refused and stopped logged nothing on stdout"
    assert_no_secrets(stdout, "a stopped gateway's stdout")
    assert_no_secrets(gw.stderr_text(), "a stopped gateway's stderr")
