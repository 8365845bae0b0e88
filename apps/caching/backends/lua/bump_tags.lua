-- Invalidate tags: bump each version and keep it for ARGV[1] seconds, longer than any entry can live.
for i = 1, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
return #KEYS
