-- wrk script: POST the request body in $BODY_FILE, with $AUTH_HEADER (when set) as the
-- Authorization header. Sorts the answers into ok (HTTP 200 without "errors"), refused
-- (RATE_LIMITED: an answer the client is told to retry) and errors (anything else), and
-- prints one JSON line, also written to $WRK_JSON_OUT when set.
-- $WRK_DELAY_MS, when set, makes each connection wait that long between requests (a
-- paced client rather than a flood).
local threads = {}
function setup(thread) table.insert(threads, thread) end
ok, refused, errors = 0, 0, 0
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "")

function init(args)
  local path = os.getenv("BODY_FILE") or error("BODY_FILE not set")
  local f = assert(io.open(path))
  wrk.body = (f:read("*a"):gsub("%s+$", ""))
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("AUTH_HEADER")
  if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
end

if delay_ms then
  function delay() return delay_ms end
end

function response(status, headers, body)
  if status == 200 and not body:find('"errors"', 1, true) then
    ok = ok + 1
  elseif body:find('RATE_LIMITED', 1, true) then
    refused = refused + 1
  else
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local n_ok, n_refused, n_errors = 0, 0, 0
  for _, t in ipairs(threads) do
    n_ok = n_ok + (t:get("ok") or 0)
    n_refused = n_refused + (t:get("refused") or 0)
    n_errors = n_errors + (t:get("errors") or 0)
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local out = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"ok_rps":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,'
      .. '"ok":%d,"refused":%d,"errors":%d,"socket_errors":%d}',
    summary.requests, seconds, summary.requests / seconds, n_ok / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    n_ok, n_refused, n_errors, e.connect + e.read + e.write + e.timeout)
  print(out)
  local path = os.getenv("WRK_JSON_OUT")
  if path then local f = io.open(path, "w"); f:write(out, "\n"); f:close() end
end
