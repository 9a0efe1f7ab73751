-- wrk script for `make bench`: wrk -s bench/tasks.lua URL -- <list|get|create|update|mixed> <pairs file>
-- The pairs file holds "user_id task_id [token]" lines of seeded tasks; with a token, every request of that user
-- carries it as a bearer token. Prints one JSON line (latencies in us).
local workload, users, pairs, tokens
errors = 0

function init(args)
  workload, users, pairs, tokens = args[1], {}, {}, {}
  for line in io.lines(args[2]) do
    local u, t, tok = line:match("^(%S+)%s+(%S+)%s*(%S*)$")
    if u then
      pairs[#pairs + 1] = { u, t }
      if not tokens[u] then users[#users + 1] = u end
      tokens[u] = tok
    end
  end
  math.randomseed(os.time())
end

local function headers(user, json)
  local h = json and { ["Content-Type"] = "application/json" } or {}
  if tokens[user] ~= "" then h["Authorization"] = "Bearer " .. tokens[user] end
  return h
end
local function pick(list) return list[math.random(#list)] end
local ops = {}
function ops.list() local u = pick(users); return wrk.format("GET", "/users/" .. u .. "/tasks?limit=20", headers(u)) end
function ops.get()
  local p = pick(pairs)
  return wrk.format("GET", "/users/" .. p[1] .. "/tasks/" .. p[2], headers(p[1]))
end
function ops.create()
  local u = pick(users)
  return wrk.format("POST", "/users/" .. u .. "/tasks", headers(u, true), '{"title":"Bench task","description":"x"}')
end
function ops.update()
  local p = pick(pairs)
  return wrk.format("PATCH", "/users/" .. p[1] .. "/tasks/" .. p[2], headers(p[1], true),
    '{"title":"Updated","is_completed":true}')
end
function ops.mixed()
  local r = math.random(100)
  if r <= 40 then return ops.list() elseif r <= 80 then return ops.get()
  elseif r <= 90 then return ops.create() else return ops.update() end
end

function request() return ops[workload]() end
function response(status) if status < 200 or status > 299 then errors = errors + 1 end end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("errors") end
  io.write(string.format('{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    bad + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
