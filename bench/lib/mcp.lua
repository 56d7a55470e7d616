-- wrk script: POST {"jsonrpc":"2.0","id":1,"method":"ping"} as an MCP client would.
-- env BENCH_TOKEN_FILE  file with one token a line; one line = the same token on every request (static
--                       request, built once), several = round-robin, a different token per request;
--                       unset or empty = no Authorization header
-- env BENCH_RATE        offered requests/s over all threads (the latency tables); unset = as fast as
--                       the connections go (throughput cases)
-- env BENCH_THREADS     wrk -t, to split BENCH_RATE between the threads
-- env BENCH_UNIQUE_SIG  1 = rewrite 10 characters in the middle of each token's signature with a
--                       counter seeded from the clock, so no token is ever sent twice, not even
--                       across runs (forgeries no cache can remember)
-- env BENCH_PATH        request path (/mcp)
-- env BENCH_BODY_FILE   request body read from this file (default: a JSON-RPC ping)
-- env BENCH_DPOP_FILE   DPoP proofs (lib/dpop-proofs.mjs), one a line, for the token on the first line of
--                       BENCH_TOKEN_FILE, which is then sent as "Authorization: DPoP <token>" with
--                       "DPoP: <proof>". No proof is sent twice (the gate would refuse the replay):
--                       wrk thread k of T takes lines k+1, k+1+T, ...; a thread that has used all its
--                       lines stops sending (wrk.thread:stop()); wrk still waits out the duration and
--                       divides by it, so that run's req/s is understated (its CPU per request is not).
-- env BENCH_METHOD      POST (default) or GET (then no body is sent)
local body = '{"jsonrpc":"2.0","id":1,"method":"ping"}'
local body_file = os.getenv("BENCH_BODY_FILE") or ""
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
end
local path = os.getenv("BENCH_PATH") or "/mcp"
local file = os.getenv("BENCH_TOKEN_FILE") or ""
local rate = tonumber(os.getenv("BENCH_RATE") or "")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local unique = os.getenv("BENCH_UNIQUE_SIG") == "1"
local tokens = {}
local n = 0
local i = 0

local function base_headers()
  return { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream" }
end

if file ~= "" then
  for line in io.lines(file) do
    if #line > 0 then n = n + 1; tokens[n] = line end
  end
end

local method = os.getenv("BENCH_METHOD") or ""
if method == "" then method = "POST" end
if method == "GET" then body = nil end
wrk.method = method
wrk.path = path
wrk.body = body
wrk.headers = base_headers()
if n >= 1 then wrk.headers["Authorization"] = "Bearer " .. tokens[1] end

local pre, post = {}, {}
local counter, step = 0, 1
local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function next_token()
  i = i % n + 1
  if not unique then return tokens[i] end
  counter = counter + step
  local c, out = counter, {}
  for k = 1, 10 do
    local d = c % 64
    out[k] = b64:sub(d + 1, d + 1)
    c = (c - d) / 64
  end
  return pre[i] .. table.concat(out) .. post[i]
end
if unique then
  for k = 1, n do
    local t = tokens[k]
    local d1 = t:find(".", 1, true)
    local d2 = t:find(".", d1 + 1, true)
    pre[k] = t:sub(1, d2 + 100)
    post[k] = t:sub(d2 + 111)
  end
end

if n > 1 or unique then
  local next_id = 0
  function setup(thread)
    thread:set("thread_id", next_id)
    next_id = next_id + 1
  end
  function init(args)
    -- every wrk thread has its own Lua state; start the threads at different places in the list
    i = ((thread_id or 0) * 7919) % n
    -- 2^20 counter values per second of wall clock: a later run never reuses an earlier one's
    step = threads
    counter = os.time() * 1048576 * threads + (thread_id or 0)
  end
  function request()
    local h = base_headers()
    h["Authorization"] = "Bearer " .. next_token()
    return wrk.format(method, path, h, body)
  end
end

if rate and rate > 0 then
  -- Pacing: one schedule per wrk thread; each request gets the next free slot (slots 1/rate apart),
  -- never earlier than now, so a proxy that falls behind is not sent a catch-up burst. delay() takes
  -- whole milliseconds: the fraction is rounded up or down at random so the mean stays right.
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = 1000 / (rate / threads)
  local next_slot = nil
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval
    local whole = math.floor(wait)
    if math.random() < wait - whole then whole = whole + 1 end
    return whole
  end
end

local dpop_file = os.getenv("BENCH_DPOP_FILE") or ""
if dpop_file ~= "" and n >= 1 then
  local proofs, n_proofs = {}, 0
  for line in io.lines(dpop_file) do
    if #line > 0 then n_proofs = n_proofs + 1; proofs[n_proofs] = line end
  end
  assert(n_proofs > 0, "BENCH_DPOP_FILE holds no proof")
  local auth = "DPoP " .. tokens[1]
  local next_id = 0
  function setup(thread)
    thread:set("thread_id", next_id)
    next_id = next_id + 1
  end
  local p
  function init(args)
    p = (thread_id or 0) + 1 - threads
  end
  function request()
    p = p + threads
    if p > n_proofs then
      wrk.thread:stop()
      p = n_proofs
    end
    local h = base_headers()
    h["Authorization"] = auth
    h["DPoP"] = proofs[p]
    return wrk.format("POST", path, h, body)
  end
end
