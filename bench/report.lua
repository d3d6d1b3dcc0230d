-- Shared by every bench script: counts responses by status per thread and,
-- when wrk finishes, prints one machine-readable line that bench/run.sh parses.
--   BENCH requests=.. duration_s=.. rps=.. non2xx=.. connect=.. read=..
--         write=.. timeout=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
--         no_retry_after=.. status_<code>=.. (one per status seen)
-- no_retry_after counts 503 and 429 answers without a Retry-After header.
local report = {}

local threads = {}

function report.setup(thread)
  table.insert(threads, thread)
end

-- Per thread (each wrk thread has its own Lua state; done() reads them
-- through thread:get, which copies tables too).
statuses = {}
non2xx = 0
no_retry_after = 0

-- Call from each script's response(): wrk itself only counts statuses > 399.
function report.count(status, headers)
  statuses[status] = (statuses[status] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if (status == 503 or status == 429) and headers
      and not (headers["retry-after"] or headers["Retry-After"]) then
      no_retry_after = no_retry_after + 1
    end
  end
end

function report.done(summary, latency, requests)
  local bad, missing, by_status = 0, 0, {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    missing = missing + (t:get("no_retry_after") or 0)
    for status, n in pairs(t:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local codes = {}
  for status in pairs(by_status) do table.insert(codes, status) end
  table.sort(codes)
  local parts = {}
  for _, status in ipairs(codes) do
    table.insert(parts, string.format(" status_%d=%d", status, by_status[status]))
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f no_retry_after=%d%s\n",
    summary.requests, secs, summary.requests / secs, bad,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, missing, table.concat(parts)))
end

return report
