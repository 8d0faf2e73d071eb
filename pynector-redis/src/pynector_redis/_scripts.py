"""The Lua scripts: each limit's whole step, atomic on the server, timed by the server's clock.

Times are seconds (the server's ``TIME``, as floats) and travel as strings:
Redis turns a Lua number into an integer on the way out. Every script refreshes
the TTL of the keys it writes, so the state of a limit nobody uses any more
vanishes by itself.
"""

from __future__ import annotations

__all__ = ["BREAKER", "LEASE", "PACE", "RELEASE", "TOKENS"]

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function num(value) return string.format('%.6f', value) end
"""

PACE = (
    _NOW
    + """
-- KEYS[1]: the pacer's hash (tat, paused, hint_until, hint_interval).
-- ARGV: interval (0: no rate, pauses only), burst, slots wanted, the most the
-- caller can wait (negative: no bound), a pause (seconds from now, 0: none),
-- a hint's interval and its length (seconds from now; negative: clear the hint).
local key = KEYS[1]
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local pause = tonumber(ARGV[5])
local hint_interval = tonumber(ARGV[6])
local hint_for = tonumber(ARGV[7])
local state = redis.call('HMGET', key, 'tat', 'paused', 'hint_until', 'hint_interval')
local tat = tonumber(state[1]) or 0
local paused = tonumber(state[2]) or 0
local hint_until = tonumber(state[3]) or 0
local hint_iv = tonumber(state[4]) or 0
if hint_for < 0 then
  hint_until = 0
elseif hint_for > 0 then
  hint_until = now + hint_for
  hint_iv = hint_interval
end
if pause > 0 and now + pause > paused then
  paused = now + pause
  if interval > 0 then
    -- Paced again from the end of the pause: no burst into a server that just refused.
    tat = math.max(tat, paused + (burst - 1) * interval)
  end
end
local out = {0}
for _ = 1, wanted do
  local start = math.max(now, paused)
  if interval > 0 then
    start = math.max(start, tat - (burst - 1) * interval)
  end
  local wait = start - now
  if max_wait >= 0 and wait > max_wait then
    if #out == 1 then
      out[2] = num(wait)
    end
    break
  end
  if start < hint_until then
    paused = math.max(paused, start + hint_iv)
  end
  if interval > 0 then
    tat = math.max(tat, start) + interval
  end
  out[1] = out[1] + 1
  out[#out + 1] = num(wait)
end
redis.call('HSET', key, 'tat', num(tat), 'paused', num(paused),
  'hint_until', num(hint_until), 'hint_interval', num(hint_iv))
local horizon = math.max(tat, paused, hint_until, now) - now
redis.call('PEXPIRE', key, math.ceil((horizon + 60) * 1000))
return out
"""
)
"""Book up to ``wanted`` start slots: ``{booked, wait...}`` or ``{0, wait}`` when none fits."""

TOKENS = (
    _NOW
    + """
-- KEYS[1]: the log (a sorted set: reservation id -> at), KEYS[2]: the tokens
-- (a hash: reservation id -> tokens). An entry counts until its at plus the window.
-- ARGV: window, hold, limit, tokens to reserve (negative: only settle), the new
-- reservation's id, the number of settles, then per settle: id, tokens, age (s).
local log, amounts = KEYS[1], KEYS[2]
local window = tonumber(ARGV[1])
local hold = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local id = ARGV[5]
local settles = tonumber(ARGV[6])
for i = 0, settles - 1 do
  local settled = ARGV[7 + 3 * i]
  local at = redis.call('ZSCORE', log, settled)
  if at then
    -- The request reached the server before it was settled.
    at = math.min(tonumber(at), now - tonumber(ARGV[9 + 3 * i]))
    redis.call('ZADD', log, 'XX', num(at), settled)
    redis.call('HSET', amounts, settled, ARGV[8 + 3 * i])
  end
end
local expired = redis.call('ZRANGEBYSCORE', log, '-inf', num(now - window))
for _, gone in ipairs(expired) do
  redis.call('ZREM', log, gone)
  redis.call('HDEL', amounts, gone)
end
local out = {1, '0'}
if tokens >= 0 then
  local held = {}
  local used = 0
  local fields = redis.call('HGETALL', amounts)
  for i = 1, #fields, 2 do
    held[fields[i]] = tonumber(fields[i + 1])
    used = used + held[fields[i]]
  end
  if used + tokens <= limit then
    redis.call('ZADD', log, num(now + hold), id)
    redis.call('HSET', amounts, id, tokens)
  else
    local excess = used + tokens - limit
    local wait = window
    local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      excess = excess - (held[entries[i]] or 0)
      if excess <= 0 then
        wait = tonumber(entries[i + 1]) + window - now
        break
      end
    end
    out = {0, num(wait)}
  end
end
-- Every entry leaves the window at most hold + window from now.
local ttl = math.ceil((window + hold + 60) * 1000)
redis.call('PEXPIRE', log, ttl)
redis.call('PEXPIRE', amounts, ttl)
return out
"""
)
"""Settle, expire, then reserve: ``{1, "0"}`` when held, ``{0, wait}`` when full."""

LEASE = (
    _NOW
    + """
-- KEYS[1]: the leases (a sorted set: lease id -> expiry). ARGV: limit, ttl, id.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', num(now))
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, num(now + ttl), ARGV[3])
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now + 1) * 1000))
  return {1, '0'}
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, num(tonumber(first[2]) - now)}
"""
)
"""Take a lease: ``{1, "0"}`` when taken, ``{0, seconds until the earliest expiry}`` when full."""

RELEASE = """
-- KEYS[1]: the leases; ARGV[1]: the lease id.
return redis.call('ZREM', KEYS[1], ARGV[1])
"""
"""Give a lease back."""

BREAKER = (
    _NOW
    + """
