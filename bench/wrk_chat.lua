-- wrk script: POST an OpenAI chat request with a bearer key; print a JSON summary at the end.
-- BENCH_KEY, BENCH_MODEL and BENCH_PATH come from the environment (bench/bench.py sets them).
-- BENCH_BODY_BYTES, when set, makes the body a conversation of exactly that many bytes (earlier
-- user/assistant turns, then the question), as a chat client sends a long conversation; without it
-- the body is a short two-message request (~200 bytes).
local key = os.getenv("BENCH_KEY") or "sk-bench"
local model = os.getenv("BENCH_MODEL") or "bench"
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "")

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

local function conversation(total)
  -- Plain ASCII turns (nothing to escape), so the byte count is exact and every gateway parses the same text.
  local head = '{"model":"' .. model .. '","max_tokens":32,"temperature":0,"messages":['
  local question = "Say hello in one short sentence."
  local last_open, last_close = '{"role":"user","content":"', question .. '"}]}'
  local turn = string.rep("Tell me more about the history of the printing press and its effect on Europe. ", 8)
  local parts, used = { head }, #head + #last_open + #last_close
  local roles, i = { "user", "assistant" }, 0
  while true do
    local msg = '{"role":"' .. roles[i % 2 + 1] .. '","content":"' .. turn .. '"},'
    if used + #msg > total then break end
    parts[#parts + 1] = msg
    used = used + #msg
    i = i + 1
  end
  -- the last message is padded so the body is exactly `total` bytes (when total allows it)
  parts[#parts + 1] = last_open .. string.rep("x", math.max(0, total - used)) .. last_close
  return table.concat(parts)
end

if size and size > 0 then
  wrk.body = conversation(size)
else
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are terse."},'
    .. '{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32,"temperature":0}'
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"body_bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.2f,"max":%d,"stdev":%.2f,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, #wrk.body,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
