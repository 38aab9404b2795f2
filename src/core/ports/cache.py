"""The cache port: a byte store with TTLs and an atomic counter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

V = TypeVar("V")


class Cache(Protocol):
    """A key -> bytes store. Every method may raise ``CacheUnavailable``; callers treat that
    as a miss (reads) or a no-op (writes), never as a failure of the request."""

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any previous value. ``ttl`` in seconds;
        ``None`` means no expiry (a bounded cache may still evict it)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``. If no such key exists this is a no-op."""
        ...

    async def incr(self, key: str) -> int:
        """Atomically add one to the integer under ``key`` (absent counts as 0) and return the
        new value. Counters do not expire and are never evicted by size bounds."""
        ...

    async def get_in_generation(
        self, counter: str, prefix: str, suffix: str = ""
    ) -> tuple[int, bytes | None]:
        """Read, as one step, the counter ``counter`` (absent counts as 0) and the value stored
        under ``prefix + str(generation) + suffix`` for the generation just read; return
        ``(generation, value or None)``. The value returned was read under the generation
        returned: an ``incr`` of the counter is entirely before or entirely after both reads.
        A server-backed cache does this in one round trip. ``CacheUnavailable`` if the
        counter holds something that is not an integer."""
        ...

    async def ping(self) -> None:
        """Return if the cache is reachable, else raise ``CacheUnavailable``."""
        ...


class ViewCache(Cache, Protocol):
    """A cache in process memory may also keep, beside a value, what a reader made of it (a
    reader on the hot path then finds its own structure with one lookup). Optional: readers
    check for ``get_view`` and otherwise build their view from ``get`` on every read."""

    async def get_view(self, key: str, view: Callable[[bytes], V | None]) -> tuple[bytes, V] | None:
        """The value under ``key`` and ``view(value)`` (``None`` if absent or expired, or if
        ``view`` returns ``None``). The view is kept with the entry until the entry is replaced,
        deleted, evicted or expires, so ``view`` runs once per stored value (and per ``view``
        function, compared by identity): it must be a pure function of the value. ``get``,
        ``set`` and recency are as if ``get(key)`` had been called."""
        ...
