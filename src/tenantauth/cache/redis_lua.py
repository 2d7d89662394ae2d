"""The Lua scripts of RedisCache, and running a script on one chosen connection.

Every script touches one key or keys of one tenant (one Redis Cluster hash slot, see
``cache_key``) and runs atomically. TTLs are relative, so marks live as long as intended
whatever Redis' own clock says. docs/design.md ("Cache", "Cache incarnations") explains why
each check exists.
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis.exceptions

# KEYS: entry, fence, incarnation, then the subject keys, then the jti keys.
# ARGV: generation, encoded entry, ttl in ms, number of subject keys, ticket, then
# (version, ttl in s) per subject key, then ttl in s per jti key. Returns 1 if stored.
# Refuses the entry unless the tenant's incarnation is still the one the filler read under
# (the ticket): a flushed or restarted Redis may have missed fences. Refuses entries older than
# the fence or than what is cached, so a filler that read storage before a rotation committed
# can never put the old secret back. The tenant's revocations go in with the entry, atomically:
# an entry that is present implies its revocations are present. Subject versions only rise (a
# stale filler cannot lower one); jti marks are only added. The incarnation is kept alive at
# least as long as the entry stamped with it.
FILL = """
if redis.call('GET', KEYS[3]) ~= ARGV[5] then return 0 end
local g = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
if g < fence then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cg = tonumber(string.match(cur, '^(%d+)|'))
  if cg and cg > g then return 0 end
end
local nsub = tonumber(ARGV[4])
local a = 6
for i = 4, 3 + nsub do
  local v = tonumber(ARGV[a])
  if v > tonumber(redis.call('GET', KEYS[i]) or '0') then
    redis.call('SET', KEYS[i], ARGV[a], 'EX', ARGV[a + 1])
  end
  a = a + 2
end
for i = 4 + nsub, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[a])
  a = a + 1
end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
return 1
"""

# KEYS: an incarnation (a tenant's, or the directory's). ARGV: this server's prefix
# ('<run_id>.'), a fresh value, its ttl in ms. Keeps a value claimed on this server; replaces
# anything else (none, or one restored from another server's snapshot). Atomic, so concurrent
# claimers agree on one value. Returns the value now in force.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]
"""

# KEYS: subject key. ARGV: version, ttl in s. Raises the version, never lowers it.
REVOKE_SUBJECT = """
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""

# KEYS: entry, fence. ARGV: generation stored in the database. Returns the new generation.
FENCE = """
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = math.max(fence, tonumber(ARGV[1])) + 1
redis.call('SET', KEYS[2], n)
redis.call('DEL', KEYS[1])
return n
"""

# KEYS: entry, fence. ARGV: the generation a change committed. Raises the fence to it (never
# lowers it) and drops a cached entry older than it.
SEAL = """
local g = tonumber(ARGV[1])
if g > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], g) end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cg = tonumber(string.match(cur, '^(%d+)|'))
  if not cg or cg < g then redis.call('DEL', KEYS[1]) end
end
return 1
"""


def run_on(connection: Any, script: str, keys: list[str], args: list[Any]) -> Any:
    """Run ``script`` on this very connection (EVALSHA, falling back to EVAL once).

    Used where the caller must know which server ran it (the connection's identity).
    Returns the script's reply; raises ``redis.exceptions.RedisError``.
    """
    sha = hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
    try:
        connection.send_command("EVALSHA", sha, len(keys), *keys, *args)
        return connection.read_response()
    except redis.exceptions.NoScriptError:
        connection.send_command("EVAL", script, len(keys), *keys, *args)
        return connection.read_response()
