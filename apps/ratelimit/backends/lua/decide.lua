-- One atomic decision for every limit that applies to a request; the admission rules of
-- apps/ratelimit/algorithms.py, which computes the reported figures from the states returned here.
-- KEYS[i]: the state key of limit i. All keys of a call share one {hash tag}: one Redis Cluster slot.
-- ARGV[1]: now in microseconds, or "" for the Redis server's clock (one clock for all web hosts).
-- ARGV[2 + 5*(i-1) ..]: algorithm (1 GCRA, 2 sliding window), capacity, interval_us, cost, enforce (1/0).
-- Returns {now_us, state_1, ..., state_n}: each state as it was before this call ("" when none).
-- New states are written, with a TTL after which they no longer matter, only when no enforcing limit
-- refused: a refused request consumes nothing.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end

local n = #KEYS
local before, after, ttl_ms, allowed = {}, {}, {}, {}
local admitted = true
for i = 1, n do
  local a = 2 + (i - 1) * 5
  local algorithm = tonumber(ARGV[a])
  local capacity = tonumber(ARGV[a + 1])
  local interval = tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  local enforce = ARGV[a + 4] == '1'
  local raw = redis.call('GET', KEYS[i])
  before[i] = raw or ''
  local ok
  if algorithm == 1 then
    local tat = now
    if raw then tat = math.max(tonumber(raw), now) end
    local new_tat = tat + cost * interval
    ok = now >= new_tat - capacity * interval
    after[i] = string.format('%d', new_tat)
    ttl_ms[i] = math.ceil((new_tat - now) / 1000)
  else
    local start = now - (now % interval)
    local current, previous = 0, 0
    if raw then
      local s, c, p = string.match(raw, '^(%d+):(%d+):(%d+)$')
      s, c, p = tonumber(s), tonumber(c), tonumber(p)
      if s == start then
        current, previous = c, p
      elseif s == start - interval then
        previous = c
      end
    end
    local elapsed = now - start
    local weighted_previous = previous * (interval - elapsed) / interval
    ok = weighted_previous + current + cost <= capacity
    after[i] = string.format('%d:%d:%d', start, current + cost, previous)
    ttl_ms[i] = math.ceil((start + 2 * interval - now) / 1000)
  end
  allowed[i] = ok
  if enforce and not ok then
    admitted = false
  end
end

if admitted then
  for i = 1, n do
    if allowed[i] then
      redis.call('SET', KEYS[i], after[i], 'PX', math.max(1, ttl_ms[i]))
    end
  end
end

local reply = {string.format('%d', now)}
for i = 1, n do
  reply[i + 1] = before[i]
end
return reply
