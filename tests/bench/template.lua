-- template.lua — wrk script of tests/bench_serve.sh: POSTs request bodies made from templates
-- (tests/bench/serve_gen.py templates), each request with a fresh 8-character tag in place of
-- every `@N@`, so every request carries new access keys and new event ids (no duplicates).
-- Request c of a thread uses template c % T with the tag RUN TID (c // T): the events of one key
-- (one tag) are spread over T consecutive requests, as a sender of single events would.
-- usage: wrk -s template.lua URL -- RUN TOKEN CONTENT_TYPE FILE...
--   RUN: 0-15, distinct per run against one Redis; TOKEN: ingest token.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  run = tonumber(args[1])
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = args[3]
  templates = {}
  for i = 4, #args do
    local f = assert(io.open(args[i], "rb"))
    local text = f:read("*a")
    f:close()
    -- split once at every @N@: a request is then one table.concat with the tag as separator
    local parts, pos = {}, 1
    while true do
      local a, b = string.find(text, "@N@", pos, true)
      if not a then break end
      parts[#parts + 1] = string.sub(text, pos, a - 1)
      pos = b + 1
    end
    parts[#parts + 1] = string.sub(text, pos)
    templates[#templates + 1] = parts
  end
  n_tmpl = #templates
end

function request()
  local t = counter % n_tmpl
  local tag = string.format("%X%X%06X", run % 16, tid % 16, math.floor(counter / n_tmpl) % 0x1000000)
  counter = counter + 1
  local body = table.concat(templates[t + 1], tag)
  return wrk.format(nil, nil, nil, body)
end
