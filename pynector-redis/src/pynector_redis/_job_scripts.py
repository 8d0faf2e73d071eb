"""The Lua scripts of a batch job: each step atomic on the server, timed by its clock.

Every script gets the job's keys in one order (:data:`KEYS`) and refreshes the
expiry of all of them but the loader lock (``ttl`` in milliseconds; 0 keeps
the job: its keys lose any expiry), so a job nobody works on vanishes a
``ttl`` after its last activity. The request stream's entries carry two
fields, ``n`` (the line number) then ``d`` (the raw line); an entry is
deleted once its result is recorded.

Many lines travel in one round trip **packed**, in a few arguments or reply
values whatever their number: their ids and line numbers separated by
spaces, and their texts end to end with the byte length of each (separated
by spaces) to cut them apart again. A round trip then costs the client the
same few values for one line or five hundred.
"""

from __future__ import annotations

__all__ = [
    "APPEND",
    "CLAIM",
    "KEYS",
    "LEAVE",
    "LOADED",
    "RECORD",
    "RELEASE",
    "RENEW",
    "RESULTS",
    "RETRY_FAILED",
    "START",
    "STATUS",
]

KEYS = ("meta", "requests", "results", "failed", "workers", "rate", "loader")
"""The parts of a job's keys, in the order every script receives them."""

_HEAD = """
local meta, stream, results, failed, workers, rate, loader =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function touch(ttl)
  ttl = tonumber(ttl)
  for i = 1, 6 do
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) else redis.call('PERSIST', KEYS[i]) end
  end
end
local function held_by(group, id, worker)
  local entry = redis.call('XPENDING', stream, group, id, id, 1)[1]
  return entry ~= nil and entry[2] == worker
end
local function words(text)
  local found = {}
  for word in string.gmatch(text, '%S+') do found[#found + 1] = word end
  return found
end
-- The texts packed end to end in `packed`, cut by their byte lengths (space-separated).
local function cut(lengths, packed)
  local found, at = {}, 1
  for size in string.gmatch(lengths, '%d+') do
    local stop = at + tonumber(size)
    found[#found + 1] = string.sub(packed, at, stop - 1)
    at = stop
  end
  return found
end
-- The command `head` (a list: the command and its first arguments) over many ids,
-- in slices of 500 (Lua's unpack has a bound).
local function each_slice(head, ids)
  for i = 1, #ids, 500 do
    local args = {unpack(head)}
    for j = i, math.min(i + 499, #ids) do args[#args + 1] = ids[j] end
    redis.call(unpack(args))
  end
end
"""

START = (
    _HEAD
    + """
-- ARGV: group, worker, size ('' to join only), sha256, ttl, loader lease (ms).
local group, worker, size, sha, ttl, lease = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', meta) == 0 then
  if size == '' then return {'missing'} end
  redis.call('HSET', meta, 'size', size, 'sha256', sha, 'state', 'loading',
    'created', now_ms, 'requests', 0, 'through', 0, 'ok', 0, 'failed', 0,
    'bad', 0, 'duplicates', 0, 'cursor', '0-0')
  redis.call('DEL', stream, results, failed, workers, rate)
  redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  redis.call('SET', loader, worker, 'PX', lease)
  touch(ttl)
  return {'load'}
end
local have = redis.call('HMGET', meta, 'size', 'sha256', 'state')
if size ~= '' and (have[1] ~= size or have[2] ~= sha) then
  return {'mismatch', have[1], have[2]}
end
local answer = 'join'
if have[3] == 'loading' and size ~= '' and redis.call('EXISTS', loader) == 0 then
  redis.call('SET', loader, worker, 'PX', lease)
  answer = 'load'
end
touch(ttl)
return {answer}
"""
)

APPEND = (
    _HEAD
    + """
-- ARGV: worker, ttl, loader lease (ms), then the requests packed: their line
-- numbers, the byte lengths of their raw lines, the raw lines end to end.
local through = tonumber(redis.call('HGET', meta, 'through') or '0')
local added = 0
local numbers, raws = words(ARGV[4]), cut(ARGV[5], ARGV[6])
for i = 1, #numbers do
  local n = tonumber(numbers[i])
  if n > through then
    redis.call('XADD', stream, '*', 'n', numbers[i], 'd', raws[i])
    through = n
    added = added + 1
  end
end
redis.call('HSET', meta, 'through', through)
redis.call('HINCRBY', meta, 'requests', added)
redis.call('SET', loader, ARGV[1], 'PX', ARGV[3])
touch(ARGV[2])
return added
"""
)

