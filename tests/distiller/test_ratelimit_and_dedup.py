"""Provider limits in Redis and near-duplicate detection."""

import threading
import time

from distiller.dedup import NearDuplicateIndex, jaccard, shingles
from distiller.ratelimit import ProviderLimiter, redis_connection


def limiter(provider_id, **overrides):
    values = dict(provider_id=provider_id, max_concurrency=3, requests_per_minute=0, lease_seconds=30)
    return ProviderLimiter(**{**values, **overrides})


def test_no_more_than_the_limit_are_in_flight_across_limiters():
    redis_connection().delete("distiller:provider:901:inflight")
    limiters = [limiter(901), limiter(901)]  # as two workers would have
    in_flight, peak, lock = [0], [0], threading.Lock()

    def call(shared):
        with shared.slot():
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.02)
            with lock:
                in_flight[0] -= 1

    threads = [threading.Thread(target=call, args=(limiters[i % 2],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3
    assert limiters[0].in_flight() == 0


def test_a_dead_workers_slot_frees_when_its_lease_expires():
    redis_connection().delete("distiller:provider:902:inflight")
    short = limiter(902, max_concurrency=1, lease_seconds=0.3)
    short.acquire()  # never released: its worker "died"
    assert short.script(keys=short.keys, args=[*short.args, "probe"]) == -1
    time.sleep(0.35)
    token = short.acquire()
    short.release(token)


def test_requests_per_minute_are_counted_across_limiters():
    redis = redis_connection()
    redis.delete("distiller:provider:903:inflight", "distiller:provider:903:rpm")
    first, second = limiter(903, requests_per_minute=4), limiter(903, requests_per_minute=4)
    for shared in (first, second, first, second):
        shared.release(shared.acquire())
    wait_ms = second.script(keys=second.keys, args=[*second.args, "probe"])
    assert 59_000 < wait_ms <= 60_000


def test_near_duplicates_are_refused_and_different_questions_kept():
    index = NearDuplicateIndex(threshold=0.8)
    assert index.add("How do I reset my password?")
    assert not index.add("how do i reset my password")
    assert not index.add("How do I reset my password??!")
    assert index.add("Where can I see my last invoice?")
    assert index.add("我的订单什么时候发货？")
    assert not index.add("我的订单什么时候发货")
    assert len(index) == 3


def test_similarity_is_jaccard_of_character_shingles():
    a, b = shingles("abcd"), shingles("abce")
    assert a == {"abc", "bcd"} and jaccard(a, b) == 1 / 3
