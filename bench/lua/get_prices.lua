-- getPrices with a random customer's key.
-- Arguments: <data dir> <filter>, filter = "full" (no filter), "service" (a random popular
-- service, every country) or "service_country" (a random purchase target).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local customers, services, targets, filter

setup = c.setup

function init(args)
  c.init_counters()
  customers = c.read_tsv(args[1] .. "/customers.tsv")
  services = c.read_tsv(args[1] .. "/services.tsv")
  targets = c.read_tsv(args[1] .. "/targets.tsv")
  filter = args[2] or "full"
end

function request()
  local key = c.pick(customers)[1]
  if filter == "service" then
    return c.handler(key, "getPrices&service=" .. c.pick(services)[1])
  elseif filter == "service_country" then
    local t = c.pick(targets)
    return c.handler(key, "getPrices&service=" .. t[1] .. "&country=" .. t[2])
  end
  return c.handler(key, "getPrices")
end

function response(status, headers, body)
  c.expect_prefix(status, body, "{")
end

done = c.make_done()
