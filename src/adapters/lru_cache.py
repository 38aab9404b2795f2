"""An in-process cache: at most ``maxsize`` entries, least recently used evicted first, each
entry with its own TTL; counters (``incr``) live apart and are never evicted.

A read is the hot path of ``GET /order/{uid}`` (orders are immutable, so their entries have
no TTL): one lookup in an ``OrderedDict`` (C) and a move to its end; the clock is read only for
an entry that has a TTL. An expired entry is dropped when it is read, or when the size bound
reaches it (it counts towards ``maxsize`` until then)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from core.errors import CacheUnavailable

V = TypeVar("V")


class LruCache:
    """Implements ``core.ports.cache.ViewCache`` in process memory. Raises ``CacheUnavailable``
    only for a counter that is not an integer (there is no server to be down).
    ``timer`` (monotonic seconds) is injectable for tests."""

    def __init__(self, *, maxsize: int = 10_000, timer: Callable[[], float] = time.monotonic):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._timer = timer
        # key -> (value, expiry on ``timer``'s clock (``math.inf``: none)[, view function,
        # its result]), least recently used first
        self._entries: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._counters: dict[str, int] = {}
        # A subclass that changes ``get`` but not ``get_view`` (a test's failing cache) has its
        # views read through its ``get``, as ``get_in_generation`` is: no view is kept then.
        kind = type(self)
        self._views_through_get = kind.get is not LruCache.get and (
            kind.get_view is LruCache.get_view
        )

    async def get(self, key: str) -> bytes | None:
        if key in self._counters:
            return str(self._counters[key]).encode()
        return self._read(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._counters.pop(key, None)
        entries = self._entries
        entries[key] = (value, math.inf if ttl is None else self._timer() + ttl)
        entries.move_to_end(key)
        if len(entries) > self._maxsize:
            entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._counters.pop(key, None)
        self._entries.pop(key, None)

    async def incr(self, key: str) -> int:
        if key not in self._counters:
            value = self._read(key)
            try:
                start = int(value) if value is not None else 0
            except ValueError as exc:  # as Redis refuses it: the value is left as it was
                raise CacheUnavailable(f"incr of {key!r}: not an integer") from exc
            self._entries.pop(key, None)
            self._counters[key] = start
        self._counters[key] += 1
        return self._counters[key]

    async def get_in_generation(
        self, counter: str, prefix: str, suffix: str = ""
    ) -> tuple[int, bytes | None]:
        # Two reads with no await between them: one step on the event loop. Through ``get``,
        # so a subclass that changes ``get`` changes this too.
        raw = await self.get(counter)
        try:
            generation = int(raw) if raw is not None else 0
        except ValueError as exc:
            raise CacheUnavailable(f"counter {counter!r} is not an integer") from exc
        return generation, await self.get(f"{prefix}{generation}{suffix}")

    async def get_view(self, key: str, view: Callable[[bytes], V | None]) -> tuple[bytes, V] | None:
        if self._views_through_get or key in self._counters:  # nothing kept: made every read
            value = await self.get(key)
            if value is None:
                return None
            made = view(value)
            return None if made is None else (value, made)
        entry = self._entry(key)
        if entry is None:
            return None
        if len(entry) == 4 and entry[2] is view:
            return entry[0], entry[3]
        made = view(entry[0])
        if made is None:
            return None
        self._entries[key] = (entry[0], entry[1], view, made)  # keeps its place in the order
        return entry[0], made

    async def ping(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._entries) + len(self._counters)

    def _read(self, key: str) -> bytes | None:
        entry = self._entry(key)
        return None if entry is None else entry[0]

    def _entry(self, key: str) -> tuple[Any, ...] | None:
        """The live entry of ``key``, made the most recently used; an expired one is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] != math.inf and entry[1] <= self._timer():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry
