"""A real small LLM behind the real gateway: what `make run` serves (README, issue 3).

SmolLM2-135M-Instruct (4-bit GGUF) runs on llama-cpp-python's OpenAI-compatible server from
``.venv-model`` (made by ``scripts/setup-local-model.sh``, which ``make test`` runs first), and
sluice routes the public model ``local`` to it. The official SDK talks to sluice only.

Every call is bounded: the 135M model on one thread answers 32 tokens in well under a few seconds,
so the timeouts below are generous but a hang still fails quickly.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from harness.constants import SLUICE_TEST_KEY
from harness.manifest import default_manifest
from harness.net import free_port
from harness.sluice import Sluice, SluiceError, _die_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_PYTHON = REPO_ROOT / ".venv-model" / "bin" / "python"
GGUF = REPO_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
# What `make run` starts: llama_cpp.server with its X-Request-ID check off (see the script).
LAUNCHER = REPO_ROOT / "scripts" / "llama_server.py"
SETUP_HINT = "run scripts/setup-local-model.sh first (make test does)"

MODEL_READY_TIMEOUT_S = 60.0
ANSWER_TIMEOUT_S = 30.0          # one 32-token answer; typically well under 2 s
MAX_TOKENS = 32
PROMPT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
PROVIDER = "llama"


class ModelServer:
    """llama_cpp.server with the real GGUF on a free loopback port, started as `make run` does
    (``plain=True``: ``python -m llama_cpp.server`` itself, request-id check included)."""

    def __init__(self, workdir: Path, name: str = "llama", plain: bool = False):
        self.entry = ["-m", "llama_cpp.server"] if plain else [str(LAUNCHER)]
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ModelServer":
        for path in (MODEL_PYTHON, GGUF):
            if not path.exists():
                pytest.fail(f"{path} is missing: {SETUP_HINT}", pytrace=False)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(MODEL_PYTHON), *self.entry, "--model", str(GGUF), "--model_alias", "local",
                 "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", "1",
                 # As `make run`: sluice's health probe (GET /v1/models) takes the model lock, and
                 # by default llama_cpp.server then ends the stream in flight.
                 "--interrupt_requests", "False"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + MODEL_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"llama_cpp.server exited with {self.proc.returncode} before it was ready")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        self.fail(f"llama_cpp.server did not answer GET /v1/models within {MODEL_READY_TIMEOUT_S:.0f}s")

    def fail(self, why: str):
        pytest.fail(f"{why}; last lines of its log:\n{self.log_tail()}", pytrace=False)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash would, and wait until it is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def model_manifest(model_base_url: str) -> dict:
    """The test manifest (keys, router) with one provider, the llama server, serving the public model ``local``."""
    manifest = default_manifest(free_port(), model_base_url)
    manifest["providers"] = {PROVIDER: {"plugin": "openai-compatible", "config": {"base_url": model_base_url}}}
    # The upstream name is irrelevant: llama_cpp.server serves its one model whatever name is asked for.
    manifest["models"] = {"local": {"targets": [{"provider": PROVIDER, "model": "smollm2"}]}}
    return manifest


def start_gateway(binary: Path, model: ModelServer, workdir: Path, name: str, **server: object) -> Sluice:
    manifest = model_manifest(model.base_url)
    manifest["server"].update(server)
    try:
        return Sluice(binary, manifest, workdir, name=name).start()
    except SluiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> ModelServer:
    server = ModelServer(tmp_path_factory.mktemp("llama")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def model_gateway(sluice_bin: Path, model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Sluice:
    gw = start_gateway(sluice_bin, model_server, tmp_path_factory.mktemp("model-gateway"), "model")
    yield gw
    gw.stop()


def sdk(gw: Sluice, timeout: float = ANSWER_TIMEOUT_S) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=timeout)


# --- answers ----------------------------------------------------------------------------------

def test_non_streamed_answer_has_text_and_usage(model_gateway: Sluice):
    with sdk(model_gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="local", messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0)
    completion = raw.parse()
    assert raw.headers.get("x-sluice-provider") == PROVIDER
    text = completion.choices[0].message.content or ""
    assert text.strip(), f"empty answer: {completion}"
    assert completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None, completion
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_answer_has_text(model_gateway: Sluice):
    with sdk(model_gateway) as client:
        stream = client.chat.completions.create(
            model="local", messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True,
            stream_options={"include_usage": True})
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip(), f"empty streamed answer from {len(chunks)} chunks"
    assert any(c.choices and c.choices[0].finish_reason in ("stop", "length") for c in chunks)
    # llama-cpp-python's server (0.3.x) ignores stream_options.include_usage and sends no usage
    # chunk; sluice passes the stream through. Should a usage chunk appear (a newer llama server, or
    # the gateway adding one), it must have OpenAI's shape: last, alone, with no choices.
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) <= 1, f"{len(with_usage)} usage chunks"
    if with_usage:
        usage = with_usage[0].usage
        assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= MAX_TOKENS
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert chunks[-1] is with_usage[0] and not chunks[-1].choices


def test_stream_and_non_stream_agree_at_temperature_zero(model_gateway: Sluice):
    """The gateway passes the model's tokens through unchanged, streamed or not."""
    with sdk(model_gateway) as client:
        whole = client.chat.completions.create(model="local", messages=PROMPT, max_tokens=MAX_TOKENS,
                                               temperature=0, seed=1)
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="local", messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0, seed=1, stream=True) if c.choices)
    assert streamed == whole.choices[0].message.content


