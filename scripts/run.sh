#!/usr/bin/env bash
# `make run`: build Sluice, prepare the local model, and serve the manifest (plugins.json) with a real
# small LLM (SmolLM2-135M-Instruct on llama-cpp-python) behind it.
#
#   model server  127.0.0.1:8081  (the port of providers.local.config.base_url in the manifest)
#   sluice        127.0.0.1:8080  (server.listen[0] in the manifest)
#
# Supervision: Ctrl-C, SIGTERM or SIGHUP stops sluice first (it drains) and then the model server.
# If sluice exits, the model server is stopped and the script exits with sluice's code. If the model
# server dies, sluice keeps running (it answers 503 for the model's public names) until stopped.
# Both children also get SIGTERM from the kernel if this script is killed (setpriv --pdeathsig).
#
# Environment: CONFIG (manifest, default plugins.json), SKIP_BUILD=1 (use the existing release binary),
# SLUICE_BIN, SLUICE_MODEL_THREADS (default: number of CPUs, at most 4).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="${CONFIG:-plugins.json}"
STATE_DIR="$ROOT/.sluice"
KEY_FILE="$STATE_DIR/demo.key"
MODEL_LOG="$STATE_DIR/model-server.log"
GGUF="$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PY="$ROOT/.venv-model/bin/python"

