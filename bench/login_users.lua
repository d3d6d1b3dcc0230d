-- POST /login (JSON) with a wrong password, cycling through many distinct
-- usernames: the flood an attacker spraying accounts sends. The names need
-- not exist (an unknown user still costs one bcrypt hash, against the dummy).
--   BENCH_USERS_PREFIX  username prefix (default "flood")
--   BENCH_USERS_COUNT   how many distinct names: prefix0 .. prefix<N-1> (default 1000)
--   BENCH_THREADS       wrk threads (to interleave the threads' names)
-- Expected answers: 401 (checked, wrong) or 503 (the hash queue is full).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local prefix = os.getenv("BENCH_USERS_PREFIX") or "flood"
local count = tonumber(os.getenv("BENCH_USERS_COUNT") or "") or 1000
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "") or 1

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  report.setup(thread)
end
done = report.done

local reqs = {}
local next_index

-- Built in init(): wrk sets the Host header just before calling it.
function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for i = 0, count - 1 do
    local body = string.format('{"username":"%s%d","password":"wrong-Pw-%d-x9q"}', prefix, i, i)
    reqs[i] = wrk.format("POST", "/login", headers, body)
  end
  -- Thread k sends names k-1, k-1+T, k-1+2T, ...: together the threads go
  -- round all the names in turn.
  next_index = (id - 1) % count
end

function request()
  local req = reqs[next_index]
  next_index = (next_index + nthreads) % count
  return req
end

function response(status, headers, body)
  report.count(status, headers)
end
