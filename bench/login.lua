-- POST /login (JSON) with the right password, as fast as bcrypt allows.
-- Every refresh token a successful login returns is appended to
-- $BENCH_TOKENS_DIR/tokens-<n>.txt (one file per wrk thread) when that
-- variable is set: those sessions seed the refresh benchmark.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local body = string.format('{"username":"%s","password":"%s"}',
  os.getenv("BENCH_USER"), os.getenv("BENCH_PASSWORD"))
local req
local tokens_dir = os.getenv("BENCH_TOKENS_DIR")

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  report.setup(thread)
end
done = report.done

local out
-- The request is built in init(): wrk sets the Host header just before.
function init(args)
  req = wrk.format("POST", "/login", { ["Content-Type"] = "application/json" }, body)
  if tokens_dir and tokens_dir ~= "" then
    out = io.open(string.format("%s/tokens-%d.txt", tokens_dir, id), "a")
  end
end

function request()
  return req
end

function response(status, headers, body)
  report.count(status, headers)
  if out and status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      out:write(token, "\n")
      out:flush()
    end
  end
end
