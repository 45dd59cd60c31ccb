"""Fixtures for the integration tests: the real sluice binary in front of an in-process fake provider.

    python -m pytest Tests/Integration -q          # from the repo root, in .venv

The binary is ``$SLUICE_BIN`` or ``<repo>/.build/debug/sluice``; a missing binary is a failure,
not a skip, so a broken build can never look green. One gateway serves the whole session (the
secrets-in-logs test reads its accumulated log); ``start_sluice`` starts extra ones with a
custom manifest. The fake provider is reset before every test.

Under pytest-xdist (``make test`` runs ``-n 4 --dist loadfile``) each worker process has its own
session gateway and fake provider, and every test file runs whole in one worker.

Two upstream transports: the fake over plain HTTP/1.1 (``http``), and the fake over TLS with
HTTP/2 (``h2``), whose certificate a throwaway CA signed (harness/tls.py) that the gateway trusts
only through the provider's ``ca_file``; https:// upstreams go through curl. A test marked
``both_transports`` runs against each: ``fake``, ``gateway``, ``make_manifest`` and
``start_sluice`` follow its ``upstream_transport``, and on ``h2`` the test fails unless every
request the fake received came over HTTP/2. Others run over ``http`` only.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Callable

import httpx
import openai
import pytest

from fakeprovider import FakeProvider
from harness.constants import FAKE_PROVIDER_KEY, LIMITED_KEY, SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.redis import RedisError, RedisServer
from harness.sluice import Sluice, SluiceError
from harness.tls import TestCA, make_test_ca

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SLUICE_BIN = REPO_ROOT / ".build" / "debug" / "sluice"
HTTP_TIMEOUT_S = 20.0
TRANSPORTS = ("http", "h2")  # the plain fake (HTTP/1.1); the TLS fake (HTTP/2 by ALPN)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "run_last: run after every other test (reads the session's logs)")
    config.addinivalue_line("markers", "both_transports: run against the plain fake and the TLS (HTTP/2) fake")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "upstream_transport" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_transports"):
        metafunc.parametrize("upstream_transport", TRANSPORTS, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)  # stable sort


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attaches the logs of running gateways, and of those the test started, to a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        started_here = getattr(item.funcargs.get("start_sluice"), "started", []) if hasattr(item, "funcargs") else []
        for gw in [*Sluice.live, *(g for g in started_here if g not in Sluice.live)]:
            report.sections.append((f"sluice log: {gw.name} (port {gw.port})", gw.log_report()))


# --- the binary ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sluice_bin() -> Path:
    path = Path(os.environ.get("SLUICE_BIN") or DEFAULT_SLUICE_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"sluice binary not found or not executable at {path}: "
                    f"run `swift build` first, or set SLUICE_BIN to the binary", pytrace=False)
    return path


# --- the fake provider --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fake_provider() -> FakeProvider:
    provider = FakeProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_fake_provider(test_ca: TestCA) -> FakeProvider:
    """The fake over TLS, HTTP/2 offered by ALPN (started only if a test asks for it)."""
    provider = FakeProvider(tls=test_ca.server, http2=True).start()
    yield provider
    provider.stop()


@pytest.fixture
def upstream_transport(request: pytest.FixtureRequest) -> str:
    """``http`` unless the test is marked ``both_transports`` (then each in turn)."""
    return getattr(request, "param", "http")


@pytest.fixture(autouse=True)
def fake(upstream_transport: str, request: pytest.FixtureRequest) -> FakeProvider:
    """This test's fake provider (by its transport) with no recorded requests and no queued faults."""
    provider = request.getfixturevalue("tls_fake_provider" if upstream_transport == "h2" else "fake_provider")
    provider.reset()
    yield provider
    if upstream_transport == "h2":
        other = [(r["method"], r["path"], r["protocol"]) for r in provider.requests(include_probes=True)
                 if r["protocol"] != "HTTP/2" or not r["tls"]]
        assert not other, f"requests to the TLS fake that did not come over HTTP/2: {other}"


# --- gateways -----------------------------------------------------------------------------------

@pytest.fixture
def make_manifest(fake: FakeProvider) -> Callable[..., dict]:
    """``make_manifest(port=None)``: a fresh default manifest on a free (or given) port, its
    provider this test's fake (``ca_file`` set for the TLS one)."""
    def make(port: int | None = None) -> dict:
        return default_manifest(port or free_port(), fake.base_url, fake.ca_file)
    return make


