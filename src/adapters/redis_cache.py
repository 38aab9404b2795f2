"""The Redis cache adapter: shared by every process pointed at the same Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from core.errors import CacheUnavailable

# KEYS[1]: the counter; ARGV: the key's prefix and suffix around the generation. The value's
# key is built on the server, so it is not declared in KEYS: fine on one Redis server; on a
# Redis Cluster the counter and the values would need one hash slot (a ``{hash tag}``).
_GET_IN_GENERATION = """
local generation = redis.call('GET', KEYS[1])
if not generation then generation = '0' end
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
"""


class RedisCache:
    """Implements ``core.ports.cache.Cache`` over a ``redis.asyncio.Redis`` client (bytes
    responses). Every key is stored under ``prefix``. Any Redis or connection error becomes
    ``CacheUnavailable``; an ``incr`` of a non-integer value too. ``get_in_generation`` is
    one ``EVALSHA`` of a Lua script (loaded by redis-py on first use, and again after a
    server restart)."""

    def __init__(self, *, client: Redis, prefix: str = "hexmarket:") -> None:
        self._client = client
        self._prefix = prefix
        self._get_in_generation = client.register_script(_GET_IN_GENERATION)

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

    async def get_in_generation(
        self, counter: str, prefix: str, suffix: str = ""
    ) -> tuple[int, bytes | None]:
        try:
            raw, value = await self._get_in_generation(
                keys=[self._prefix + counter], args=[self._prefix + prefix, suffix]
            )
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis generation read failed: {exc}") from exc
        try:
            generation = int(raw)
        except ValueError as exc:
            raise CacheUnavailable(f"counter {counter!r} is not an integer") from exc
        return generation, value

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis ping failed: {exc}") from exc
