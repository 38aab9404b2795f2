"""The in-memory LRU cache keeps its size bound (the cache contract runs on it too:
``tests/contracts.py``)."""

from __future__ import annotations

import pytest

from adapters.lru_cache import LruCache
from core.errors import CacheUnavailable


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = LruCache(maxsize=2)
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.get("a") == b"1"
    await cache.set("c", b"3", 60)
    assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (
        b"1",
        None,
        b"3",
    )


async def test_counters_are_never_evicted_by_the_size_bound() -> None:
    cache = LruCache(maxsize=2)
    await cache.incr("gen")
    for i in range(10):
        await cache.set(f"page{i}", b"x", 60)
    assert await cache.get("gen") == b"1"
    assert await cache.incr("gen") == 2


async def test_each_entry_has_its_own_ttl() -> None:
    timer = FakeTimer()
    cache = LruCache(maxsize=10, timer=timer)
    await cache.set("short", b"s", 1)
    await cache.set("long", b"l", 60)
    await cache.set("forever", b"f", None)
    timer.now = 59.9
    assert (await cache.get("short"), await cache.get("long")) == (None, b"l")
    timer.now = 10_000
    assert (await cache.get("long"), await cache.get("forever")) == (None, b"f")


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        LruCache(maxsize=0)


class CountingTimer(FakeTimer):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


async def test_an_entry_without_ttl_is_read_without_the_clock() -> None:
    # the orders' entries (immutable documents, no TTL): a hit is a lookup, no clock read
    timer = CountingTimer()
    cache = LruCache(maxsize=10, timer=timer)
    await cache.set("order", b"doc", None)
    for _ in range(3):
        assert await cache.get("order") == b"doc"
    assert timer.reads == 0
    await cache.set("page", b"p", 60)
    await cache.get("page")
    assert timer.reads == 2  # set and get of an entry with a TTL


async def test_an_expired_entry_is_dropped_when_read() -> None:
    timer = FakeTimer()
    cache = LruCache(maxsize=10, timer=timer)
    await cache.set("short", b"s", 1)
    await cache.set("forever", b"f", None)
    assert len(cache) == 2
    timer.now = 2
    assert await cache.get("short") is None
    assert len(cache) == 1


async def test_reading_an_entry_makes_it_the_most_recent() -> None:
    cache = LruCache(maxsize=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), None)
    await cache.get("a")
    await cache.set("b", b"B", None)  # a write also makes it recent
    await cache.set("d", b"d", None)  # evicts c, the least recently used
    assert [await cache.get(k) for k in ("a", "b", "c", "d")] == [b"a", b"B", None, b"d"]


async def test_a_subclass_that_changes_get_has_its_views_read_through_it() -> None:
    # as get_in_generation: a cache made to fail (or count) by overriding ``get`` fails its
    # views too, instead of answering them from the entries it no longer shows
    class Failing(LruCache):
        async def get(self, key: str) -> bytes | None:
            raise CacheUnavailable("down")

    cache = Failing()
    await cache.set("k", b"v", None)
    with pytest.raises(CacheUnavailable):
        await cache.get_view("k", bytes.upper)
