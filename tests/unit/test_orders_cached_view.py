"""``OrderQueries.cached_view``: a reader's own view of a cached order, kept with the entry by
an in-process cache (``ViewCache``), made on every hit from a server-backed one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.lru_cache import LruCache
from adapters.memory.orders import MemoryOrderRepository
from core.contracts.orders import order_from
from core.errors import CacheUnavailable
from core.orders.queries import CACHE_PREFIX, OrderDocument, OrderQueries
from core.ports.cache import Cache

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "model.json").read_bytes())
UID = SAMPLE["order_uid"]


class PlainCache:
    """Only the ``Cache`` port (no ``get_view``), as a server-backed cache offers it."""

    def __init__(self) -> None:
        self._inner = LruCache()
        self.down = False

    async def get(self, key: str) -> bytes | None:
        if self.down:
            raise CacheUnavailable("down")
        return await self._inner.get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._inner.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def incr(self, key: str) -> int:
        return await self._inner.incr(key)

    async def get_in_generation(
        self, counter: str, prefix: str, suffix: str = ""
    ) -> tuple[int, bytes | None]:
        return await self._inner.get_in_generation(counter, prefix, suffix)

    async def ping(self) -> None:
        return None


class Headers:
    def __init__(self) -> None:
        self.made = 0

    def __call__(self, document: OrderDocument) -> tuple[str, int]:
        self.made += 1
        return document.digest, len(document.body)


async def queries_on(cache: Cache) -> OrderQueries:
    repo = MemoryOrderRepository()
    await repo.add_many([order_from(SAMPLE)])
    return OrderQueries(repository=repo, cache=cache)


@pytest.mark.parametrize("make_cache", [LruCache, PlainCache], ids=["view-cache", "plain-cache"])
async def test_a_view_is_the_cached_documents(make_cache: type[Cache]) -> None:
    queries = await queries_on(make_cache())
    view = Headers()
    assert await queries.cached_view(UID, view) is None  # not cached yet: a miss, not counted
    document = await queries.get(UID)  # the miss caches it
    for _ in range(3):
        assert await queries.cached_view(UID, view) == (
            document.body,
            (document.digest, len(document.body)),
        )
    assert queries.stats.hits == 3
    assert queries.stats.misses == 1
    # kept with the entry in process memory; made on every hit from a server-backed cache
    assert view.made == (1 if make_cache is LruCache else 3)


async def test_a_malformed_id_or_a_foreign_value_is_no_view() -> None:
    cache = LruCache()
    queries = await queries_on(cache)
    await cache.set(CACHE_PREFIX + "bare", b'{"not":"packed"}')
    view = Headers()
    assert await queries.cached_view("bare", view) is None
    assert await queries.cached_view("bad id", view) is None
    assert view.made == 0
    assert queries.stats.hits == 0


async def test_a_cache_outage_is_no_view_and_counted() -> None:
    cache = PlainCache()
    queries = await queries_on(cache)
    await queries.get(UID)
    cache.down = True
    assert await queries.cached_view(UID, Headers()) is None
    assert queries.stats.cache_errors == 1
