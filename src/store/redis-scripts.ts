/**
 * The Lua scripts of the Redis store: each works on one key, so every one runs on a Redis Cluster
 * too (one slot), and each is atomic where two commands alone would leave a gap.
 */

/** INCR; a counter without a TTL (just created) gets one. Returns {count, remaining ms}. */
export const INCREMENT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}`

/** SET only while the value is still ARGV[1] (an absent key never matches). Returns 1 when set. */
export const COMPARE_AND_SET_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`

/** SADD; the set's TTL only grows (a shorter one would drop members that still need it). */
export const ADD_MEMBER_SCRIPT = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`

export interface Scripted {
  gatehouseAddMember(key: string, member: string, ttlMs: number): Promise<number>
  gatehouseIncrement(key: string, ttlMs: number): Promise<[number, number]>
  gatehouseCompareAndSet(key: string, expected: string, value: string, ttlMs: number): Promise<number>
  gatehouseAppend(key: string, value: string, keepMs: number): Promise<string>
}

/**
 * XADD one entry, drop entries older than ARGV[2] ms by Redis' own clock (the ids are its clock
 * too, so a gateway's skew cannot trim early), and keep the stream alive as long as its newest
 * entry must be. Returns the entry id.
 */
export const APPEND_SCRIPT = `
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
local id = redis.call('XADD', KEYS[1], 'MINID', '~', tostring(math.max(oldest, 0)), '*', 'v', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id`
