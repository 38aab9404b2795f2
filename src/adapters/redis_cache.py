"""The Redis cache adapter: shared by every process pointed at the same Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from core.errors import CacheUnavailable


class RedisCache:
    """Implements ``core.ports.cache.Cache`` over a ``redis.asyncio.Redis`` client (bytes
    responses). Every key is stored under ``prefix``. Any Redis or connection error becomes
    ``CacheUnavailable``; an ``incr`` of a non-integer value too."""

    def __init__(self, *, client: Redis, prefix: str = "hexmarket:") -> None:
        self._client = client
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis get failed: {exc}") from exc
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, round(ttl * 1000))
        try:
            await self._client.set(self._prefix + key, value, px=px)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis set failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis delete failed: {exc}") from exc

    async def incr(self, key: str) -> int:
        full = self._prefix + key
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                pipe.persist(full)
                value, _ = await pipe.execute()
        except ResponseError as exc:
            raise CacheUnavailable(f"redis incr of {key!r} failed: {exc}") from exc
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis incr failed: {exc}") from exc
        return int(value)

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis ping failed: {exc}") from exc
