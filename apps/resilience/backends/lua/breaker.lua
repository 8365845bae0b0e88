-- One breaker's shared record, changed atomically: merge a batch, read, admit a gated call, grant a probe,
-- report a probe, reset. The same rules as apps/resilience/machine.py (the contract suite runs both).
-- KEYS[1] state hash, KEYS[2] count-window outcome string, KEYS[3] time-window bucket hash,
-- KEYS[4] probe tickets still out (ticket -> granted at) (one hash tag), KEYS[5] the breaker's channel,
-- on which every transition is published (same hash tag; processes listen with a pattern),
-- KEYS[6] gate tickets out (ticket -> granted at), KEYS[7] each process's calls in flight started before
-- the gate (process -> 'calls seq at').
-- ARGV: op, now, window kind, window size, bucket width, failure threshold and slow threshold in hundredths
--       of a percent (0 none), minimum calls (already capped to a count window), consecutive threshold
--       (0 rates), open s, multiplier, max open s, probes, probe (and gate) ticket timeout s, idle ttl s,
--       half-open mode ('rates' or 'first_failure'), max wait in half-open s (0 none), automatic transition
--       (0/1), metrics only (0/1), gate budget (0 never gates), then per op from ARGV[21]:
--       merge -> calls, outcomes, had_success, trailing failures, failures, gate ticket given back ('' none),
--                process ('' none), its calls in flight, its report seq, then (bucket, calls, failures, slow);
--       admit -> gate ticket, process, its calls in flight, its report seq;
--       probe -> ticket; report -> ticket ('' the oldest), outcome, slow (0/1); reset -> reason.
-- Returns {ok, state, open_until, open_count, calls, failures, slow, consecutive, from, to, reason,
--          the calls, failures, slow, consecutive at the transition, and gated (0/1)}; ok is a granted
--          ticket (admit, probe) or an accepted report (report);
-- floats travel as strings because Redis truncates Lua numbers to integers.
local op = ARGV[1]
local now = tonumber(ARGV[2])
local kind, size, width = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local rate_bp, slow_bp, min_calls = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local consec_threshold = tonumber(ARGV[9])
local open_s, mult, max_open_s = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local probes, probe_timeout, ttl = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local half_open_mode, max_wait = ARGV[16], tonumber(ARGV[17])
local automatic, metrics_only = ARGV[18] == '1', ARGV[19] == '1'
local gate_budget = tonumber(ARGV[20])

local h = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'open_count', 'since', 'pcalls', 'pfail', 'pslow',
  'consec', 'gated')
local state = h[1] or 'closed'
local open_until = tonumber(h[2]) or 0
local open_count = tonumber(h[3]) or 0
local since = tonumber(h[4]) or 0
local pcalls, pfail, pslow = tonumber(h[5]) or 0, tonumber(h[6]) or 0, tonumber(h[7]) or 0
local consec = tonumber(h[8]) or 0
local gated = h[9] == '1'
local was_gated = gated
local t_from, t_to, t_reason = '', '', ''
local tc, tf, ts, tk = 0, 0, 0, 0
local ok = 0
local changed = op ~= 'read'

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

local function fmt(bp)
  return string.format('%g', bp / 100)
end

local function rates_reason(calls, failures, slow, prefix)
  if failures * 10000 >= rate_bp * calls then
    return string.format('%sfailure rate %.2f%% >= %s%%', prefix, 100 * failures / calls, fmt(rate_bp))
  end
  if slow_bp > 0 and slow * 10000 >= slow_bp * calls then
    return string.format('%sslow-call rate %.2f%% >= %s%%', prefix, 100 * slow / calls, fmt(slow_bp))
  end
  return nil
end

local function open_duration(count)
  local d = open_s * math.pow(mult, math.max(0, count - 1))
  return math.min(d, math.max(max_open_s, open_s))
end

local function clear_probes()
  redis.call('DEL', KEYS[4])
  pcalls, pfail, pslow = 0, 0, 0
end

local function clear_gate()
  gated = false
  redis.call('DEL', KEYS[6], KEYS[7])
end

local function go_open(reason, c, f, sl, k)
  tc, tf, ts, tk = c, f, sl, k
  t_from, t_to, t_reason = state, 'open', reason
  state = 'open'
  open_count = open_count + 1
  open_until = now + open_duration(open_count)
  clear_probes()
  clear_gate()
end

local function go_half_open()
  local c, f, sl = figures()
  tc, tf, ts, tk = c, f, sl, consec
  t_from, t_to, t_reason = 'open', 'half_open', 'open for ' .. open_duration(open_count) .. ' s'
  state, since = 'half_open', now
  clear_probes()
  changed = true
