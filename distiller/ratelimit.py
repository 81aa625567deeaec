"""Per-provider limits shared by every worker on every machine, kept in Redis.

A provider's in-flight calls are a sorted set of leases scored by their expiry time. Each lease
names the process that holds it ("<owner>|<token>"); a process keeps a short-lived
`distiller:alive:<owner>` key while it lives, so the slots of a SIGKILLed process are taken back
within OWNER_TTL_SECONDS by the next caller instead of after the lease (timeout + 30 s).
Requests per minute are a sliding window log. Both are checked and taken in one Lua script,
timed by Redis's clock so machines with skewed clocks agree. Threads that wait for a slot say so
in `distiller:provider:<id>:waiting`, for the run's status.
"""

import os
import random
import socket
import threading
import time
import uuid
from contextlib import contextmanager

import redis
from django.conf import settings

# What a lost or restarting Redis raises; callers that ride an outage through retry on these.
REDIS_DOWN_ERRORS = (redis.ConnectionError, redis.TimeoutError)

# A live process renews its key every second; a dead one's slots free this long after its death.
OWNER_TTL_SECONDS = 5
ALIVE_PREFIX = "distiller:alive:"
# Take back the leases of dead owners (their `distiller:alive:` key is gone), and move the calls
# they had not recorded yet to the lost list, for distiller.services.runs.llm_calls_lost_record.
# KEYS: in-flight set, per-minute log, unrecorded calls hash, lost list.
PRUNE_BODY = """
local function dead(member)
  local bar = string.find(member, '|', 1, true)
  return bar and redis.call('EXISTS', '""" + ALIVE_PREFIX + """' .. string.sub(member, 1, bar - 1)) == 0
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if dead(member) then redis.call('ZREM', KEYS[1], member) end
end
for _, token in ipairs(redis.call('HKEYS', KEYS[3])) do
  if dead(token) then
    redis.call('RPUSH', KEYS[4], redis.call('HGET', KEYS[3], token))
    redis.call('HDEL', KEYS[3], token)
  end
end
"""
PRUNE = PRUNE_BODY + "return 0\n"
LOST_CALLS_KEY = "distiller:lost_calls"
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, rpm, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- The caller is alive: after a restart that emptied Redis its keeper may not have said so yet, and
-- a prune by another process would take the call it is about to list for a dead process's.
local caller_bar = string.find(ARGV[4], '|', 1, true)
if caller_bar then
  redis.call('SET', '""" + ALIVE_PREFIX + """' .. string.sub(ARGV[4], 1, caller_bar - 1), 1, 'EX', """ + str(
    OWNER_TTL_SECONDS) + """)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
""" + PRUNE_BODY + """
if redis.call('ZCARD', KEYS[1]) >= limit then return -1 end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[2]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + 60000 - now)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], 61000)
end
redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[4])
redis.call('PEXPIRE', KEYS[1], lease_ms + 1000)
return 0
"""

_connection = None
_owner: tuple[int, str] | None = None  # (pid, owner id) of this process
_owner_lock = threading.Lock()


def redis_connection() -> redis.Redis:
    """The process's connection to REDIS_URL (thread-safe pool)."""
    global _connection
    if _connection is None:
        _connection = redis.Redis.from_url(settings.REDIS_URL)
    return _connection


def slot_owner(connection: redis.Redis) -> str:
    """This process's owner id, kept alive in Redis by a daemon thread for as long as the process lives.

    Per pid: an RQ work horse is a fork, and threads do not survive a fork.
    """
    global _owner
    with _owner_lock:
        if _owner is None or _owner[0] != os.getpid():
            owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            connection.set(ALIVE_PREFIX + owner, 1, ex=OWNER_TTL_SECONDS)
            threading.Thread(target=_keep_alive, args=(connection, owner), daemon=True,
                             name="slot-owner-alive").start()
            _owner = (os.getpid(), owner)
        return _owner[1]


def _keep_alive(connection: redis.Redis, owner: str) -> None:
    while True:
        time.sleep(1)
        try:
            connection.set(ALIVE_PREFIX + owner, 1, ex=OWNER_TTL_SECONDS)
        except redis.RedisError:
            pass  # Redis is away: acquiring fails too; renew when it is back


def outage_seconds() -> float:
    """How long work rides an outage of Redis or PostgreSQL through before it gives up (and stalls)."""
    return float(settings.DISTILL_OUTAGE_SECONDS)


class RedisOutage:
    """Backoff across one outage: wait_or_raise sleeps a little longer each time, and re-raises the
    error once the outage has lasted `seconds` (DISTILL_OUTAGE_SECONDS by default)."""

    def __init__(self, seconds: float | None = None):
        self.deadline = time.monotonic() + (outage_seconds() if seconds is None else seconds)
        self.pause = 0.05

    def wait_or_raise(self, exc: BaseException) -> None:
        if time.monotonic() >= self.deadline:
            raise exc
        time.sleep(min(self.pause, max(0.0, self.deadline - time.monotonic())) + random.uniform(0, 0.05))
        self.pause = min(self.pause * 2, 1.0)


