-- POST /token/refresh (JSON face) on ONE session, in a chain: every request
-- presents the refresh token the previous answer returned. Run with 1 thread
-- and 1 connection (one request in flight), so every request is a rotation
-- of the same session row.
--   BENCH_TOKEN         the session's first refresh token (from a login)
--   BENCH_MAX_REQUESTS  stop once this many answers are counted
--   BENCH_DONE_FILE     written when the thread stops (the cap is reached or
--                       the chain broke): wrk itself waits out its -d, so
--                       run.sh polls for this file and ends wrk with SIGINT
-- A non-200 answer stops the chain at once: presenting the same token again
-- would be a replay (REFRESH_REUSE_GRACE=0 revokes the session), not a refresh.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done

local token = os.getenv("BENCH_TOKEN")
local cap = tonumber(os.getenv("BENCH_MAX_REQUESTS"))
local done_file = os.getenv("BENCH_DONE_FILE")
local answered = 0
local stopped = false

local function stop()
  if stopped then return end
  stopped = true
  wrk.thread:stop()
  local f = io.open(done_file, "w")
  if f then
    f:write(answered, "\n")
    f:close()
  end
end

function request()
  return wrk.format("POST", "/token/refresh", { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  report.count(status, headers)
  answered = answered + 1
  local next_token = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if next_token then
    token = next_token
  else
    stop()
  end
  if answered >= cap then stop() end
end
