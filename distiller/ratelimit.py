"""Per-provider limits shared by every worker on every machine, kept in Redis.

A provider's in-flight calls are a sorted set of leases scored by their expiry time, so a
worker that dies mid-call frees its slot when the lease runs out. Requests per minute are a
sliding window log. Both are checked and taken in one Lua script, timed by Redis's clock so
machines with skewed clocks agree.
"""

import random
import time
import uuid
from contextlib import contextmanager

import redis
from django.conf import settings

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, rpm, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
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


def redis_connection() -> redis.Redis:
    """The process's connection to REDIS_URL (thread-safe pool)."""
    global _connection
    if _connection is None:
        _connection = redis.Redis.from_url(settings.REDIS_URL)
    return _connection


class ProviderLimiter:
    """Slots for one provider: at most `max_concurrency` calls in flight and `requests_per_minute`."""

    def __init__(self, *, provider_id: int, max_concurrency: int, requests_per_minute: int,
                 lease_seconds: float, connection: redis.Redis | None = None):
        self.redis = connection or redis_connection()
        self.keys = [f"distiller:provider:{provider_id}:inflight", f"distiller:provider:{provider_id}:rpm"]
        self.args = [max(1, max_concurrency), max(0, requests_per_minute), int(lease_seconds * 1000)]
        self.script = self.redis.register_script(ACQUIRE)

    @classmethod
    def for_endpoint(cls, endpoint) -> "ProviderLimiter":
        # A call cannot outlive its timeout by much; the margin covers the retry bookkeeping.
        return cls(provider_id=endpoint.provider_id, max_concurrency=endpoint.max_concurrency,
                   requests_per_minute=endpoint.requests_per_minute, lease_seconds=endpoint.timeout_seconds + 30)

    def acquire(self) -> str:
        token = uuid.uuid4().hex
        pause = 0.005
        while True:
            wait_ms = int(self.script(keys=self.keys, args=[*self.args, token]))
            if wait_ms == 0:
                return token
            if wait_ms > 0:  # the per-minute budget is spent: sleep until the oldest call leaves the window
                time.sleep(wait_ms / 1000 + random.uniform(0, 0.05))
            else:  # all slots busy: poll, backing off a little so waiting threads do not hammer Redis
                time.sleep(pause + random.uniform(0, pause))
                pause = min(pause * 2, 0.05)

    def release(self, token: str) -> None:
        self.redis.zrem(self.keys[0], token)

    @contextmanager
    def slot(self):
        token = self.acquire()
        try:
            yield
        finally:
            self.release(token)

    def in_flight(self) -> int:
        return int(self.redis.zcard(self.keys[0]))
