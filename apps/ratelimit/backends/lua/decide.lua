-- One atomic decision for every limit that applies to a request; the admission rules of
-- apps/ratelimit/algorithms.py, which computes the reported figures from the states returned here.
-- KEYS[i]: the state key of limit i. All keys of a call share one {hash tag}: one Redis Cluster slot.
-- ARGV[1]: now in microseconds, or "" for the Redis server's clock (one clock for all web hosts).
-- ARGV[2]: "1" for a dry run (decide, store nothing), else "0".
-- ARGV[3 + 5*(i-1) ..]: algorithm (1 GCRA, 2 sliding window, 3 moving window), capacity, interval_us,
-- cost, enforce (1/0).
-- Returns {now_us, state_1, ..., state_n}: each state as it was before this call ("" when none); a moving
-- window's state is its log of admission times inside the window, joined by ':'.
-- New states are written, with a TTL after which they no longer matter, only when no enforcing limit
-- refused, the call is not a dry run and the hit costs something: a refused request consumes nothing.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local dry_run = ARGV[2] == '1'

local n = #KEYS
local before, after, ttl_ms, allowed, costs, counts = {}, {}, {}, {}, {}, {}
local admitted = true
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local algorithm = tonumber(ARGV[a])
  local capacity = tonumber(ARGV[a + 1])
  local interval = tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  local enforce = ARGV[a + 4] == '1'
  costs[i] = cost
  local ok
  if algorithm == 3 then
    -- Entries at or before now - interval have left the window (the reference keeps t > now - interval).
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%d', now - interval))
    local entries = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
    local stamps = {}
    for j = 2, #entries, 2 do
      stamps[#stamps + 1] = string.format('%d', tonumber(entries[j]))
    end
    before[i] = table.concat(stamps, ':')
    counts[i] = #stamps
    ok = #stamps + cost <= capacity
    ttl_ms[i] = math.ceil(interval / 1000)
  else
    local raw = redis.call('GET', KEYS[i])
    before[i] = raw or ''
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
  end
  allowed[i] = ok
  if enforce and not ok then
    admitted = false
  end
end

if admitted and not dry_run then
  for i = 1, n do
    if allowed[i] and costs[i] > 0 then
      if after[i] then
        redis.call('SET', KEYS[i], after[i], 'PX', math.max(1, ttl_ms[i]))
      else
        -- Members are unique: at one instant the count only grows, so (now, position) never repeats.
        local members, score = {}, string.format('%d', now)  -- never tostring: it keeps 14 digits
        for j = 1, costs[i] do
          members[#members + 1] = score
          members[#members + 1] = string.format('%d:%d', now, counts[i] + j)
        end
        redis.call('ZADD', KEYS[i], unpack(members))
        redis.call('PEXPIRE', KEYS[i], math.max(1, ttl_ms[i]))
      end
    end
  end
end

local reply = {string.format('%d', now)}
for i = 1, n do
  reply[i + 1] = before[i]
end
return reply