LOADED = (
    _HEAD
    + """
-- ARGV: ttl, bad lines, duplicate ids.
redis.call('HSET', meta, 'state', 'loaded', 'bad', ARGV[2], 'duplicates', ARGV[3])
redis.call('DEL', loader)
touch(ARGV[1])
return 1
"""
)

_TAKE = """
local ids, lines, lengths, raws = {}, {}, {}, {}
local function take(entry)
  local fields = entry[2]
  if type(fields) ~= 'table' then return end  -- deleted meanwhile (Redis before 7)
  if redis.call('HEXISTS', results, fields[2]) == 1 then
    redis.call('XACK', stream, group, entry[1])
    redis.call('XDEL', stream, entry[1])
    return
  end
  ids[#ids + 1] = entry[1]
  lines[#lines + 1] = fields[2]
  lengths[#lengths + 1] = string.len(fields[4])
  raws[#raws + 1] = fields[4]
end
"""

CLAIM = (
    _HEAD
    + """
-- ARGV: group, worker, count, lease (ms), ttl. The claims come back packed: their
-- entries, their line numbers, the byte lengths of their raw lines, the raw lines.
local group, worker, count, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
"""
    + _TAKE
    + """
redis.call('ZADD', workers, now_ms, worker)
-- Claims idle for a lease belong to a dead worker: taken over first, in
-- passes over the pending entries that resume where the last one stopped.
local cursor = redis.call('HGET', meta, 'cursor') or '0-0'
local auto = redis.call('XAUTOCLAIM', stream, group, worker, lease, cursor, 'COUNT', count)
redis.call('HSET', meta, 'cursor', auto[1])
for _, entry in ipairs(auto[2]) do take(entry) end
if #ids < count then
  local read = redis.call('XREADGROUP', 'GROUP', group, worker, 'COUNT', count - #ids,
    'STREAMS', stream, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do take(entry) end
  end
end
local state = redis.call('HMGET', meta, 'state', 'requests', 'ok', 'failed')
local finished = 0
if state[1] == 'loaded' and tonumber(state[3]) + tonumber(state[4]) >= tonumber(state[2]) then
  finished = 1
end
touch(ARGV[5])
return {finished, table.concat(ids, ' '), table.concat(lines, ' '), table.concat(lengths, ' '),
  table.concat(raws)}
"""
)

RENEW = (
    _HEAD
    + """
-- ARGV: group, worker, ttl, then the entries to keep.
local group, worker = ARGV[1], ARGV[2]
redis.call('ZADD', workers, now_ms, worker)
local mine = {}
for i = 4, #ARGV do
  if held_by(group, ARGV[i], worker) then mine[#mine + 1] = ARGV[i] end
end
-- Claimed again by their holder: idle 0 again, so nobody takes them over.
for i = 1, #mine, 500 do
  local args = {stream, group, worker, 0}
  for j = i, math.min(i + 499, #mine) do args[#args + 1] = mine[j] end
  args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
touch(ARGV[3])
return #mine
"""
)

