-- wrk script: cycles through the request paths in the file named by PATHS_FILE and
-- prints a JSON line of figures when done. Each thread starts at a different offset.
local paths = {}
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("offset", counter * 7919)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(os.getenv("PATHS_FILE"), "r"))
   for line in file:lines() do
      if #line > 0 then table.insert(paths, line) end
   end
   file:close()
   position = tonumber(wrk.thread:get("offset")) or 0
   bad = 0
end

function request()
   position = position + 1
   return wrk.format("GET", paths[(position % #paths) + 1])
end

function response(status, headers, body)
   if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
   local non_ok = 0
   for _, thread in ipairs(threads) do
      non_ok = non_ok + (tonumber(thread:get("bad")) or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, ' ..
      '"non_2xx": %d, "socket_errors": %d}\n',
      summary.requests, summary.duration / 1e6,
      latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
      non_ok, errors.connect + errors.read + errors.write + errors.timeout))
end
