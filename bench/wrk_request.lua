-- wrk: one request shape from the environment, a unique Idempotency-Key per request.
-- BENCH_METHOD, BENCH_TOKEN, BENCH_BODY, BENCH_RUN (a prefix unique to this wrk run).
-- thread_no is set per thread by setup() (a global of that thread's Lua state).
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  method = os.getenv("BENCH_METHOD") or "POST"
  token = os.getenv("BENCH_TOKEN") or ""
  body = os.getenv("BENCH_BODY") or "{}"
  run = os.getenv("BENCH_RUN") or "run"
end

function request()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = run .. "-" .. thread_no .. "-" .. counter,
  }
  return wrk.format(method, nil, headers, body)
end