end

local function go_closed(reason, c, f, sl, k)
  tc, tf, ts, tk = c, f, sl, k
  t_from, t_to, t_reason = state, 'closed', reason
  state, open_count, open_until = 'closed', 0, 0
  clear_probes()
  clear_gate()
  redis.call('DEL', KEYS[2], KEYS[3])
  consec = 0
end

-- How many more failures would open the closed breaker, if `limit` or fewer; nil if more (machine's
-- failures_to_open: a count window slides, a time window is taken as it is now).
local function failures_to_open(c, f, limit)
  local needed
  if consec_threshold > 0 then
    needed = consec_threshold - consec
  elseif kind == 'count' then
    local s = redis.call('GET', KEYS[2]) or ''
    local dropped = 0
    for n = 1, math.min(limit, size) do
      local total = c + n
      if total > size then
        local ch = string.byte(s, total - size)
        if ch == 102 or ch == 70 then dropped = dropped + 1 end  -- 'f', 'F'
      end
      local length = math.min(total, size)
      if length >= min_calls and (f + n - dropped) * 10000 >= rate_bp * length then return n end
    end
    return nil
  elseif rate_bp >= 10000 then
    if f < c then return nil end
    needed = math.max(1, min_calls - c)
  else
    needed = math.max(1, min_calls - c, math.ceil((rate_bp * c - 10000 * f) / (10000 - rate_bp)))
  end
  if needed <= limit then return needed end
  return nil
end

-- Gate call starts while the closed breaker has failures counted and the gate budget or fewer would open
-- it; returns that budget while gated. Leaving the gate forgets the processes' in-flight counts.
local function refresh_gate(c, f)
  local budget = nil
  local evidence = f
  if consec_threshold > 0 then evidence = consec end
  if state == 'closed' and not metrics_only and evidence > 0 then budget = failures_to_open(c, f, gate_budget) end
  gated = budget ~= nil
  if not gated then redis.call('DEL', KEYS[7]) end
  return budget
end

-- A process's calls in flight (newer reports only), and the gate ticket its outcome gives back.
local function register(ticket, process, calls, seq)
  if ticket ~= '' then redis.call('HDEL', KEYS[6], ticket) end
  if state ~= 'closed' or process == '' then return end
  local known = redis.call('HGET', KEYS[7], process)
  if known then
    local _, known_seq = string.match(known, '^(%S+) (%S+)')
    if tonumber(seq) <= tonumber(known_seq) then return end
  end
  redis.call('HSET', KEYS[7], process, calls .. ' ' .. seq .. ' ' .. tostring(now))
  redis.call('EXPIRE', KEYS[7], ttl)
end

-- The transitions time alone makes (machine.tick).
local function tick()
  if automatic and state == 'open' and now >= open_until then
    go_half_open()
  elseif state == 'half_open' and max_wait > 0 and now - since >= max_wait then
    go_open('half-open for ' .. string.format('%g', max_wait) .. ' s without a verdict', pcalls, pfail, pslow, 0)
    changed = true
  end
end

