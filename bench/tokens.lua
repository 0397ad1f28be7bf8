-- wrk script: spreads requests over many tokens (never one hot token).
-- Arguments after `--`: MODE TOKENS_FILE [BAD_FILE]
--   bearer   GET <path> with Authorization: Bearer T
--   original GET <path> with X-Original-URI: /service?token=T   (a gateway's check)
--   mix      like bearer, with 10% bad tokens (wrong checksum, unknown, revoked)
--   cookie   GET <path> with Cookie: <TOKENS_FILE's first line> (a signed-in page)
--   agents   like bearer, each request with a User-Agent never sent before (a new usage pair)
--   apikey   GET <path> with Authorization: Api-Key T (the Django REST Framework peer)
local mode, tokens, bad = "bearer", {}, {}
local threads, prefix, sent = 0, "", 0

-- In the main state, once a thread: each thread's agents differ from the others'.
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local function read(file, into)
  for line in io.lines(file) do
    if #line > 0 then into[#into + 1] = line end
  end
end

function init(args)
  mode = args[1] or "bearer"
  read(args[2], tokens)
  if args[3] then read(args[3], bad) end
  math.randomseed(os.time() + math.random(1000000) + (thread_number or 0))
  -- A run of its own (the warm-up is another run): agents never repeat across runs.
  prefix = string.format("bench/%d-%d-%d", os.time(), thread_number or 0, math.random(1000000000))
end

function request()
  if mode == "cookie" then
    return wrk.format("GET", wrk.path, { ["Cookie"] = tokens[1] })
  end
  local token = tokens[math.random(#tokens)]
  if mode == "mix" and #bad > 0 and math.random(10) == 1 then
    token = bad[math.random(#bad)]
  end
  if mode == "agents" then
    sent = sent + 1
    return wrk.format("GET", wrk.path, {
      ["Authorization"] = "Bearer " .. token, ["User-Agent"] = prefix .. "-" .. sent })
  end
  if mode == "apikey" then
    return wrk.format("GET", wrk.path, { ["Authorization"] = "Api-Key " .. token })
  end
  if mode == "original" then
    return wrk.format("GET", wrk.path, { ["X-Original-URI"] = "/service/orders?token=" .. token })
  end
  return wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. token })
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d socket_errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors, summary.errors.status))
end
