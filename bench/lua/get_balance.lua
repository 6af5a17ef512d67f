-- getBalance with a random customer's key.
-- Arguments: <data dir>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local customers

setup = c.setup

function init(args)
  c.init_counters()
  customers = c.read_tsv(args[1] .. "/customers.tsv")
end

function request()
  return c.handler(c.pick(customers)[1], "getBalance")
end

function response(status, headers, body)
  c.expect_prefix(status, body, "ACCESS_BALANCE:")
end

done = c.make_done()
