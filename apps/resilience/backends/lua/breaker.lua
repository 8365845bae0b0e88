-- One breaker's shared record, changed atomically: merge a batch, read, grant a probe, report a probe, reset.
-- The same rules as apps/resilience/machine.py (the contract suite runs both).
-- KEYS[1] state hash, KEYS[2] count-window outcome string, KEYS[3] time-window bucket hash (one hash tag).
-- ARGV: op, now, window kind, window size, bucket width, failure %, slow % (0 none), minimum calls,
--       consecutive threshold (0 rates), open s, multiplier, max open s, probes, probe timeout s, idle ttl s,
--       then per op: merge -> calls, outcomes, had_success, trailing failures, failures, then
--       (bucket, calls, failures, slow) groups;
--       report -> failed (0/1).
-- Returns {granted, state, open_until, open_count, calls, failures, slow, consecutive, from, to, reason,
--          and the calls, failures, slow, consecutive at the transition};
-- floats travel as strings because Redis truncates Lua numbers to integers.
local op = ARGV[1]
local now = tonumber(ARGV[2])
local kind, size, width = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local rate_pct, slow_pct, min_calls = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local consec_threshold = tonumber(ARGV[9])
local open_s, mult, max_open_s = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local probes, probe_timeout, ttl = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])

local h = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'open_count', 'granted', 'succeeded', 'grant_at', 'consec')
local state = h[1] or 'closed'
local open_until = tonumber(h[2]) or 0
local open_count = tonumber(h[3]) or 0
local granted = tonumber(h[4]) or 0
local succeeded = tonumber(h[5]) or 0
local grant_at = tonumber(h[6]) or 0
local consec = tonumber(h[7]) or 0
local t_from, t_to, t_reason = '', '', ''

local function figures()
  if kind == 'count' then
    local s = redis.call('GET', KEYS[2]) or ''
    local _, f = string.gsub(s, '[fF]', '')
    local _, sl = string.gsub(s, '[sF]', '')
    return #s, f, sl
  end
  local oldest = math.floor(now / width) - math.ceil(size / width) + 1
  local all = redis.call('HGETALL', KEYS[3])
  local c, f, sl, stale = 0, 0, 0, {}
  for i = 1, #all, 2 do
    local field, n = all[i], tonumber(all[i + 1])
    local bucket = tonumber(string.sub(field, 3))
    if bucket < oldest then
      stale[#stale + 1] = field
    else
      local which = string.sub(field, 1, 1)
      if which == 'c' then c = c + n elseif which == 'f' then f = f + n else sl = sl + n end
    end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[3], unpack(stale)) end
  return c, f, sl
end

local function open_duration(count)
  local d = open_s * math.pow(mult, math.max(0, count - 1))
  return math.min(d, math.max(max_open_s, open_s))
end

local function go_open(reason)
  t_from, t_to, t_reason = state, 'open', reason
  state = 'open'
  open_count = open_count + 1
  open_until = now + open_duration(open_count)
  granted, succeeded = 0, 0
end

local function clear_window()
  redis.call('DEL', KEYS[2], KEYS[3])
  consec = 0
end

local granted_now = 0
local tc, tf, ts, tk = 0, 0, 0, 0

local function go_open_with_figures(reason)
  local c, f, sl = figures()
  tc, tf, ts, tk = c, f, sl, consec
  go_open(reason)
end

if op == 'merge' and state == 'closed' and tonumber(ARGV[16]) > 0 then
  if ARGV[18] == '1' then consec = tonumber(ARGV[19]) else consec = consec + tonumber(ARGV[20]) end
  if kind == 'count' then
    local s = (redis.call('GET', KEYS[2]) or '') .. ARGV[17]
    if #s > size then s = string.sub(s, #s - size + 1) end
    redis.call('SET', KEYS[2], s, 'EX', ttl)
  else
    for i = 21, #ARGV, 4 do
      redis.call('HINCRBY', KEYS[3], 'c:' .. ARGV[i], ARGV[i + 1])
      redis.call('HINCRBY', KEYS[3], 'f:' .. ARGV[i], ARGV[i + 2])
      redis.call('HINCRBY', KEYS[3], 's:' .. ARGV[i], ARGV[i + 3])
    end
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  local calls, failures, slow = figures()
  if consec_threshold > 0 then
    if consec >= consec_threshold then
      go_open_with_figures(consec .. ' consecutive failures (threshold ' .. consec_threshold .. ')')
    end
  elseif calls >= min_calls then
    if failures * 100 >= rate_pct * calls then
      go_open_with_figures(string.format('failure rate %.2f%% >= %d%%', 100 * failures / calls, rate_pct))
    elseif slow_pct > 0 and slow * 100 >= slow_pct * calls then
      go_open_with_figures(string.format('slow-call rate %.2f%% >= %d%%', 100 * slow / calls, slow_pct))
    end
  end
elseif op == 'probe' then
  if state == 'open' and now >= open_until then
    tc, tf, ts = figures()
    tk = consec
    t_from, t_to, t_reason = 'open', 'half_open', 'open for ' .. open_duration(open_count) .. ' s'
    state, granted, succeeded = 'half_open', 0, 0
  end
  if state == 'half_open' then
    if granted >= probes and now - grant_at >= probe_timeout then granted = succeeded end
    if granted < probes then
      granted, grant_at, granted_now = granted + 1, now, 1
    end
  end
-- A success counts only against a ticket still out (the report API takes `probe` from the caller).
elseif op == 'report' and state == 'half_open' and (ARGV[16] == '1' or succeeded < granted) then
  local failed = ARGV[16] == '1'
  tc, tf, ts, tk = succeeded + 1, failed and 1 or 0, 0, 0
  if failed then
    go_open('half-open probe failed')
  else
    succeeded = succeeded + 1
    if succeeded >= probes then
      t_from, t_to, t_reason = 'half_open', 'closed', probes .. ' probe(s) succeeded'
      state, open_count, open_until, granted, succeeded = 'closed', 0, 0, 0, 0
      clear_window()
    end
  end
elseif op == 'reset' then
  tc, tf, ts = figures()
  tk = consec
  t_from, t_to, t_reason = state, 'closed', 'reset by an operator'
  state, open_count, open_until, granted, succeeded = 'closed', 0, 0, 0, 0
  clear_window()
end

if op ~= 'read' then
  redis.call('HSET', KEYS[1], 'state', state, 'open_until', tostring(open_until), 'open_count', open_count,
    'granted', granted, 'succeeded', succeeded, 'grant_at', tostring(grant_at), 'consec', consec)
  redis.call('EXPIRE', KEYS[1], ttl)
end
local calls, failures, slow = figures()
return {granted_now, state, tostring(open_until), open_count, calls, failures, slow, consec,
        t_from, t_to, t_reason, tc, tf, ts, tk}
