-- Purchase + cancel cycles: getNumber (random customer, random (service, country) with
-- plenty of stock), then setStatus 8 on the activation it bought, with the same key.
-- The server must run with OTPHUB_EARLY_CANCEL=0 so that the cancel is allowed at once.
--
-- The cancel needs the id from the previous answer, so each wrk thread drives exactly one
-- connection (run with -t N -c N): the thread's state is the connection's state.
-- Arguments: <data dir> [<service> <country>] (one fixed target instead of targets.tsv:
-- the purchase through a local agent).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local customers, targets
local pending_id, pending_key, last_kind, last_key

setup = c.setup

function init(args)
  c.init_counters({ "n_buy", "n_cancel" })
  customers = c.read_tsv(args[1] .. "/customers.tsv")
  if args[2] then
    targets = { { args[2], args[3] } }
  else
    targets = c.read_tsv(args[1] .. "/targets.tsv")
  end
end

function request()
  if pending_id then
    last_kind = "cancel"
    return c.handler(pending_key, "setStatus&status=8&id=" .. pending_id)
  end
  local t = c.pick(targets)
  last_kind, last_key = "buy", c.pick(customers)[1]
  return c.handler(last_key, "getNumber&service=" .. t[1] .. "&country=" .. t[2])
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