RECORD = (
    _HEAD
    + """
-- ARGV: group, ttl, then the results packed: their entries, their line numbers,
-- their ok flags ('1' or '0' each, end to end), the byte lengths of their result
-- lines and the lines, then the byte lengths and the raw request lines of the
-- failed ones (kept for --retry-failed). Returns a flag ('1': recorded by this
-- call, '0': recorded before) for each result, end to end.
local group = ARGV[1]
local entries, lines, oks = words(ARGV[3]), words(ARGV[4]), ARGV[5]
local texts, raws = cut(ARGV[6], ARGV[7]), cut(ARGV[8], ARGV[9])
local flags = {}
local new_ok, new_failed, failures = 0, 0, 0
for i = 1, #entries do
  local line, ok = lines[i], string.sub(oks, i, i) == '1'
  local raw
  if not ok then
    failures = failures + 1
    raw = raws[failures]
  end
  if redis.call('HSETNX', results, line, texts[i]) == 1 then
    if ok then
      new_ok = new_ok + 1
    else
      new_failed = new_failed + 1
      redis.call('HSET', failed, line, raw)
    end
    flags[i] = '1'
  else
    flags[i] = '0'
  end
end
each_slice({'XACK', stream, group}, entries)
each_slice({'XDEL', stream}, entries)
if new_ok > 0 then redis.call('HINCRBY', meta, 'ok', new_ok) end
if new_failed > 0 then redis.call('HINCRBY', meta, 'failed', new_failed) end
-- The rate: results per second in a ring of 16 one-second slots ("second:count").
local second = tonumber(clock[1])
local slot = 's' .. (second % 16)
local count = new_ok + new_failed
local seen = redis.call('HGET', rate, slot)
if seen then
  local at, n = string.match(seen, '(%d+):(%d+)')
  if tonumber(at) == second then count = count + tonumber(n) end
end
redis.call('HSET', rate, slot, second .. ':' .. count)
touch(ARGV[2])
return table.concat(flags)
"""
)

RELEASE = (
    _HEAD
    + """
-- ARGV: group, worker, ttl, then entry, line and raw line of each claim to give back.
local group, worker = ARGV[1], ARGV[2]
local given = 0
for i = 4, #ARGV, 3 do
  local entry = ARGV[i]
  if held_by(group, entry, worker) then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    if redis.call('HEXISTS', results, ARGV[i + 1]) == 0 then
      -- A new entry: unclaimed, so the next claim of any worker reads it.
      redis.call('XADD', stream, '*', 'n', ARGV[i + 1], 'd', ARGV[i + 2])
      given = given + 1
    end
  end
end
touch(ARGV[3])
return given
"""
)

LEAVE = (
    _HEAD
    + """
-- ARGV: worker.
redis.call('ZREM', workers, ARGV[1])
return 1
"""
)

STATUS = (
    _HEAD
    + """
-- ARGV: group, lease (ms). Reads only.
if redis.call('EXISTS', meta) == 0 then return {'missing'} end
local fields = redis.call('HGETALL', meta)
local pending = redis.call('XPENDING', stream, ARGV[1])[1]
local entries = redis.call('XLEN', stream)
local alive = redis.call('ZCOUNT', workers, now_ms - tonumber(ARGV[2]), '+inf')
local second = tonumber(clock[1])
local recent = 0
for _, seen in ipairs(redis.call('HVALS', rate)) do
  local at, n = string.match(seen, '(%d+):(%d+)')
  at = tonumber(at)
  if at < second and at >= second - 10 then recent = recent + tonumber(n) end
end
return {'found', fields, pending, entries, alive, recent, redis.call('PTTL', meta),
  redis.call('ZCARD', workers)}
"""
)

RESULTS = (
    _HEAD
    + """
-- ARGV: the first line, how many lines. Reads only.
local first, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', meta, 'state', 'through')
if not state[1] then return {'missing'} end
local through = tonumber(state[2])
local last = math.min(first + count - 1, through)
local found = {}
if last >= first then
  local lines = {}
  for n = first, last do lines[#lines + 1] = n end
  local values = redis.call('HMGET', results, unpack(lines))
  for _, value in ipairs(values) do
    if value then found[#found + 1] = value end
  end
end
return {state[1], through, found}
"""
)

RETRY_FAILED = (
    _HEAD
    + """
-- ARGV: ttl, most requests per call. Queues failed requests again: how many, how many left.
local scan = redis.call('HSCAN', failed, 0, 'COUNT', ARGV[2])
local pairs_ = scan[2]
local moved = 0
for i = 1, #pairs_, 2 do
  local line, raw = pairs_[i], pairs_[i + 1]
  redis.call('HDEL', failed, line)
  if redis.call('HDEL', results, line) == 1 then
    redis.call('HINCRBY', meta, 'failed', -1)
  end
  redis.call('XADD', stream, '*', 'n', line, 'd', raw)
  moved = moved + 1
end
touch(ARGV[1])
return {moved, redis.call('HLEN', failed)}
"""
)
