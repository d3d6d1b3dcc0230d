-- Shared by every bench script: counts non-2xx responses per thread and, when
-- wrk finishes, prints one machine-readable line that bench/run.sh parses.
--   BENCH requests=.. duration_s=.. rps=.. non2xx=.. connect=.. read=..
--         write=.. timeout=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
local report = {}

local threads = {}

function report.setup(thread)
  table.insert(threads, thread)
end

-- Call from each script's response(): wrk itself only counts statuses > 399.
function report.count(status)
  if status < 200 or status > 299 then
    non2xx = (non2xx or 0) + 1
  end
end

function report.done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, secs, summary.requests / secs, bad,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end

return report
