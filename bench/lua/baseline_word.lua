-- Baseline: GET /word on bench/baseline_app.py, a fixed word (the HTTP stack's limit).
-- Arguments: <data dir> (unused)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")

setup = c.setup

function init(args)
  c.init_counters()
end

function request()
  return wrk.format("GET", "/word")
end

function response(status, headers, body)
  c.expect_prefix(status, body, "OK")
end

done = c.make_done()
