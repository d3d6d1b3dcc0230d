-- GET a path with fixed headers, at full speed.
--   BENCH_PATH     the path (default /healthz)
--   BENCH_BEARER   if set, sent as Authorization: Bearer <token> (JSON face)
--   BENCH_COOKIE   if set, sent as the Cookie header (HTML face)
--   BENCH_PADDING  if set, sent as an X-Padding header (bytes the app ignores)
--   BENCH_DELAY_MS if set, each connection waits this long between requests
--                  (the low-rate probe that runs beside a login flood)
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local path = os.getenv("BENCH_PATH") or "/healthz"
local headers = {}
local bearer = os.getenv("BENCH_BEARER")
if bearer and bearer ~= "" then headers["Authorization"] = "Bearer " .. bearer end
local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then headers["Cookie"] = cookie end
local padding = os.getenv("BENCH_PADDING")
if padding and padding ~= "" then headers["X-Padding"] = padding end
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")

local req
setup = report.setup
done = report.done

-- Built in init(): wrk sets the Host header just before calling it.
function init(args)
  req = wrk.format("GET", path, headers)
end

function request()
  return req
end

function response(status, headers, body)
  report.count(status, headers)
end

if delay_ms then
  function delay()
    return delay_ms
  end
end
