"""The Lua scripts of the lease registry (docs/design.md, "Verifying from memory").

All five keys share the hash tag ``{lease}`` (one Redis Cluster slot), so each script is one
atomic step, as in the model (model/leases.pml). Times are Redis' own clock (``TIME``, in
milliseconds): lease expiries are compared only with it, never with a worker's clock.

The *registry incarnation* is ``<run_id>.<random>.<t0>``: it counts only on the server whose
run_id it names (as the tenant incarnations of "Cache incarnations"), and ``t0`` is when it
began, so a writer can wait until it is one lease old.
"""

from __future__ import annotations

REGISTRY = "tenantauth:{lease}:reg"
EXPIRIES = "tenantauth:{lease}:exp"
ACKS = "tenantauth:{lease}:ack"
SEQ = "tenantauth:{lease}:seq"
STREAM = "tenantauth:{lease}:stream"
#: Publications a writer waits on: seq -> live leases counted at publish that have not
#: acknowledged it yet. A hint for waking the writer, never what it decides by (``PENDING``).
WAITING = "tenantauth:{lease}:waiting"
#: The same publications by seq (a sorted set), so that an ack finds the ones it passes in
#: O(log n + those), however many a dead writer left behind.
WAITING_SEQS = "tenantauth:{lease}:waiting-seqs"
#: Where the acknowledgement that brought a publication's count to 0 says so: {s = seq}.
DONE = "tenantauth:{lease}:done"

# Shared by every script. KEYS[1..3] are always registry, expiries, acks.
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function current(value, prefix)
  return value and string.sub(value, 1, #prefix) == prefix
end
-- The registry incarnation of this server, begun now (with no members) if there is none.
local function ensure_registry(prefix, fresh, now)
  local reg = redis.call('GET', KEYS[1])
  if current(reg, prefix) then return reg end
  reg = fresh .. '.' .. now
  redis.call('SET', KEYS[1], reg)
  redis.call('DEL', KEYS[2], KEYS[3])
  return reg
end
local function settle_ms(reg, lease, now)
  local t0 = tonumber(string.match(reg, '%.(%d+)$'))
  return math.max(0, t0 + lease - now)
end
"""

# KEYS: registry, expiries, acks, seq, stream. ARGV: server prefix ('<run_id>.'), a fresh
# incarnation, worker id, lease ms, forget ms. Returns {seq, incarnation, stream cursor}.
# The worker's ack starts at the stream's current seq: it holds nothing yet, so it has
# nothing to drop for any earlier change. Workers whose lease ended long ago are forgotten.
REGISTER = (
    _PRELUDE
    + """
local now = now_ms()
local reg = ensure_registry(ARGV[1], ARGV[2], now)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
for _, w in ipairs(old) do redis.call('HDEL', KEYS[3], w) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
local seq = tonumber(redis.call('GET', KEYS[4]) or '0')
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], seq)
local last = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
local cursor = '0-0'
if #last > 0 then cursor = last[1][1] end
return {seq, reg, cursor}
"""
)

# KEYS: registry, expiries, acks, waiting, done, waiting seqs. ARGV: incarnation registered
# under, server prefix, worker, applied seq, lease ms. Extends the lease and records the
# ack, only if the registry is still that incarnation on this server, the worker is a member
# and its lease has not expired (a stalled listener must not revive a lease a writer stopped
# waiting for). An ack that rises past a waited publication counts it down; the one that
# brings it to 0 tells its writer (``done``). 1 if renewed.
RENEW = (
    _PRELUDE
    + """
local now = now_ms()
local reg = redis.call('GET', KEYS[1])
if reg ~= ARGV[1] or not current(reg, ARGV[2]) then return 0 end
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[3])
if not expiry or tonumber(expiry) <= now then return 0 end
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '-1')
local applied = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
if applied > old then
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. old, applied)) do
    if redis.call('HINCRBY', KEYS[4], s, -1) <= 0 then
      redis.call('HDEL', KEYS[4], s)
      redis.call('ZREM', KEYS[6], s)
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', 1000, '*', 's', s)
    end
  end
end
return 1
"""
)

# KEYS: registry, expiries, acks. ARGV: worker. The worker no longer trusts its memory.
DEREGISTER = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

# KEYS: registry, expiries, acks, seq, stream, waiting, done, waiting seqs. ARGV: server
# prefix, fresh incarnation, tenant, stream length kept, lease ms. Appends the invalidation
# {s = seq, t = tenant}; counts the live leases, none of which can have acknowledged it yet,
# as waiting on it. Returns {seq, incarnation, live leases counted, done's last entry id}.
# The waiting counts are bounded: they expire 3 leases after the last publication (when
# every writer has stopped waiting), and are dropped whole past 1,000 (writers then poll).
PUBLISH = (
    _PRELUDE
    + """
local now = now_ms()
local reg = ensure_registry(ARGV[1], ARGV[2], now)
local seq = redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 's', seq, 't', ARGV[3])
local live = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
if redis.call('ZCARD', KEYS[8]) >= 1000 then redis.call('DEL', KEYS[6], KEYS[8]) end
if live > 0 then
  redis.call('HSET', KEYS[6], seq, live)
  redis.call('ZADD', KEYS[8], seq, seq)
  redis.call('PEXPIRE', KEYS[6], 3 * tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[8], 3 * tonumber(ARGV[5]))
end
local last = redis.call('XREVRANGE', KEYS[7], '+', '-', 'COUNT', 1)
local cursor = '0-0'
if #last > 0 then cursor = last[1][1] end
return {seq, reg, live, cursor}
"""
)

# KEYS: registry, expiries, acks, waiting, waiting seqs. ARGV: the publication's
# incarnation, server prefix, fresh incarnation, the publication's seq, lease ms. Returns
# {pending, settle ms}: the live leases whose ack is below seq (-1 if the registry is no
# longer the publication's: no ack can reach seq, and the new registry's age is what
# counts), and how long until the registry in force is one lease old. Once none is pending,
# the publication's waiting count is forgotten (its writer is done with it).
PENDING = (
    _PRELUDE
    + """
local now = now_ms()
local lease = tonumber(ARGV[5])
local reg = redis.call('GET', KEYS[1])
if reg ~= ARGV[1] or not current(reg, ARGV[2]) then
  reg = ensure_registry(ARGV[2], ARGV[3], now)
  return {-1, settle_ms(reg, lease, now)}
end
local seq = tonumber(ARGV[4])
local pending = 0
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
for _, w in ipairs(live) do
  if tonumber(redis.call('HGET', KEYS[3], w) or '-1') < seq then pending = pending + 1 end
end
if pending == 0 then
  redis.call('HDEL', KEYS[4], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[4])
end
return {pending, settle_ms(reg, lease, now)}
"""
)
