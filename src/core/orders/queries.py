"""The read path: an order document by id, cache first, and the cache warm-up.

The cache holds the serialized JSON document together with its digest (a strong validator,
computed once, when the document is cached); a hit returns both untouched, so serving a cached
order neither parses nor hashes it. A reader on the hot path may also ask for its own view of a
cached document (``cached_view``: the HTTP front's prepared headers); an in-process cache
(``ViewCache``) keeps that view with the entry, so it is made once per cached document.
Orders are immutable, so a cached document never goes stale and needs no invalidation. A
failing cache (``CacheUnavailable``) is a miss, never a failed request.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from core.errors import CacheUnavailable, NotFound, ValidationError
from core.orders.model import is_well_formed_uid
from core.ports.cache import Cache
from core.ports.orders import MAX_RECENT, OrderRepository, OrderSummary

log = logging.getLogger(__name__)

# A cached value is the body's hex digest (``DIGEST_SIZE`` ASCII bytes) followed by the body.
# "v2" keeps these apart from the bare bodies an older version cached under ``order:<uid>``
# (replicas of both versions may share one Redis during a rolling upgrade).
CACHE_PREFIX = "order:v2:"
DIGEST_SIZE = 32
_HEX_DIGEST = re.compile(rb"[0-9a-f]{%d}" % DIGEST_SIZE)
T = TypeVar("T")


def digest_of(body: bytes) -> str:
    """The document's digest: 32 hex characters, equal exactly when the bytes are equal."""
    return hashlib.blake2b(body, digest_size=DIGEST_SIZE // 2).hexdigest()


def pack(body: bytes) -> bytes:
    """The cache value of ``body``: its digest, then the body."""
    return digest_of(body).encode("ascii") + body


def unpack(value: bytes) -> tuple[str, bytes] | None:
    """``(digest, body)`` of a cache value; ``None`` if it is not one ``pack`` made."""
    head = value[:DIGEST_SIZE]
    if _HEX_DIGEST.fullmatch(head) is None:
        return None
    return head.decode("ascii"), value[DIGEST_SIZE:]


@attrs.frozen(kw_only=True, slots=True)
class OrderDocument:
    body: bytes
    digest: str
    """``digest_of(body)``: the HTTP layer's ETag."""
    cache_hit: bool


@attrs.define(kw_only=True, slots=True)
class OrderReadStats:
    """Observable counters of the read path (plain integers: a hit pays no metrics call)."""

    hits: int = 0
    misses: int = 0
    cache_errors: int = 0


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
        self.stats = OrderReadStats()
        get_view = getattr(cache, "get_view", None)  # optional: ``ViewCache``
        self._get_view: Callable[..., Any] | None = get_view
        self._views: dict[Callable[[OrderDocument], Any], Callable[[bytes], Any]] = {}

    @property
    def cache_errors(self) -> int:
        return self.stats.cache_errors

    async def cached(self, order_uid: str) -> OrderDocument | None:
        """The order's document if the cache holds it (a hit, counted), else ``None``: a
        malformed id, a miss or a cache outage (counted), left to ``get(cache_checked=True)``."""
        if not is_well_formed_uid(order_uid):
            return None
        try:
            cached = await self._cache.get(CACHE_PREFIX + order_uid)
        except CacheUnavailable as exc:
            self.stats.cache_errors += 1
            log.warning("order cache unavailable, reading the database: %s", exc)
            return None
        if cached is None or (entry := unpack(cached)) is None:
            return None
        self.stats.hits += 1
        return OrderDocument(body=entry[1], digest=entry[0], cache_hit=True)

    async def cached_view(
        self, order_uid: str, view: Callable[[OrderDocument], T]
    ) -> tuple[bytes, T] | None:
        """The cached order's body and ``view`` of its document (a hit, counted), else
        ``None`` as for ``cached``. ``view`` must be a pure function of the document: an
        in-process cache keeps its result with the entry (so it should not hold the body: the
        entry has it), a server-backed one has it made on every hit."""
        if not is_well_formed_uid(order_uid):
            return None
        key = CACHE_PREFIX + order_uid
        try:
            if self._get_view is not None:
                found = await self._get_view(key, self._unpacked(view))
            elif (value := await self._cache.get(key)) is None:
                found = None
            else:
                made = self._unpacked(view)(value)
                found = None if made is None else (value, made)
        except CacheUnavailable as exc:
            self.stats.cache_errors += 1
            log.warning("order cache unavailable, reading the database: %s", exc)
            return None
        if found is None:
            return None
        self.stats.hits += 1
        return found[0][DIGEST_SIZE:], found[1]

    def _unpacked(self, view: Callable[[OrderDocument], T]) -> Callable[[bytes], T | None]:
        """``view`` of a cache value (``None`` for one ``pack`` did not make), one function
        per ``view``: a ``ViewCache`` recognises its views by identity."""
        of_value = self._views.get(view)
        if of_value is None:

            def of_value(value: bytes) -> T | None:
                entry = unpack(value)
                if entry is None:
                    return None
                return view(OrderDocument(body=entry[1], digest=entry[0], cache_hit=True))

            self._views[view] = of_value
        return of_value

    async def get(self, order_uid: str, *, cache_checked: bool = False) -> OrderDocument:
        """The order's JSON document. Raises ``ValidationError`` for a malformed id,
        ``NotFound`` for an unknown one, ``StorageError`` if the database is needed and down.
        ``cache_checked``: the caller's ``cached`` just missed, so go to the repository."""
        if not is_well_formed_uid(order_uid):
            raise ValidationError(
                details={"order_uid": "must be 1..64 characters of A-Z a-z 0-9 _ -"}
            )
        if not cache_checked and (document := await self.cached(order_uid)) is not None:
            return document
        self.stats.misses += 1
        body = await self._repository.get(order_uid)
        if body is None:
            raise NotFound(details={"order_uid": order_uid})
        value = pack(body)
        await self._store(CACHE_PREFIX + order_uid, value)
        return OrderDocument(body=body, digest=value[:DIGEST_SIZE].decode(), cache_hit=False)

    async def recent(self, limit: int, before: str | None = None) -> list[OrderSummary]:
        """Summaries of the newest orders, ``limit`` 1..``MAX_RECENT``, starting after the order
        ``before`` (the previous page's last ``order_uid``). Raises ``ValidationError`` for a
        limit out of range or a malformed ``before``, ``StorageError`` if the store is down."""
        if not 1 <= limit <= MAX_RECENT:
            raise ValidationError(details={"limit": f"must be 1..{MAX_RECENT}"})
        if before is not None and not is_well_formed_uid(before):
            raise ValidationError(
                details={"before": "must be an order_uid: 1..64 characters of A-Z a-z 0-9 _ -"}
            )
        return await self._repository.recent(limit, before)

    async def warm(self, limit: int) -> int:
        """Load the newest ``limit`` orders into the cache with one repository read; return how
        many were cached (0 if the cache is down)."""
        if limit <= 0:
            return 0
        cached = 0
        for order_uid, body in await self._repository.newest(limit):
            if not await self._store(CACHE_PREFIX + order_uid, pack(body)):
                break
            cached += 1
        log.info("order cache warmed with %d orders", cached)
        return cached

    async def _store(self, key: str, value: bytes) -> bool:
        try:
            await self._cache.set(key, value, self._ttl)
        except CacheUnavailable as exc:
            self.stats.cache_errors += 1
            log.warning("order cache unavailable, not caching: %s", exc)
            return False
        return True