-- KEYS[1]: the breaker's hash (open_until: 0 closed, else open until then and
-- half-open after; gen: bumped at every open and close; c:<bucket>, f:<bucket>:
-- calls and failures per bucket of the window), KEYS[2]: the probes out (a
-- sorted set: probe id -> expiry).
-- ARGV: failure ratio, minimum calls, bucket width, cooldown, probes, probe ttl,
-- the generation of the counts, calls, failures, 1 to take a probe if half-open,
-- that probe's id, the failures in a row that end the counts, 1 if the counts
-- hold a success, the number of probe outcomes, then per outcome: id, outcome
-- (1 succeeded, 2 failed, 0 neither), generation.
local key, probes = KEYS[1], KEYS[2]
local ratio = tonumber(ARGV[1])
local minimum = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local most = tonumber(ARGV[5])
local probe_ttl = tonumber(ARGV[6])
local counted = tonumber(ARGV[7])
local calls = tonumber(ARGV[8])
local failures = tonumber(ARGV[9])
local want = tonumber(ARGV[10])
local probe_id = ARGV[11]
local tail = tonumber(ARGV[12])
local succeeded = tonumber(ARGV[13])
local outcomes = tonumber(ARGV[14])
local state = redis.call('HMGET', key, 'open_until', 'gen')
local open_until = tonumber(state[1]) or 0
local gen = tonumber(state[2]) or 0
local buckets = 10
local function reset(next_open)
  open_until = next_open
  gen = gen + 1
  local fields = redis.call('HKEYS', key)
  for _, field in ipairs(fields) do
    if field ~= 'open_until' and field ~= 'gen' then  -- the buckets and the run
      redis.call('HDEL', key, field)
    end
  end
  redis.call('DEL', probes)
end
for i = 0, outcomes - 1 do
  local outcome = tonumber(ARGV[16 + 3 * i])
  redis.call('ZREM', probes, ARGV[15 + 3 * i])
  if tonumber(ARGV[17 + 3 * i]) == gen and open_until > 0 and now >= open_until then
    if outcome == 2 then
      reset(now + cooldown)
    elseif outcome == 1 then
      reset(0)
    end
  end
end
local bucket = math.floor(now / width)
if open_until == 0 and counted == gen and calls > 0 then
  redis.call('HINCRBY', key, 'c:' .. bucket, calls)
  redis.call('HINCRBY', key, 'f:' .. bucket, failures)
  local run = tail
  if succeeded == 0 then
    run = run + (tonumber(redis.call('HGET', key, 'run')) or 0)
  end
  redis.call('HSET', key, 'run', run)
  if run >= minimum then
    reset(now + cooldown)
  elseif failures > 0 then
    local total, failed = 0, 0
    local fields = redis.call('HGETALL', key)
    for i = 1, #fields, 2 do
      local field = fields[i]
      local kind = string.sub(field, 1, 2)  -- c: or f: (not open_until, gen, run)
      if kind == 'c:' or kind == 'f:' then
        if tonumber(string.sub(field, 3)) <= bucket - buckets then
          redis.call('HDEL', key, field)
        elseif kind == 'c:' then
          total = total + tonumber(fields[i + 1])
        else
          failed = failed + tonumber(fields[i + 1])
        end
      end
    end
    if total >= minimum and failed >= ratio * total then
      reset(now + cooldown)
    end
  end
end
local out
if open_until == 0 then
  out = {0, '0', gen, 0}
elseif now < open_until then
  out = {1, num(open_until - now), gen, 0}
else
  redis.call('ZREMRANGEBYSCORE', probes, '-inf', num(now))
  out = {2, '0', gen, 0}
  if want == 1 and redis.call('ZCARD', probes) < most then
    redis.call('ZADD', probes, num(now + probe_ttl), probe_id)
    redis.call('PEXPIRE', probes, math.ceil((probe_ttl + 60) * 1000))
    out[4] = 1
  end
end
redis.call('HSET', key, 'open_until', num(open_until), 'gen', gen)
redis.call('PEXPIRE', key, math.ceil((width * buckets + cooldown + 60) * 1000))
return out
"""
)
"""Record outcomes, then admit: ``{state, open for (s), generation, probe granted}``.

``state``: 0 closed, 1 open, 2 half-open.
"""