def _start(binary: Path, manifest: dict, workdir: Path, name: str, env: dict | None, **options) -> Sluice:
    try:
        return Sluice(binary, manifest, workdir, env=env, name=name, **options).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def session_gateway(sluice_bin: Path, fake_provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Sluice:
    """The session's sluice, serving the default manifest (see harness/manifest.py)."""
    manifest = default_manifest(free_port(), fake_provider.base_url)
    gw = _start(sluice_bin, manifest, tmp_path_factory.mktemp("gateway"), "session", None)
    yield gw
    gw.stop()
    _check_session_log(gw)


@pytest.fixture(scope="session")
def tls_session_gateway(sluice_bin: Path, tls_fake_provider: FakeProvider,
                        tmp_path_factory: pytest.TempPathFactory) -> Sluice:
    """The same, its provider the TLS fake (started only if a test asks for it)."""
    manifest = default_manifest(free_port(), tls_fake_provider.base_url, tls_fake_provider.ca_file)
    gw = _start(sluice_bin, manifest, tmp_path_factory.mktemp("gateway-tls"), "session-tls", None)
    yield gw
    gw.stop()
    _check_session_log(gw)


@pytest.fixture
def gateway(upstream_transport: str, request: pytest.FixtureRequest) -> Sluice:
    """The session's sluice whose provider is this test's fake."""
    return request.getfixturevalue("tls_session_gateway" if upstream_transport == "h2" else "session_gateway")


def _check_session_log(gw: Sluice) -> None:
    """test_secrets_not_logged.py's checks of the session gateway, over everything this process ran.

    That file reads the session gateway's log after the other tests (``run_last``); under xdist it
    sees only its own worker's gateway, so each worker checks its gateway's whole log here too, once
    it has stopped (nothing left unflushed). A failure is reported as an error in teardown."""
    secrets = {"client key": SLUICE_TEST_KEY, "limited key": LIMITED_KEY, "provider key": FAKE_PROVIDER_KEY}
    for stream, text in (("stdout", gw.stdout_text()), ("stderr", gw.stderr_text())):
        leaked = [name for name, secret in secrets.items() if secret in text]
        if leaked:
            pytest.fail(f"{', '.join(leaked)} found in the session gateway's {stream}", pytrace=False)
    try:
        gw.log_lines()
    except ValueError as exc:
        pytest.fail(f"the session gateway's stdout is not JSON lines: {exc}", pytrace=False)


@pytest.fixture
def start_sluice(sluice_bin: Path, make_manifest, tmp_path: Path) -> Callable[..., Sluice]:
    """``start_sluice(manifest=None, env=None, name="custom", **options)``: an extra gateway for this test.

    ``manifest`` may be a dict (its listen port is used as is) or a callable that edits a copy
    of the default manifest in place; ``options`` go to ``Sluice`` (socket activation, extra
    serve flags). Stopped at teardown.
    """
    started: list[Sluice] = []

    def start(manifest: dict | Callable[[dict], None] | None = None, env: dict | None = None,
              name: str = "custom", **options) -> Sluice:
        if manifest is None or callable(manifest):
            edited = make_manifest()
            if manifest is not None:
                manifest(edited)
            manifest = edited
        gw = _start(sluice_bin, copy.deepcopy(manifest), tmp_path, f"{name}{len(started)}", env, **options)
        started.append(gw)
        return gw

    start.started = started  # read by pytest_runtest_makereport
    yield start
    for gw in started:
        gw.stop()


# --- redis --------------------------------------------------------------------------------------

@pytest.fixture
def redis_server(tmp_path: Path) -> RedisServer:
    """A fresh, empty ``redis-server`` on a free loopback port for this test (no persistence).

    ``.url`` goes in the manifest; ``.kill()``/``.restart()`` (same port) and ``.pause()``/
    ``.resume()`` simulate outages. A missing redis-server is a failure, not a skip.
    """
    try:
        server = RedisServer(tmp_path / "redis").start()
    except RedisError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


# --- clients ------------------------------------------------------------------------------------

@pytest.fixture
def client(gateway: Sluice) -> openai.OpenAI:
    """The official OpenAI SDK pointed at the gateway, with the all-models test key."""
    with openai.OpenAI(base_url=gateway.base_url, api_key=SLUICE_TEST_KEY, max_retries=0,
                       timeout=HTTP_TIMEOUT_S) as sdk:
        yield sdk


@pytest.fixture
def http(gateway: Sluice) -> httpx.Client:
    """A raw HTTP client on the gateway's root URL, with no credentials."""
    with httpx.Client(base_url=gateway.url, timeout=HTTP_TIMEOUT_S, trust_env=False) as raw:
        yield raw
