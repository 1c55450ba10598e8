// The Lua scripts the shared store runs: each touches only the keys it declares, and those share a hash tag (Redis Cluster).

/** Deletes the lease only when it still holds our token: an expired lease retaken by another instance stays theirs. */
export const releaseLeaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The fleet-wide rolling window. KEYS: the window's sorted set, the pause key, the instances' sorted set, the limit
 * orq announced, what orq said is left of its window. ARGV: counted window in ms, calls per window as this instance
 * knows them, a unique member, this instance's id, this priority's share, the most calls a learned limit may allow
 * (0: do not learn). Returns { 1 granted | 0 window full | -1 fleet paused, wait ms before asking again, instances seen
 * in the last 5 minutes, the learned limit or 0 }. Redis TIME is the one clock: the instances' may disagree.
 * The reserve below the learned limit is budget.ts's rateLimitReserve.
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
local calls = tonumber(ARGV[2])
local maxCalls = tonumber(ARGV[6])
local learned = 0
if maxCalls > 0 then
  learned = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
  if learned > 0 then calls = math.max(1, math.min(maxCalls, learned - math.max(2, math.ceil(learned * 0.05)))) end
end
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {-1, paused, instances, learned} end
if maxCalls > 0 then
  local left = tonumber(redis.call('GET', KEYS[5]) or 'x')
  if left ~= nil and left <= 0 then return {0, math.max(1, redis.call('PTTL', KEYS[5])), instances, learned} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = math.max(1, math.floor(calls * tonumber(ARGV[5])))
if count < allowed then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  if maxCalls > 0 and redis.call('EXISTS', KEYS[5]) == 1 then redis.call('DECR', KEYS[5]) end
  return {1, 0, instances, learned}
end
local oldest = redis.call('ZRANGE', KEYS[1], count - allowed, count - allowed, 'WITHSCORES')
return {0, math.max(1, tonumber(oldest[2]) + window - now), instances, learned}`;

/**
 * What one of orq's answers said about its window. KEYS: the learned limit, what is left. ARGV: the limit, how long
 * to keep it, what is left (less the reserve) or '' when the answer said nothing of it, until when (ms from now).
 */
export const learnRateLimitScript = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
return 1`;

/** Pauses every instance for ARGV[1] ms; never shortens a longer pause already set. */
export const pauseScript = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1`;

/**
 * Queues a user in the fleet's registration backlog (or makes it the most recently active again). KEYS: the backlog's
 * sorted set (score: last active, Redis time), its profiles' hash. ARGV: the external id, its profile as JSON (or ''),
 * most entries, most idle ms. Drops the idle and, past the bound, the least recently active, at most 1 000 per call.
 * Returns { entries after, entries dropped }.
 */
export const addToBacklogScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local maxEntries = tonumber(ARGV[3])
local maxIdle = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now, ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) else redis.call('HDEL', KEYS[2], ARGV[1]) end
local dropped = 0
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - maxIdle, 'LIMIT', 0, 1000)
for _, id in ipairs(idle) do redis.call('ZREM', KEYS[1], id); redis.call('HDEL', KEYS[2], id); dropped = dropped + 1 end
local count = redis.call('ZCARD', KEYS[1])
if count > maxEntries then
  local excess = redis.call('ZRANGE', KEYS[1], 0, math.min(count - maxEntries, 1000) - 1)
  for _, id in ipairs(excess) do redis.call('ZREM', KEYS[1], id); redis.call('HDEL', KEYS[2], id); dropped = dropped + 1 end
  count = redis.call('ZCARD', KEYS[1])
end
redis.call('PEXPIRE', KEYS[1], maxIdle)
redis.call('PEXPIRE', KEYS[2], maxIdle)
return {count, dropped}`;

/**
 * Takes the most recently active user off the fleet's backlog: one instance gets each user. KEYS as above. ARGV: most
 * idle ms. Returns { entries left, external id or '', profile JSON or '', ms since the least recently active was, dropped }.
 */
export const takeFromBacklogScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local dropped = 0
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, 1000)
for _, id in ipairs(idle) do redis.call('ZREM', KEYS[1], id); redis.call('HDEL', KEYS[2], id); dropped = dropped + 1 end
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0)
if #top == 0 then return {0, '', '', 0, dropped} end
local id = top[1]
redis.call('ZREM', KEYS[1], id)
local profile = redis.call('HGET', KEYS[2], id) or ''
redis.call('HDEL', KEYS[2], id)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local age = 0
if #oldest == 2 then age = now - tonumber(oldest[2]) end
return {redis.call('ZCARD', KEYS[1]), id, profile, age, dropped}`;