if [ -t 2 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
say() { printf '%srun:%s %s\n' "$BOLD" "$PLAIN" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -f "$CONFIG" ] || die "manifest $CONFIG not found"

# --- 1. build -----------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building the release binary: make release"
    make --no-print-directory release
fi
SLUICE_BIN="${SLUICE_BIN:-$ROOT/.build/release/sluice}"
[ -x "$SLUICE_BIN" ] || die "no sluice binary at $SLUICE_BIN"

# --- 2. the model -------------------------------------------------------------------------------
"$ROOT/scripts/setup-local-model.sh"

# --- 3. the demo key (made once; printed only in the banner below) ------------------------------
mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"
if [ ! -s "$KEY_FILE" ]; then
    say "creating a demo client key in ${KEY_FILE#"$ROOT/"} (mode 600)"
    ( umask 077; printf 'sk-sluice-%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" > "$KEY_FILE" )
fi
chmod 600 "$KEY_FILE"

# --- 4. addresses from the manifest ----------------------------------------------------------------
# "SLUICE_HOST SLUICE_PORT MODEL_HOST MODEL_PORT": sluice's first listen address, and the host/port of
# the `local` provider's base_url (defaults when the manifest does not say).
read -r SLUICE_HOST SLUICE_PORT MODEL_HOST MODEL_PORT DRAIN_S < <(python3 - "$CONFIG" <<'EOF'
import json, sys, urllib.parse
m = json.load(open(sys.argv[1]))
server = m.get("server") or {}
listen = (server.get("listen") or ["127.0.0.1:8080"])[0]
host, _, port = listen.rpartition(":")
base = (((m.get("providers") or {}).get("local") or {}).get("config") or {}).get("base_url")
u = urllib.parse.urlsplit(base if isinstance(base, str) else "http://127.0.0.1:8081/v1")
drain = server.get("drain_timeout_s", 30)
print(host or "127.0.0.1", port, u.hostname or "127.0.0.1", u.port or 80, int(drain) if isinstance(drain, int) else 30)
EOF
)
[ "$SLUICE_HOST" = "0.0.0.0" ] && SLUICE_HOST=127.0.0.1
SLUICE_URL="http://$SLUICE_HOST:$SLUICE_PORT"
MODEL_URL="http://$MODEL_HOST:$MODEL_PORT"

port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
port_busy "$MODEL_HOST" "$MODEL_PORT" && die "$MODEL_HOST:$MODEL_PORT is already in use (the model server's port); stop what listens there"
port_busy "$SLUICE_HOST" "$SLUICE_PORT" && die "$SLUICE_HOST:$SLUICE_PORT is already in use (sluice's port); stop what listens there"

# --- 5. supervision -----------------------------------------------------------------------------
MODEL_PID=""
SLUICE_PID=""

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# stop PID NAME GRACE_S: SIGTERM, wait up to GRACE_S, then SIGKILL. Returns the exit code.
stop() {
    local pid="$1" name="$2" grace="$3" code=0 waited=0
    alive "$pid" || { wait "$pid" 2>/dev/null || code=$?; return "$code"; }
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && [ "$waited" -lt $((grace * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
    if alive "$pid"; then
        say "$name still running after ${grace}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || code=$?
    return "$code"
}

SHUTTING_DOWN=0
shutdown() {
    local why="$1" code="${2:-0}"
    [ "$SHUTTING_DOWN" = 1 ] && return
    SHUTTING_DOWN=1
    trap '' INT TERM HUP
    say "$why: shutting down"
    [ -n "$SLUICE_PID" ] && { stop "$SLUICE_PID" sluice $((DRAIN_S + 5)) || true; }
    [ -n "$MODEL_PID" ] && { stop "$MODEL_PID" "model server" 10 || true; }
    say "stopped"
    exit "$code"
}
trap 'shutdown "interrupted (SIGINT)" 130' INT
trap 'shutdown "SIGTERM" 143' TERM
trap 'shutdown "SIGHUP" 129' HUP

# Children run in their own session, so a Ctrl-C on the terminal reaches only this script, which
# then stops them in order (sluice drains before the model goes away); --pdeathsig covers a killed script.
spawn() {
    if command -v setpriv >/dev/null; then
        setsid setpriv --pdeathsig TERM -- "$@" </dev/null &
    else
        setsid "$@" </dev/null &
    fi
}

# wait_http URL PID NAME TIMEOUT_S: until URL answers 200 (fails if PID exits first).
wait_http() {
    local url="$1" pid="$2" name="$3" timeout="$4" start=$SECONDS
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        alive "$pid" || return 1
        [ $((SECONDS - start)) -lt "$timeout" ] || { say "$name did not answer $url within ${timeout}s"; return 1; }
        sleep 0.2
    done
}

THREADS="${SLUICE_MODEL_THREADS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}"
say "starting the model server on $MODEL_URL ($THREADS threads; log: ${MODEL_LOG#"$ROOT/"})"
# scripts/llama_server.py is `python -m llama_cpp.server` without its X-Request-ID check (which
# refuses any id that is not a UUID, such as the ones sluice and clients send).
# --model_alias local: the model's id in /v1/models. llama_cpp.server serves its one model whatever
# name a request carries (and echoes that name back), so the upstream name in the manifest does not matter.
# --interrupt_requests False: by default llama_cpp.server ends the stream in flight whenever another
# request waits for its model lock, and GET /v1/models takes that lock, so sluice's provider health
# probe (every health_probe_interval_s) would cut a client's answer short.
spawn "$MODEL_PY" "$ROOT/scripts/llama_server.py" --model "$GGUF" --model_alias local \
    --host "$MODEL_HOST" --port "$MODEL_PORT" --n_threads "$THREADS" --interrupt_requests False >"$MODEL_LOG" 2>&1
MODEL_PID=$!
if ! wait_http "$MODEL_URL/v1/models" "$MODEL_PID" "model server" 120; then
    say "the model server did not come up; last lines of ${MODEL_LOG#"$ROOT/"}:"
    tail -n 20 "$MODEL_LOG" >&2 || true
    shutdown "model server failed" 1
fi
say "model server ready (pid $MODEL_PID)"

say "starting sluice on $SLUICE_URL: $SLUICE_BIN serve --config $CONFIG"
spawn "$SLUICE_BIN" serve --config "$CONFIG"
SLUICE_PID=$!
if ! wait_http "$SLUICE_URL/ready" "$SLUICE_PID" sluice 30; then
    alive "$SLUICE_PID" || shutdown "sluice exited before it was ready (see its log above)" 1
    shutdown "sluice did not become ready" 1
fi

KEY="$(cat "$KEY_FILE")"
cat >&2 <<EOF

  Sluice is serving $CONFIG on $SLUICE_URL, with SmolLM2-135M-Instruct as the models "local" and "smollm2".
  Your demo key is in ${KEY_FILE#"$ROOT/"}.

  curl -s $SLUICE_URL/v1/chat/completions -H 'Authorization: Bearer $KEY' -H 'content-type: application/json' -d '{"model": "local", "messages": [{"role": "user", "content": "Say hello"}]}'

  from openai import OpenAI
  client = OpenAI(base_url="$SLUICE_URL/v1", api_key="$KEY")
  for chunk in client.chat.completions.create(model="local", stream=True,
                                              messages=[{"role": "user", "content": "Hi"}]):
      print(chunk.choices[0].delta.content or "", end="")

  Ctrl-C stops sluice (it drains) and then the model server.

EOF
unset KEY

# Wait for either child. The model server dying is reported and sluice keeps serving;
# sluice exiting ends the run.
while true; do
    if alive "$MODEL_PID"; then
        finished=""
        wait -n -p finished "$SLUICE_PID" "$MODEL_PID" 2>/dev/null && code=0 || code=$?
        [ -z "$finished" ] && continue   # interrupted by a trapped signal that returned
    else
        finished="$SLUICE_PID"
        wait "$SLUICE_PID" 2>/dev/null && code=0 || code=$?
    fi
    if [ "$finished" = "$MODEL_PID" ]; then
        say "the model server exited (code $code; log: ${MODEL_LOG#"$ROOT/"}); sluice keeps running and answers 503 for its models"
        MODEL_PID=""
        continue
    fi
    SLUICE_PID=""
    shutdown "sluice exited (code $code)" "$code"
done
