"""The Lua scripts: every decision of a shared limiter is one of these, run atomically inside Redis.

Redis runs a script from start to finish with nothing else in between, so "read the state, decide, book"
cannot interleave with another worker's request -- that is the whole trick.  Each script:

* reads the clock with ``TIME`` **inside Redis**, so workers on hosts whose clocks disagree still share one
  timeline (their own clocks are only used to sleep for the relative wait the script answers);
* *books* the caller's slot and answers how long to wait (a reservation), instead of answering "not yet"
  and making the caller poll: one round trip per request, and order is arrival order at Redis;
* leaves each booking a **margin**: its caller may proceed anywhere from the booked start to ``margin``
  later (the reply travels, loops wake late), so a booking is checked against the limit at its earliest
  instant and passes on to later bookings only what is left at its latest (see ``_base``'s docstring);
* keeps times as microseconds of Redis time.  Lua numbers are doubles, exact for whole numbers up to 2**53
  (about 285 years of microseconds), and state is stored as ``%.17g`` text, which reads back bit for bit
  (Lua's own ``tostring`` keeps only 14 digits and would round a timestamp to 100 µs);
* sets a TTL on what it writes, for when the state means nothing any more: an idle limiter leaves no keys.

Scripts are loaded once (``SCRIPT LOAD``) and then called by their SHA1 (``EVALSHA``); a server that
restarted or flushed its script cache answers ``NOSCRIPT`` and the caller loads the script again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = [
    "GCRA_REFUND",
    "GCRA_RESERVE",
    "SCRIPTS",
    "SLIDING_LOG_REFUND",
    "SLIDING_LOG_RESERVE",
    "THROTTLER_PAUSE",
    "THROTTLER_REFUND",
    "THROTTLER_RESERVE",
    "LuaScript",
]


@dataclass(frozen=True)
class LuaScript:
    """A named Lua source and its SHA1 (what ``EVALSHA`` calls it by; ``SCRIPT LOAD`` answers the same)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


# Every script that reads TIME starts with this.  Before Redis 5, a script that had read the clock (a
# non-deterministic command) could not write unless it switched to replicating its *effects* rather than
# itself; from Redis 5 that is the default, and from 7 the call is a deprecated no-op.  Keeping it makes the
# scripts work on old servers too.
_CLOCK = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])  -- µs of Redis time
local function num(x) return string.format('%.17g', x) end
"""

GCRA_RESERVE = LuaScript(
    "gcra_reserve",
    _CLOCK
    + """
-- GCRA: the state is one number, the TAT (theoretical arrival time): when the next unit is due on the ideal
-- timeline.  A request of `weight` may start at start = TAT + weight*interval - tolerance (or now, if
-- that has passed), and books TAT = max(TAT, now) + weight*interval.
--
-- With a margin, its caller may really start as late as start + margin: the TAT then goes on from there,
-- TAT = max(TAT, start + margin) + weight*interval.  Checked at its earliest, passing on what is left at its
-- latest, every set of callers keeps to the bucket's bound (burst + rate*T in any span T) wherever in their
-- margins they start.  Nothing changes while the TAT is ahead of start + margin (a backlog): the rate is
-- kept whenever tolerance >= interval + margin, and only the burst shrinks, by margin/interval.
--
-- KEYS[1]  the TAT, µs of Redis time, as text (missing or in the past: the full burst is available)
-- ARGV[1]  interval: µs per unit (1e6 / rate)
-- ARGV[2]  tolerance: how far ahead of the ideal timeline requests may run, µs (burst * interval)
-- ARGV[3]  weight
-- ARGV[4]  'reserve' (always book, answer the wait), 'try' (book only if no wait) or 'peek' (never book)
-- ARGV[5]  margin, µs
-- returns  {booked 1/0, wait µs (rounded up), now µs, TAT after (text), units available after (text),
--           TAT before (text: what a refund puts back)}
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local mode = ARGV[4]
local margin = tonumber(ARGV[5])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
-- The TAT follows the ideal timeline unrounded (no drift); only the wait is rounded, up (never early).
local start = math.max(now, tat + weight * interval - tolerance)
local wait = math.ceil(start - now)
local booked, after = 0, tat
if mode == 'reserve' or (mode == 'try' and wait == 0) then
  booked = 1
  after = math.max(tat, start + margin) + weight * interval
  -- Once the TAT is in the past the key means "full burst", exactly like no key: let it expire then.
  redis.call('SET', KEYS[1], num(after), 'PX', math.ceil((after - now) / 1000) + 1)
