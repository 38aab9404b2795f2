"""The Redis cache passes the cache contract on a real server, and reports outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.redis_cache import RedisCache
from core.contracts.cache import CacheContract
from core.errors import CacheUnavailable


@pytest.fixture
async def cache(redis_url: str, unique: str) -> AsyncIterator[RedisCache]:
    client: Redis = Redis.from_url(redis_url)
    yield RedisCache(client=client, prefix=f"{unique}:")
    await client.aclose()


class TestRedisCache(CacheContract):
    pass


async def test_counters_survive_a_set_with_ttl_before(cache: RedisCache) -> None:
    await cache.set("gen", b"5", 0.5)
    assert await cache.incr("gen") == 6
    assert await cache.get("gen") == b"6"


async def test_an_unreachable_server_is_cache_unavailable(stack: Any, redis_url: str) -> None:
    client: Redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    cache = RedisCache(client=client, prefix="down:")
    try:
        stack.stop("redis")
        for call in (cache.get("k"), cache.set("k", b"v", 1), cache.incr("k"), cache.ping()):
            with pytest.raises(CacheUnavailable):
                await call
    finally:
        stack.start("redis")
        await client.aclose()
