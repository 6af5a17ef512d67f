-- Purchase + cancel cycles through an SMSHub agent: getNumber of one (service, country)
-- restricted to the agent provider (providerIds), then setStatus 8 on the activation it
-- bought. Each purchase holds the money, calls the agent's GET_NUMBER over HTTP, and attaches
-- the number; each cancel writes a FINISH_ACTIVATION 4 to the outbox, which a worker delivers.
-- The server must run with OTPHUB_EARLY_CANCEL=0.
--
-- One connection per wrk thread (run with -t N -c N), as in purchase_cancel.lua.
-- Arguments: <data dir> <query: service=..&country=..&providerIds=..>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local customers, query
local pending_id, pending_key, last_kind, last_key

setup = c.setup

function init(args)
  c.init_counters({ "n_buy", "n_cancel" })
  customers = c.read_tsv(args[1] .. "/customers.tsv")
  query = args[2]
end

function request()
  if pending_id then
    last_kind = "cancel"
    return c.handler(pending_key, "setStatus&status=8&id=" .. pending_id)
  end
  last_kind, last_key = "buy", c.pick(customers)[1]
  return c.handler(last_key, "getNumber&" .. query)
end

function response(status, headers, body)
  if last_kind == "buy" then
    local id = string.match(body, "^ACCESS_NUMBER:(%d+):%d+$")
    if status == 200 and id then
      pending_id, pending_key = id, last_key
      n_buy = n_buy + 1
      c.good()
    else
      c.bad(status, body)
    end
  else
    pending_id = nil -- answered: never cancel twice, even after a refusal
    if status == 200 and body == "ACCESS_CANCEL" then
      n_cancel = n_cancel + 1
      c.good()
    else
      c.bad(status, body)
    end
  end
end

done = c.make_done({ "n_buy", "n_cancel" })