def test_responses_api_on_the_real_model(model_gateway: Sluice):
    """The Responses front door, translated to the llama server's chat completions and back,
    through the strict SDK: whole, streamed, and the stream helper's final response."""
    client = openai.OpenAI(base_url=model_gateway.base_url, api_key=SLUICE_TEST_KEY, max_retries=0,
                           timeout=ANSWER_TIMEOUT_S, _strict_response_validation=True)
    with client:
        prompt = PROMPT[-1]["content"]
        whole = client.responses.create(model="local", input=prompt, max_output_tokens=MAX_TOKENS, temperature=0)
        assert whole.status in ("completed", "incomplete") and whole.output_text.strip(), whole
        assert whole.usage is not None and whole.usage.input_tokens > 0
        assert 0 < whole.usage.output_tokens <= MAX_TOKENS

        events = list(client.responses.create(model="local", input=prompt, max_output_tokens=MAX_TOKENS,
                                              temperature=0, stream=True))
        assert events[0].type == "response.created"
        assert events[-1].type in ("response.completed", "response.incomplete")
        assert [e.sequence_number for e in events] == list(range(len(events)))
        streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert streamed == whole.output_text  # temperature 0: the same tokens

        with client.responses.stream(model="local", input=prompt, max_output_tokens=MAX_TOKENS, temperature=0) as stream:
            final = stream.get_final_response()
        assert final.output_text == whole.output_text


def test_health_probes_do_not_cut_a_stream_short(sluice_bin: Path, model_server: ModelServer, tmp_path: Path):
    """Sluice probes each provider (GET /v1/models) every health_probe_interval_s. That probe waits
    for llama_cpp.server's model lock, which by default ends the stream in flight; the server runs
    with --interrupt_requests False (as `make run` starts it), so probes every 100 ms change nothing."""
    gw = start_gateway(sluice_bin, model_server, tmp_path, "probed", health_probe_interval_s=0.1)
    try:
        with sdk(gw) as client:
            whole = client.chat.completions.create(model="local", messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0)
            chunks = list(client.chat.completions.create(model="local", messages=PROMPT, max_tokens=MAX_TOKENS,
                                                         temperature=0, stream=True))
        assert any(c.choices and c.choices[0].finish_reason in ("stop", "length") for c in chunks), chunks[-3:]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    finally:
        gw.stop()


# --- the model server going away --------------------------------------------------------------

def test_dead_model_server_fails_fast_and_sluice_keeps_serving(sluice_bin: Path, tmp_path: Path):
    """A crashed local model: requests for it fail at once with 503 (502 accepted for now), streamed
    or not; the gateway itself stays up and ready, and /ready?verbose=1 reports the provider down."""
    model = ModelServer(tmp_path, "doomed-llama").start()
    try:
        gw = start_gateway(sluice_bin, model, tmp_path, "doomed", health_probe_interval_s=0.2)
        try:
            with sdk(gw) as client:  # the route works while the model is up
                ok = client.chat.completions.create(model="local", messages=PROMPT, max_tokens=4, temperature=0)
                assert ok.choices[0].message.content is not None
            model.kill()

            headers = {"authorization": f"Bearer {SLUICE_TEST_KEY}"}
            body = {"model": "local", "messages": PROMPT, "max_tokens": 4}
            with httpx.Client(base_url=gw.url, timeout=10, trust_env=False) as http:
                for stream in (False, True, False):
                    start = time.monotonic()
                    resp = http.post("/v1/chat/completions", headers=headers, json={**body, "stream": stream})
                    elapsed = time.monotonic() - start
                    assert resp.status_code in (502, 503), (stream, resp.status_code, resp.text)
                    error = resp.json().get("error")
                    assert isinstance(error, dict) and error.get("message"), resp.text
                    assert elapsed < 3, f"stream={stream}: a dead model server took {elapsed:.2f}s to report"
                assert http.get("/ready").status_code == 200
                assert http.get("/health").status_code == 200
                deadline, status = time.monotonic() + 5, None
                while time.monotonic() < deadline:
                    status = http.get("/ready", params={"verbose": "1"}).json()
                    if status.get("providers", {}).get(PROVIDER, {}).get("status") == "down":
                        break
                    time.sleep(0.1)
                assert status["providers"][PROVIDER]["status"] == "down", status
            assert gw.alive
        finally:
            gw.stop()
    finally:
        model.stop()


# --- the request id ---------------------------------------------------------------------------

def test_unpatched_llama_server_accepts_what_sluice_forwards(sluice_bin: Path, tmp_path: Path):
    """An unpatched llama_cpp.server refuses any X-Request-ID that is not a UUID; the ids sluice
    makes are UUIDs. (Ids a client chose are kept and forwarded as they are, hence the launcher.)"""
    model = ModelServer(tmp_path, "plain-llama", plain=True).start()
    try:
        gw = start_gateway(sluice_bin, model, tmp_path, "plain")
        try:
            with sdk(gw) as client:
                answer = client.chat.completions.create(model="local", messages=PROMPT, max_tokens=4)
            assert answer.choices[0].message.content
        finally:
            gw.stop()
    finally:
        model.stop()
