-- A mixed workload, by share of requests:
--   90%  getStatus of a random live activation (owner's key)
--    5%  purchases: getNumber, and setStatus 8 of the activation bought by this connection's
--        previous getNumber (so about 2.5% each; the cancel keeps stock and holds level)
--    5%  the rest: 2% getBalance, 1% getPrices for one service and country, 2% PUSH_SMS
--        (half to numbers with a live activation)
-- One connection per wrk thread (run with -t N -c N), as for purchase_cancel.lua.
-- Arguments: <data dir> <smsId base>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local COUNTERS = { "n_status", "n_buy", "n_cancel", "n_balance", "n_prices", "n_push" }
local status_rows, customers, targets, live, free, base, seq
local pending_id, pending_key, last_kind, last_key

setup = c.setup

function init(args)
  c.init_counters(COUNTERS)
  status_rows = c.read_slice(args[1], "status")
  customers = c.read_tsv(args[1] .. "/customers.tsv")
  targets = c.read_tsv(args[1] .. "/targets.tsv")
  live = c.read_slice(args[1], "live_phones")
  free = c.read_slice(args[1], "free_phones")
  base = tonumber(args[2]) + tid * 1e9
  seq = 0
end

function request()
  local r = math.random(100)
  if r <= 90 then
    local a = c.pick(status_rows)
    last_kind = "status"
    return c.handler(a[2], "getStatus&id=" .. a[1])
  elseif r <= 95 then
    if pending_id then
      last_kind = "cancel"
      return c.handler(pending_key, "setStatus&status=8&id=" .. pending_id)
    end
    local t = c.pick(targets)
    last_kind, last_key = "buy", c.pick(customers)[1]
    return c.handler(last_key, "getNumber&service=" .. t[1] .. "&country=" .. t[2])
  elseif r <= 97 then
    last_kind = "balance"
    return c.handler(c.pick(customers)[1], "getBalance")
  elseif r <= 98 then
    local t = c.pick(targets)
    last_kind = "prices"
    return c.handler(c.pick(customers)[1], "getPrices&service=" .. t[1] .. "&country=" .. t[2])
  end
  seq = seq + 1
  local p = (seq % 2 == 0) and c.pick(live) or c.pick(free)
  last_kind = "push"
  return c.sms_push(p[1], p[2], base + seq)
end

local function count(name, ok, status, body)
  if ok then
    _G[name] = _G[name] + 1
    c.good()
  else
    c.bad(status, body)
  end
end

function response(status, headers, body)
  local good = status == 200
  if last_kind == "status" then
    count("n_status", good and string.sub(body, 1, 7) == "STATUS_", status, body)
  elseif last_kind == "buy" then
    local id = string.match(body, "^ACCESS_NUMBER:(%d+):%d+$")
    if good and id then
      pending_id, pending_key = id, last_key
    end
    count("n_buy", good and id ~= nil, status, body)
  elseif last_kind == "cancel" then
    pending_id = nil
    count("n_cancel", good and body == "ACCESS_CANCEL", status, body)
  elseif last_kind == "balance" then
    count("n_balance", good and string.sub(body, 1, 15) == "ACCESS_BALANCE:", status, body)
  elseif last_kind == "prices" then
    count("n_prices", good and string.sub(body, 1, 1) == "{", status, body)
  else
    count("n_push", good and body == '{"status":"SUCCESS"}', status, body)
  end
end

done = c.make_done(COUNTERS)