local function expire_tickets()
  local all = redis.call('HGETALL', KEYS[4])
  local live = {}
  for i = 1, #all, 2 do
    if now - tonumber(all[i + 1]) >= probe_timeout then
      redis.call('HDEL', KEYS[4], all[i])
    else
      live[#live + 1] = {all[i], tonumber(all[i + 1])}
    end
  end
  return live
end

if op == 'merge' then
  register(ARGV[26], ARGV[27], ARGV[28], ARGV[29])
end
if op == 'merge' and (state == 'closed' or metrics_only) and tonumber(ARGV[21]) > 0 then
  if ARGV[23] == '1' then consec = tonumber(ARGV[24]) else consec = consec + tonumber(ARGV[25]) end
  if kind == 'count' then
    local s = (redis.call('GET', KEYS[2]) or '') .. ARGV[22]
    if #s > size then s = string.sub(s, #s - size + 1) end
    redis.call('SET', KEYS[2], s, 'EX', ttl)
  else
    for i = 30, #ARGV, 4 do
      redis.call('HINCRBY', KEYS[3], 'c:' .. ARGV[i], ARGV[i + 1])
      redis.call('HINCRBY', KEYS[3], 'f:' .. ARGV[i], ARGV[i + 2])
      redis.call('HINCRBY', KEYS[3], 's:' .. ARGV[i], ARGV[i + 3])
    end
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  local calls, failures, slow = figures()
  if metrics_only then
    -- counted, never opened
  elseif consec_threshold > 0 then
    if consec >= consec_threshold then
      go_open(consec .. ' consecutive failures (threshold ' .. consec_threshold .. ')', calls, failures, slow, consec)
    end
  elseif calls >= min_calls then
    local reason = rates_reason(calls, failures, slow, '')
    if reason then go_open(reason, calls, failures, slow, consec) end
  end
  if t_to == '' then refresh_gate(calls, failures) end
elseif op == 'merge' or op == 'read' then
  if op == 'read' then tick() end
  if state == 'closed' then
    local c, f = figures()
    refresh_gate(c, f)
  end
elseif op == 'admit' then
  tick()
  if state == 'closed' then
    register('', ARGV[22], ARGV[23], ARGV[24])
    local c, f = figures()
    local budget = refresh_gate(c, f)
    if budget then
      local taken = 0
      local all = redis.call('HGETALL', KEYS[6])
      for i = 1, #all, 2 do
        if now - tonumber(all[i + 1]) >= probe_timeout then
          redis.call('HDEL', KEYS[6], all[i])
        else
          taken = taken + 1
        end
      end
      all = redis.call('HGETALL', KEYS[7])
      for i = 1, #all, 2 do
        local calls, _, at = string.match(all[i + 1], '^(%S+) (%S+) (%S+)$')
        if now - tonumber(at) >= probe_timeout then
          redis.call('HDEL', KEYS[7], all[i])
        else
          taken = taken + tonumber(calls)
        end
      end
      if taken < budget then
        redis.call('HSET', KEYS[6], ARGV[21], tostring(now))
        redis.call('EXPIRE', KEYS[6], ttl)
        ok = 1
      end
    end
  end
elseif op == 'probe' then
  tick()
  if state == 'open' and now >= open_until then go_half_open() end
  if state == 'half_open' then
    local live = expire_tickets()
    if #live + pcalls < probes then
      redis.call('HSET', KEYS[4], ARGV[21], tostring(now))
      redis.call('EXPIRE', KEYS[4], ttl)
      ok = 1
    end
  end
elseif op == 'report' then
  tick()
  if state == 'half_open' then
    local live = expire_tickets()
    local ticket = ARGV[21]
    local found = false
    if ticket == '' then
      local oldest = nil
      for _, t in ipairs(live) do
        if oldest == nil or t[2] < oldest[2] then oldest = t end
      end
      if oldest then ticket, found = oldest[1], true end
    else
      for _, t in ipairs(live) do
        if t[1] == ticket then found = true end
      end
    end
    if found then
      ok = 1
      redis.call('HDEL', KEYS[4], ticket)
      local outcome = ARGV[22]
      if outcome ~= 'ignored' then
        local failed = outcome == 'failure'
        pcalls = pcalls + 1
        if failed then pfail = pfail + 1 end
        if ARGV[23] == '1' then pslow = pslow + 1 end
        if half_open_mode == 'rates' then
          if pcalls >= probes then
            local reason = rates_reason(pcalls, pfail, pslow, 'half-open probes: ')
            if reason then
              go_open(reason, pcalls, pfail, pslow, 0)
            else
              go_closed(probes .. ' probe(s) below the thresholds', pcalls, pfail, pslow, 0)
            end
          end
        elseif failed then
          go_open('half-open probe failed', pcalls, pfail, pslow, 0)
        elseif pcalls >= probes then
          go_closed(probes .. ' probe(s) succeeded', pcalls, pfail, pslow, 0)
        end
      end
    end
  end
elseif op == 'reset' then
  local c, f, sl = figures()
  go_closed(ARGV[21], c, f, sl, consec)
end

-- Push every transition, and every gate opened or lifted, to every process (runtime's listener), rather
-- than wait for their next sync.
if gated ~= was_gated then changed = true end
if t_to ~= '' or gated ~= was_gated then
  redis.call('PUBLISH', KEYS[5], state .. ' ' .. tostring(open_until) .. ' ' .. (gated and '1' or '0'))
end

if changed then
  redis.call('HSET', KEYS[1], 'state', state, 'open_until', tostring(open_until), 'open_count', open_count,
    'since', tostring(since), 'pcalls', pcalls, 'pfail', pfail, 'pslow', pslow, 'consec', consec,
    'gated', gated and '1' or '0')
  redis.call('EXPIRE', KEYS[1], ttl)
end
local calls, failures, slow, shown_consec = pcalls, pfail, pslow, 0
if state ~= 'half_open' then
  calls, failures, slow = figures()
  shown_consec = consec
end
return {ok, state, tostring(open_until), open_count, calls, failures, slow, shown_consec,
        t_from, t_to, t_reason, tc, tf, ts, tk, gated and 1 or 0}
