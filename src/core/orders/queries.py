"""The read path: an order document by id, cache first, and the cache warm-up.

The cache holds the serialized JSON document; a hit returns the stored bytes untouched. Orders
are immutable, so a cached document never goes stale and needs no invalidation. A failing cache
(``CacheUnavailable``) is a miss, never a failed request.
"""

from __future__ import annotations

import logging

import attrs

from core.errors import CacheUnavailable, NotFound, ValidationError
from core.orders.model import is_well_formed_uid
from core.ports.cache import Cache
from core.ports.orders import OrderRepository

log = logging.getLogger(__name__)

CACHE_PREFIX = "order:"


@attrs.frozen(kw_only=True, slots=True)
class OrderDocument:
    body: bytes
    cache_hit: bool


class OrderQueries:
    def __init__(
        self,
        *,
        repository: OrderRepository,
        cache: Cache,
        cache_ttl: float | None = None,
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._ttl = cache_ttl
        self.cache_errors = 0

    async def get(self, order_uid: str) -> OrderDocument:
        """The order's JSON document. Raises ``ValidationError`` for a malformed id,
        ``NotFound`` for an unknown one, ``StorageError`` if the database is needed and down."""
        if not is_well_formed_uid(order_uid):
            raise ValidationError(
                details={"order_uid": "must be 1..64 characters of A-Z a-z 0-9 _ -"}
            )
        key = CACHE_PREFIX + order_uid
        try:
            cached = await self._cache.get(key)
        except CacheUnavailable as exc:
            self.cache_errors += 1
            log.warning("order cache unavailable, reading the database: %s", exc)
            cached = None
        if cached is not None:
            return OrderDocument(body=cached, cache_hit=True)
        body = await self._repository.get(order_uid)
        if body is None:
            raise NotFound(details={"order_uid": order_uid})
        await self._store(key, body)
        return OrderDocument(body=body, cache_hit=False)

    async def warm(self, limit: int) -> int:
        """Load the newest ``limit`` orders into the cache with one repository read; return how
        many were cached (0 if the cache is down)."""
        if limit <= 0:
            return 0
        cached = 0
        for order_uid, body in await self._repository.newest(limit):
            if not await self._store(CACHE_PREFIX + order_uid, body):
                break
            cached += 1
        log.info("order cache warmed with %d orders", cached)
        return cached

    async def _store(self, key: str, body: bytes) -> bool:
        try:
            await self._cache.set(key, body, self._ttl)
        except CacheUnavailable as exc:
            self.cache_errors += 1
            log.warning("order cache unavailable, not caching: %s", exc)
            return False
        return True
