-- getStatus of a random live activation, asked with its owner's key.
-- Arguments: <data dir>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local rows

setup = c.setup

function init(args)
  c.init_counters()
  rows = c.read_tsv(args[1] .. "/status.tsv") -- activation id, owner's key
end

function request()
  local r = c.pick(rows)
  return c.handler(r[2], "getStatus&id=" .. r[1])
end

function response(status, headers, body)
  c.expect_prefix(status, body, "STATUS_")
end

done = c.make_done()
