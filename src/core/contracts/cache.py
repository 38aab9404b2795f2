"""The contract of ``core.ports.cache.Cache``: any adapter passes it.

Use: subclass ``CacheContract`` in a test module and provide a ``cache`` fixture returning a
fresh, empty cache (namespace shared servers with a unique key prefix)."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.errors import CacheUnavailable
from core.ports.cache import Cache, ViewCache


async def _eventually_none(cache: Cache, key: str, deadline: float = 5.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if await cache.get(key) is None:
            return True
        await asyncio.sleep(0.02)
    return False


class CacheContract:
    async def test_missing_key_reads_none(self, cache: Cache) -> None:
        assert await cache.get("absent") is None

    async def test_set_then_get_returns_the_bytes(self, cache: Cache) -> None:
        value = bytes(range(256)) + "Первая".encode()
        await cache.set("k", value, 60)
        assert await cache.get("k") == value

    async def test_set_replaces(self, cache: Cache) -> None:
        await cache.set("k", b"one", 60)
        await cache.set("k", b"two", 60)
        assert await cache.get("k") == b"two"

    async def test_keys_are_independent(self, cache: Cache) -> None:
        await cache.set("a", b"1", 60)
        await cache.set("b", b"2", 60)
        await cache.delete("a")
        assert (await cache.get("a"), await cache.get("b")) == (None, b"2")

    async def test_delete_of_a_missing_key_is_a_noop(self, cache: Cache) -> None:
        await cache.delete("never-set")
        assert await cache.get("never-set") is None

    async def test_entry_expires_after_its_ttl(self, cache: Cache) -> None:
        await cache.set("short", b"x", 0.2)
        await cache.set("long", b"y", 60)
        assert await _eventually_none(cache, "short")
        assert await cache.get("long") == b"y"

    async def test_no_ttl_means_no_expiry(self, cache: Cache) -> None:
        await cache.set("forever", b"x", None)
        await cache.set("short", b"y", 0.2)
        assert await _eventually_none(cache, "short")
        assert await cache.get("forever") == b"x"

    async def test_incr_counts_from_zero(self, cache: Cache) -> None:
        assert [await cache.incr("gen") for _ in range(3)] == [1, 2, 3]
        assert await cache.get("gen") == b"3"

    async def test_incr_is_atomic_under_concurrency(self, cache: Cache) -> None:
        results = await asyncio.gather(*(cache.incr("gen") for _ in range(50)))
        assert sorted(results) == list(range(1, 51))

    async def test_counters_are_separate_per_key(self, cache: Cache) -> None:
        await cache.incr("a")
        await cache.incr("a")
        assert await cache.incr("b") == 1

    async def test_get_in_generation_without_a_counter_is_generation_zero(
        self, cache: Cache
    ) -> None:
        assert await cache.get_in_generation("gen", "page:", ":10") == (0, None)
        await cache.set("page:0:10", b"zero", 60)
        assert await cache.get_in_generation("gen", "page:", ":10") == (0, b"zero")

    async def test_get_in_generation_reads_the_current_generation_only(self, cache: Cache) -> None:
        await cache.incr("gen")
        await cache.set("page:1:10", b"one", 60)
        await cache.set("page:1:20", b"other window", 60)
        assert await cache.get_in_generation("gen", "page:", ":10") == (1, b"one")
        await cache.incr("gen")  # an invalidation: the page of generation 1 is unreachable
        assert await cache.get_in_generation("gen", "page:", ":10") == (2, None)
        await cache.set("page:2:10", b"two", 60)
        assert await cache.get_in_generation("gen", "page:", ":10") == (2, b"two")
        assert await cache.get_in_generation("gen", "page:", "") == (2, None)

    async def test_get_in_generation_agrees_with_get(self, cache: Cache) -> None:
        for _ in range(3):
            await cache.incr("gen")
        await cache.set("p3", b"\x00\xffbytes", 60)
        generation, value = await cache.get_in_generation("gen", "p")
        assert (generation, value) == (int(await cache.get("gen") or b"0"), await cache.get("p3"))

    async def test_get_in_generation_of_a_non_integer_counter_is_unavailable(
        self, cache: Cache
    ) -> None:
        await cache.set("gen", b"not a number", 60)
        with pytest.raises(CacheUnavailable):
            await cache.get_in_generation("gen", "page:")

    async def test_ping_answers_when_reachable(self, cache: Cache) -> None:
        await cache.ping()


class _Made:
    """A view that counts how often it was made."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.made = 0

    def __call__(self, value: bytes) -> tuple[str, bytes] | None:
        self.made += 1
        return None if value == b"refused" else (self.tag, value.upper())


class ViewCacheContract(CacheContract):
    """``core.ports.cache.ViewCache``: the cache contract, and views kept with their entries."""

    async def test_a_view_of_a_missing_key_is_none(self, cache: ViewCache) -> None:
        view = _Made()
        assert await cache.get_view("absent", view) is None
        assert view.made == 0

    async def test_a_view_is_made_once_per_stored_value(self, cache: ViewCache) -> None:
        view = _Made()
        await cache.set("k", b"one", None)
        assert [await cache.get_view("k", view) for _ in range(3)] == [(b"one", ("", b"ONE"))] * 3
        assert view.made == 1
        await cache.set("k", b"two", None)  # a new value: a new view
        assert await cache.get_view("k", view) == (b"two", ("", b"TWO"))
        assert view.made == 2
        await cache.delete("k")
        assert await cache.get_view("k", view) is None

    async def test_views_of_different_functions_are_apart(self, cache: ViewCache) -> None:
        first, second = _Made("first"), _Made("second")
        await cache.set("k", b"v", 60)
        for _ in range(2):
            assert await cache.get_view("k", first) == (b"v", ("first", b"V"))
            assert await cache.get_view("k", second) == (b"v", ("second", b"V"))
        assert await cache.get("k") == b"v"

    async def test_a_refused_value_has_no_view(self, cache: ViewCache) -> None:
        await cache.set("k", b"refused", 60)
        assert await cache.get_view("k", _Made()) is None
        assert await cache.get("k") == b"refused"

    async def test_a_view_expires_with_its_entry(self, cache: ViewCache) -> None:
        view = _Made()
        await cache.set("short", b"x", 0.2)
        assert await cache.get_view("short", view) == (b"x", ("", b"X"))
        assert await _eventually_none(cache, "short")
        assert await cache.get_view("short", view) is None
