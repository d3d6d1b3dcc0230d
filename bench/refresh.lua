-- POST /token/refresh (JSON face), every request presenting a refresh token
-- that has never been used before.
--
-- run.sh hands each wrk thread its own share of live sessions
-- (BENCH_TOKENS_FILE, one refresh token per line, from real logins). A thread
-- keeps a queue: request() takes the oldest token, response() pushes the new
-- refresh token the server returned. Each connection has one request in
-- flight, so every token is presented exactly once and every request is a
-- real rotation: the session's one row moved to its next generation by one
-- conditional UPDATE, committed by the server's writer thread before it
-- answers. The server runs with REFRESH_REUSE_GRACE=0, so a token presented
-- twice would revoke its session and show up as non-2xx responses.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local threads_seen = 0
function setup(thread)
  threads_seen = threads_seen + 1
  thread:set("index", threads_seen)
  report.setup(thread)
end

done = report.done

local queue, head, tail = {}, 1, 0
local threads_total

function init(args)
  -- Every thread reads the same file and keeps the lines i, i+n, i+2n, ...
  -- so no token is shared between threads.
  threads_total = tonumber(os.getenv("BENCH_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    if line ~= "" then
      n = n + 1
      if (n - index) % threads_total == 0 then
        tail = tail + 1
        queue[tail] = line
      end
    end
  end
end

function request()
  local token = queue[head]
  if token then
    queue[head] = nil
    head = head + 1
  else
    token = "queue-ran-dry" -- answered 401 and counted: the chain broke
  end
  return wrk.format("POST", "/token/refresh", { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  report.count(status, headers)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      tail = tail + 1
      queue[tail] = token
    end
  end
end
