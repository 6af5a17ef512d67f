-- Baseline: GET /db?id=<random live activation id> on bench/baseline_app.py: one
-- primary-key read and one single-row INSERT + COMMIT (the database stack's limit).
-- Arguments: <data dir>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local rows

setup = c.setup

function init(args)
  c.init_counters()
  rows = c.read_tsv(args[1] .. "/status.tsv")
end

function request()
  return wrk.format("GET", "/db?id=" .. c.pick(rows)[1])
end

function response(status, headers, body)
  c.expect_prefix(status, body, "OK:")
end

done = c.make_done()
