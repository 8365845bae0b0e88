-- Add one process's figures of one (tenant, route, method, minute) to its hash, keeping min and max.
-- KEYS[1] the minute's hash. ARGV: ttl_s, min_ms, max_ms, then field, increment pairs.
-- Every number is checked before anything is written: a script is not rolled back when it fails midway,
-- and HINCRBYFLOAT refuses NaN and infinity only when it reaches them.
local function finite(text)
  local x = tonumber(text)
  return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge
end
for i = 2, #ARGV do
  if (i < 4 or i % 2 == 1) and not finite(ARGV[i]) then
    return redis.error_reply('ERR monitoring merge: argument ' .. i .. ' is not a finite number: ' .. tostring(ARGV[i]))
  end
end
local key = KEYS[1]
for i = 4, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', key, ARGV[i], ARGV[i + 1])
end
local low = tonumber(ARGV[2])
local current = redis.call('HGET', key, 'min')
if (not current) or low < tonumber(current) then redis.call('HSET', key, 'min', ARGV[2]) end
local high = tonumber(ARGV[3])
current = redis.call('HGET', key, 'max')
if (not current) or high > tonumber(current) then redis.call('HSET', key, 'max', ARGV[3]) end
redis.call('EXPIRE', key, ARGV[1])
return 1