end
return {booked, wait, now, num(after), num((tolerance - (after - now)) / interval), num(tat)}
""",
)

GCRA_REFUND = LuaScript(
    "gcra_refund",
    _CLOCK
    + """
-- Give back a booking -- but only if it is still the latest one.  If someone booked after it, their slot
-- was computed from ours; moving the TAT back would let a newcomer share their instant and exceed the
-- burst.  Then the slot is simply lost: a gap in the schedule, never an excess.
--
-- KEYS[1]  the TAT
-- ARGV[1]  the TAT our booking left (text, exactly as returned);  ARGV[2]  the TAT before it (text)
-- returns  1 if refunded, 0 if not
local stored = redis.call('GET', KEYS[1])
if stored ~= ARGV[1] then return 0 end
local tat = tonumber(ARGV[2])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], num(tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return 1
""",
)

# The log is a sorted set with one member per booking, "<start µs>:<weight>:<id>", scored by the running
# total of weight booked so far *including* that booking (a prefix sum).  Both start times and totals grow
# in booking order, so "how much was booked between two bookings" is a subtraction of two scores, and "the
# first booking whose total reaches X" is one O(log n) ZRANGEBYSCORE -- no walking the log per request.
_LOG_HELPERS = """
local function start_of(member) return tonumber(string.match(member, '^(%d+):')) end
local function weight_of(member) return tonumber(string.match(member, '^%d+:([^:]+):')) end
"""

SLIDING_LOG_RESERVE = LuaScript(
    "sliding_log_reserve",
    _CLOCK
    + _LOG_HELPERS
    + """
-- Sliding-window log: never more than `limit` units starting in any window of `window` µs.  A booking at
-- time `at` must fit with everything starting in (at - window, at]; bookings are made in arrival order, so
-- nothing starts after `at` and the sum of that span is `total - (prefix sum at the window's edge)`.
--
-- The window here is the one to *book* with: the limit's window plus the margin.  A caller may start
-- anywhere in [at, at + margin], so a booking must have left for good before one that is booked a window
-- later starts on time: it occupies the log for window + margin.
--
-- KEYS[1]  the log (see above)
-- ARGV[1]  window + margin, µs (whole)    ARGV[2]  limit    ARGV[3]  weight    ARGV[4]  mode (as GCRA)
-- ARGV[5]  an id unique to this request (members must differ)
-- returns  {booked 1/0, wait µs, now µs, member booked (or ''), units in the log after (text)}
local log = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local mode = ARGV[4]

-- 1. Drop bookings whose window has passed for good (start + window <= now), oldest first, in batches.
while true do
  local head = redis.call('ZRANGE', log, 0, 63)
  local gone = 0
  for i = 1, #head do
    if start_of(head[i]) + window > now then break end
    gone = i
  end
  if gone > 0 then redis.call('ZREMRANGEBYRANK', log, 0, gone - 1) end
  if gone < 64 then break end
end

-- 2. The total booked so far, the total before the oldest booking still here, and the latest start.
local total, base, at = 0, 0, now
local tail = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
if #tail > 0 then
  total = tonumber(tail[2])
  at = math.max(now, start_of(tail[1]))  -- first come, first served: never before an earlier booking
  local head = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  base = tonumber(head[2]) - weight_of(head[1])
end

-- 3. For `weight` to fit, the bookings up to a total of `need` must have left the window: start when the
--    first booking whose running total reaches `need` does.
local need = total + weight - limit
if need > base then
  local first = redis.call('ZRANGEBYSCORE', log, num(need), '+inf', 'LIMIT', 0, 1)
  if #first == 0 then first = {tail[1]} end  -- rounding at the very end: wait for the whole log to pass
  at = math.max(at, start_of(first[1]) + window)
end

-- 4. Book.
local wait = at - now
local booked, member = 0, ''
if mode == 'reserve' or (mode == 'try' and wait == 0) then
  booked = 1
  total = total + weight
  member = string.format('%.0f:%s:%s', at, ARGV[3], ARGV[5])
  redis.call('ZADD', log, num(total), member)
  redis.call('PEXPIRE', log, math.ceil((at + window - now) / 1000) + 1)
end
return {booked, wait, now, member, num(total - base)}
""",
)

SLIDING_LOG_REFUND = LuaScript(
    "sliding_log_refund",
    _LOG_HELPERS
    + """
-- Take a booking out of the log.  Unlike GCRA this is always safe: bookings made after it were placed
-- assuming it was there; without it every window only gets lighter.  The running totals of the later
-- bookings drop by its weight, so the prefix sums stay exact.
--
-- KEYS[1]  the log;  ARGV[1]  the member our booking added
-- returns  1 if removed, 0 if it was not there (already expired)
local log = KEYS[1]
local score = redis.call('ZSCORE', log, ARGV[1])
if not score then return 0 end
local weight = weight_of(ARGV[1])
local later = redis.call('ZRANGEBYSCORE', log, '(' .. score, '+inf', 'WITHSCORES')
for i = 1, #later, 2 do
  redis.call('ZADD', log, string.format('%.17g', tonumber(later[i + 1]) - weight), later[i])
end
redis.call('ZREM', log, ARGV[1])
return 1
""",
)

THROTTLER_RESERVE = LuaScript(
    "throttler_reserve",
    _CLOCK
    + """
-- Several per-minute budgets booked together or not at all: one GCRA each (requests, tokens, input tokens,
-- output tokens -- whichever are limited), all in one hash; the request starts when the last of them lets
-- it (and never before the previous booking: FIFO).  Each GCRA leaves the margin exactly as GCRA_RESERVE
-- does: its TAT goes on from `at + margin`.
--
-- KEYS[1]  a hash: one TAT (µs) per budget, under the budget's name ('rpm', 'tpm', 'itpm', 'otpm'); 'last'
--          (the latest booked start, µs); 'seq' (bookings so far); and each of these as it was before the
--          latest booking ('rpm0', ..., 'last0'), so a refund can undo exactly that booking
-- ARGV[1]  mode (as GCRA)    ARGV[2]  margin, µs    ARGV[3]  how many budgets follow, n
-- then, for each budget, four: its name, µs per unit, tolerance µs, units this request takes
-- returns  {booked 1/0, wait µs, now µs, seq (text), then each budget's units available (text)}
local mode = ARGV[1]
local margin = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local names, interval, tolerance, units, tat = {}, {}, {}, {}, {}
local fields = {'last', 'seq'}
for i = 1, n do
  local base = 3 + (i - 1) * 4
  names[i] = ARGV[base + 1]
  interval[i] = tonumber(ARGV[base + 2])
  tolerance[i] = tonumber(ARGV[base + 3])
  units[i] = tonumber(ARGV[base + 4])
  fields[#fields + 1] = names[i]
end
local state = redis.call('HMGET', KEYS[1], unpack(fields))
local function due(x) if x then return math.max(tonumber(x), now) end return now end
local last = due(state[1])
local seq = 0
if state[2] then seq = tonumber(state[2]) end

local at = last
for i = 1, n do
  tat[i] = due(state[2 + i])
  if units[i] > 0 then at = math.max(at, tat[i] + units[i] * interval[i] - tolerance[i]) end
end
at = math.ceil(at)

local wait = at - now
local booked = 0
if mode == 'reserve' or (mode == 'try' and wait == 0) then
  booked = 1
  seq = seq + 1
  local writes = {'last', num(at), 'last0', num(last), 'seq', string.format('%d', seq)}
  local horizon = at
  for i = 1, n do
    writes[#writes + 1] = names[i] .. '0'
    writes[#writes + 1] = num(tat[i])
    if units[i] > 0 then tat[i] = math.max(tat[i], at + margin) + units[i] * interval[i] end
    writes[#writes + 1] = names[i]
    writes[#writes + 1] = num(tat[i])
    horizon = math.max(horizon, tat[i])
  end
  redis.call('HSET', KEYS[1], unpack(writes))
  redis.call('PEXPIRE', KEYS[1], math.ceil((horizon - now) / 1000) + 1)
end
local reply = {booked, wait, now, string.format('%d', seq)}
for i = 1, n do reply[#reply + 1] = num((tolerance[i] - (tat[i] - now)) / interval[i]) end
return reply
""",
)

THROTTLER_REFUND = LuaScript(
    "throttler_refund",
    """
-- Undo a booking -- every budget of it -- if nobody booked after it (same reasoning as the GCRA refund).
-- KEYS[1]  the hash;  ARGV[1]  our booking's seq;  ARGV[2...]  the budgets' names
-- returns  1 if refunded, 0 if not
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[1] then return 0 end
local restore = {'last', redis.call('HGET', KEYS[1], 'last0')}
for i = 2, #ARGV do
  restore[#restore + 1] = ARGV[i]
  restore[#restore + 1] = redis.call('HGET', KEYS[1], ARGV[i] .. '0')
end
redis.call('HSET', KEYS[1], unpack(restore))
redis.call('HINCRBY', KEYS[1], 'seq', 1)  -- the same booking can never be given back twice
return 1
""",
)

THROTTLER_PAUSE = LuaScript(
    "throttler_pause",
    _CLOCK
    + """
-- A shared cool-down after a 429: no booking made after this starts before `now + pause`, in any worker;
-- and (drain) every budget is emptied as if just used at its own pace, so the pause ends at the limit's
-- pace instead of in a burst of what the budgets earned meanwhile.  An empty GCRA: TAT = now + tolerance.
-- A pause also ends the refund window of bookings made before it (seq moves on): undoing one of them
-- would restore a 'last' from before the pause.
--
-- KEYS[1]  the throttler's hash;  ARGV[1]  pause µs;  ARGV[2]  drain 1/0;  ARGV[3]  n budgets
-- then, for each budget, two: its name and its tolerance µs
-- returns  Redis time (µs) at which the pause ends
local pause_end = now + tonumber(ARGV[1])
local drain = ARGV[2] == '1'
local n = tonumber(ARGV[3])
local last = redis.call('HGET', KEYS[1], 'last')
local horizon = pause_end
local writes = {'last', num(math.max(pause_end, last and tonumber(last) or now))}
for i = 1, n do
  local name, tolerance = ARGV[3 + (i - 1) * 2 + 1], tonumber(ARGV[3 + (i - 1) * 2 + 2])
  local tat = tonumber(redis.call('HGET', KEYS[1], name) or now)
  if drain then tat = math.max(tat, now + tolerance) end
  writes[#writes + 1] = name
  writes[#writes + 1] = num(tat)
  horizon = math.max(horizon, tat)
end
redis.call('HSET', KEYS[1], unpack(writes))
redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('PEXPIRE', KEYS[1], math.ceil((horizon - now) / 1000) + 1)
return num(pause_end)
""",
)

#: Every script, by name.
SCRIPTS: dict[str, LuaScript] = {
    script.name: script
    for script in (
        GCRA_RESERVE,
        GCRA_REFUND,
        SLIDING_LOG_RESERVE,
        SLIDING_LOG_REFUND,
        THROTTLER_RESERVE,
        THROTTLER_REFUND,
        THROTTLER_PAUSE,
    )
}
