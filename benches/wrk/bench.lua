-- The one wrk script of scripts/bench. Environment:
--   BENCH_METHOD  GET (default) or POST
--   BENCH_PATH    request path
--   BENCH_HEADER  one extra header line, e.g. "Cookie: fleet_session=…" (optional)
--   BENCH_BODY    file holding a report body with @ID@ and @TS@ in it (POST only)
--   BENCH_MACHINES  how many distinct machine ids the bodies cycle through (default 1)
-- Prints one JSON line when done: requests, duration, socket errors, non-2xx answers, p50, p99.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local machines = tonumber(os.getenv("BENCH_MACHINES") or "1")
local headers = {}
local extra = os.getenv("BENCH_HEADER")
if extra and extra ~= "" then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  headers[name] = value
end
local template = nil
if method == "POST" then
  local f = assert(io.open(os.getenv("BENCH_BODY"), "r"))
  template = f:read("*a")
  f:close()
  headers["Content-Type"] = "application/json"
end

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local counter = 0
function request()
  if template == nil then
    return wrk.format(method, path, headers)
  end
  counter = counter + 1
  -- Threads interleave so that together they cycle through every machine id.
  local n = counter * 2 + (tid or 0)
  local id = string.format("bench-%06d", n % machines)
  -- Timestamps as an agent sends them: milliseconds, newer with every report of a machine
  -- (wrk's Lua has only a seconds clock; the machine's report count stands in for the
  -- milliseconds, which stay increasing until a machine's 1,000th report in one second, as
  -- with one machine at thousands of reports a second, where reports then share stamps).
  local ts = os.date("!%Y-%m-%dT%H:%M:%S") .. string.format(".%03dZ", math.floor(n / machines) % 1000)
  local body = (template:gsub("@ID@", id):gsub("@TS@", ts))
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"socket_errors":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
