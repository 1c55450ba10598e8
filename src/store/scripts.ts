// The Lua scripts the shared store runs: each touches only the keys it declares, and those share a hash tag (Redis Cluster).

/** Deletes the lease only when it still holds our token: an expired lease retaken by another instance stays theirs. */
export const releaseLeaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The fleet-wide rolling window. KEYS: the window's sorted set, the pause key, the instances' sorted set.
 * ARGV: counted window in ms, calls allowed for this priority, a unique member, this instance's id.
 * Returns { 1 granted | 0 window full | -1 fleet paused, wait ms before asking again, instances seen in the last 5 minutes }.
 * Redis TIME is the one clock: the instances' clocks may disagree, the server's does not.
 */
export const takeBudgetScript = `
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 300000)
redis.call('PEXPIRE', KEYS[3], 300000)
local instances = redis.call('ZCARD', KEYS[3])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {-1, paused, instances} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = tonumber(ARGV[2])
if count < allowed then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0, instances}
end
local oldest = redis.call('ZRANGE', KEYS[1], count - allowed, count - allowed, 'WITHSCORES')
return {0, math.max(1, tonumber(oldest[2]) + window - now), instances}`;

/** Pauses every instance for ARGV[1] ms; never shortens a longer pause already set. */
export const pauseScript = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1`;