def waiting_key(provider_id: int) -> str:
    return f"distiller:provider:{provider_id}:waiting"


def run_waiting_for_slots(*, provider_id: int, run_id: int) -> bool:
    """Whether a thread of run `run_id` waits for one of the provider's slots (entries expire in 3 s)."""
    score = redis_connection().zscore(waiting_key(provider_id), f"run:{run_id}")
    return score is not None and score > time.time()


class ProviderLimiter:
    """Slots for one provider: at most `max_concurrency` calls in flight and `requests_per_minute`."""

    def __init__(self, *, provider_id: int, max_concurrency: int, requests_per_minute: int,
                 lease_seconds: float, connection: redis.Redis | None = None, run_id: int | None = None):
        self.redis = connection or redis_connection()
        base = f"distiller:provider:{provider_id}"
        # In flight, the per-minute log, calls not recorded in the database yet (token -> JSON), lost calls.
        self.keys = [f"{base}:inflight", f"{base}:rpm", f"{base}:calls", LOST_CALLS_KEY]
        self.run_id = run_id
        self.args = [max(1, max_concurrency), max(0, requests_per_minute), int(lease_seconds * 1000)]
        self.script = self.redis.register_script(ACQUIRE)
        self.prune_script = self.redis.register_script(PRUNE)
        self.waiting = waiting_key(provider_id)
        self.waiter = f"run:{run_id}" if run_id else ""

    @classmethod
    def for_endpoint(cls, endpoint, run_id: int | None = None) -> "ProviderLimiter":
        # A call cannot outlive its timeout by much; the margin covers the retry bookkeeping.
        return cls(provider_id=endpoint.provider_id, max_concurrency=endpoint.max_concurrency,
                   requests_per_minute=endpoint.requests_per_minute, lease_seconds=endpoint.timeout_seconds + 30,
                   run_id=run_id)

    def _waiting(self) -> None:
        if self.waiter:
            try:
                self.redis.zadd(self.waiting, {self.waiter: time.time() + 3})
                self.redis.expire(self.waiting, 10)
            except REDIS_DOWN_ERRORS:
                pass  # only a hint for the run's status

    def acquire(self, call: str = "") -> str:
        """Wait for a slot; returns its token. `call` (JSON) describes the call until calls_recorded is told.

        Rides a Redis outage through (a restart, even one that comes back empty) for up to
        DISTILL_OUTAGE_SECONDS, then raises the Redis error.
        """
        pause, noted = 0.005, 0.0
        outage = RedisOutage()
        while True:
            try:
                token = f"{slot_owner(self.redis)}|{uuid.uuid4().hex}"
                wait_ms = int(self.script(keys=self.keys, args=[*self.args, token]))
                if wait_ms == 0 and call:
                    self.redis.hset(self.keys[2], token, call)
            except REDIS_DOWN_ERRORS as exc:
                outage.wait_or_raise(exc)
                continue
            if wait_ms == 0:
                return token
            if time.monotonic() - noted > 1:
                self._waiting()
                noted = time.monotonic()
            if wait_ms > 0:  # the per-minute budget is spent: sleep until the oldest call leaves the window
                time.sleep(wait_ms / 1000 + random.uniform(0, 0.05))
            else:  # all slots busy: poll, backing off a little so waiting threads do not hammer Redis
                time.sleep(pause + random.uniform(0, pause))
                pause = min(pause * 2, 0.05)

    def release(self, token: str) -> None:
        """Give the slot back. Never raises: an answered call must not be lost to a Redis outage;
        a slot not given back frees when its lease ends (a restarted Redis has forgotten it anyway)."""
        outage = RedisOutage(seconds=min(10.0, outage_seconds()))
        while True:
            try:
                self.redis.zrem(self.keys[0], token)
                return
            except REDIS_DOWN_ERRORS as exc:
                try:
                    outage.wait_or_raise(exc)
                except REDIS_DOWN_ERRORS:
                    return

    def calls_recorded(self, tokens: list[str]) -> None:
        """These calls are in the database now: a death of their process no longer loses them.

        Retried through an outage: a token left listed would be recorded a second time, as lost,
        once this process dies.
        """
        outage = RedisOutage()
        while tokens:
            try:
                self.redis.hdel(self.keys[2], *tokens)
                return
            except REDIS_DOWN_ERRORS as exc:
                try:
                    outage.wait_or_raise(exc)
                except REDIS_DOWN_ERRORS:
                    return  # Redis stayed away: it is most likely back empty, without these tokens

    @contextmanager
    def slot(self, call: str = ""):
        token = self.acquire(call)
        try:
            yield token
        finally:
            self.release(token)

    def in_flight(self) -> int:
        """Calls in flight, after taking back the slots of dead processes (and listing their lost calls)."""
        self.prune_script(keys=self.keys)
        return int(self.redis.zcard(self.keys[0]))


def lost_calls_take(limit: int = 1000) -> list[str]:
    """Take (and remove) up to `limit` calls whose process died before recording them (JSON strings)."""
    return [raw.decode() if isinstance(raw, bytes) else raw
            for raw in (redis_connection().lpop(LOST_CALLS_KEY, limit) or [])]
