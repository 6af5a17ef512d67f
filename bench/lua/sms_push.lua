-- PUSH_SMS to /agent/api/sms with the owning provider's key and a unique smsId: half to
-- numbers with a live activation (the SMS is matched: the activation gets a code), half
-- to numbers without one (the SMS is kept unmatched).
-- Arguments: <data dir> <smsId base> (ids are base + thread * 1e9 + sequence)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "common.lua")
local live, free, base, seq

setup = c.setup

function init(args)
  c.init_counters({ "n_live", "n_free" })
  live = c.read_tsv(args[1] .. "/live_phones.tsv")
  free = c.read_tsv(args[1] .. "/free_phones.tsv")
  base = tonumber(args[2]) + tid * 1e9
  seq = 0
end

function request()
  seq = seq + 1
  local r
  if seq % 2 == 0 then
    r = c.pick(live)
    n_live = n_live + 1
  else
    r = c.pick(free)
    n_free = n_free + 1
  end
  return c.sms_push(r[1], r[2], base + seq)
end

function response(status, headers, body)
  if status == 200 and body == '{"status":"SUCCESS"}' then
    c.good()
  else
    c.bad(status, body)
  end
end

done = c.make_done({ "n_live", "n_free" })
