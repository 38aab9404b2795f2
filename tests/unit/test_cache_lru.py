"""The in-memory LRU cache keeps its size bound (the cache contract runs on it too:
``tests/contracts.py``)."""

from __future__ import annotations

import pytest

from adapters.lru_cache import LruCache


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
