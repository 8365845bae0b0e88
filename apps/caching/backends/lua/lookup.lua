-- One round trip for a cache lookup: the entry, the versions of its tags, and the stampede lock on a miss.
-- KEYS[1] entry, KEYS[2] lock, KEYS[3..] tag versions. ARGV[1] lock token, ARGV[2] lock TTL ms,
-- ARGV[3] "1" to take the lock when the entry is missing.
-- Returns {entry or false, lock state (1 acquired, 0 held by another, -1 free), version...}.
local entry = redis.call('GET', KEYS[1])
local lock = -1
if not entry and ARGV[3] == '1' then
  if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
    lock = 1
  else
    lock = 0
  end
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  lock = 0
end
local result = {entry, lock}
for i = 3, #KEYS do
  result[#result + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
return result
