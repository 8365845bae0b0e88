-- A cluster-wide bulkhead: a sorted set of slot leases (member token, score expiry); dead holders expire.
-- KEYS[1] the lease set. ARGV: op (acquire/release), now, limit, lease s, token.
if ARGV[1] == 'release' then
  redis.call('ZREM', KEYS[1], ARGV[5])
  return 1
end
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[5])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])) + 1)
return 1
