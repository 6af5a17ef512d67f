-- Shared by every wrk script of the benchmark (loaded with dofile; wrk runs each script
-- once in the main Lua state, for setup and done, and once per thread).
--
-- Script arguments (after `--` on the wrk command line): the data directory written by
-- bench/loader.py, then what each script documents. Every thread counts the answers it
-- expected (n_ok) and the others (n_bad, with one sample); done() prints one line
-- "BENCH_RESULT {json}" that bench/run.py parses.

local M = {}

function M.read_tsv(path)
  local rows = {}
  for line in io.lines(path) do
    if line ~= "" then
      local fields = {}
      for field in line:gmatch("[^\t]+") do
        fields[#fields + 1] = field
      end
      rows[#rows + 1] = fields
    end
  end
  assert(#rows > 0, "no rows in " .. path)
  return rows
end

-- The thread's own slice of a big file (written by loader.write_data_files for scripts
-- that run one thread per connection), or the whole file when there is no slice.
function M.read_slice(dir, name)
  local path = dir .. "/slices/" .. name .. "." .. tostring(tid) .. ".tsv"
  local f = io.open(path, "r")
  if f then
    f:close()
    return M.read_tsv(path)
  end
  return M.read_tsv(dir .. "/" .. name .. ".tsv")
end

function M.pick(rows)
  return rows[math.random(#rows)]
end

-- Counters live in the thread's globals, where thread:get() reads them.
function M.init_counters(names)
  n_ok, n_bad, bad_sample = 0, 0, ""
  for _, name in ipairs(names or {}) do
    _G[name] = 0
  end
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function M.good()
  n_ok = n_ok + 1
end

function M.bad(status, body)
  n_bad = n_bad + 1
  if bad_sample == "" then
    bad_sample = tostring(status) .. " " .. string.sub(body or "", 1, 120)
  end
end

-- Count an answer as expected when its body starts with `prefix`.
function M.expect_prefix(status, body, prefix)
  if status == 200 and string.sub(body, 1, #prefix) == prefix then
    M.good()
  else
    M.bad(status, body)
  end
end

function M.handler(key, action_and_params)
  return wrk.format("GET", "/stubs/handler_api.php?api_key=" .. key .. "&action=" .. action_and_params)
end

function M.sms_push(phone, provider_key, sms_id)
  local body = '{"action":"PUSH_SMS","key":"' .. provider_key .. '","smsId":'
    .. string.format("%.0f", sms_id) .. ',"phone":' .. phone
    .. ',"phoneFrom":"Telegram","text":"Telegram code: ' .. math.random(10000, 99999)
    .. '. Do not give this code to anyone"}'
  return wrk.format("POST", "/agent/api/sms", { ["Content-Type"] = "application/json" }, body)
end

-- ------------------------------------------------------------------ setup and done
local threads = {}

function M.setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

-- `extra`: names of further thread counters to add up and report.
function M.make_done(extra)
  return function(summary, latency, requests)
    local totals = { n_ok = 0, n_bad = 0 }
    for _, name in ipairs(extra or {}) do
      totals[name] = 0
    end
    local sample = ""
    for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
        totals[name] = totals[name] + (thread:get(name) or 0)
      end
      local s = thread:get("bad_sample")
      if sample == "" and s and s ~= "" then
        sample = s
      end
    end
    local e = summary.errors
    local parts = {
      '"duration_us":' .. summary.duration,
      '"requests":' .. summary.requests,
      '"bytes":' .. summary.bytes,
      '"errors":{"connect":' .. e.connect .. ',"read":' .. e.read .. ',"write":' .. e.write
        .. ',"status":' .. e.status .. ',"timeout":' .. e.timeout .. "}",
      '"latency_us":{"p50":' .. latency:percentile(50) .. ',"p90":' .. latency:percentile(90)
        .. ',"p99":' .. latency:percentile(99) .. ',"max":' .. latency.max
        .. ',"mean":' .. string.format("%.1f", latency.mean) .. "}",
      '"bad_sample":' .. json_string(sample),
      '"threads":' .. #threads,
    }
    local counters = {}
    for name, value in pairs(totals) do
      counters[#counters + 1] = '"' .. name .. '":' .. string.format("%.0f", value)
    end
    parts[#parts + 1] = '"counters":{' .. table.concat(counters, ",") .. "}"
    io.write("BENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
  end
end

return M
