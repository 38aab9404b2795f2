"""The catalog use cases: create, update, remove, reprioritize and list goods; list and
create projects. Each change runs in one unit of work that locks what it edits, writes, and
records one audit event per changed good; after the commit it invalidates every cached list
page with one counter increment.

The store's locking protocol cannot deadlock (docs/api.md, "Concurrent writes"). As a safety
net only, a unit of work the database aborted to break a conflict (``StorageConflict``) is run
again whole, a bounded number of times, logged and counted in ``stats.write_retries``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from core.catalog import rules
from core.catalog.events import EventType, GoodEvent
from core.catalog.models import Good, GoodsPage, PriorityChange, Project
from core.errors import CacheUnavailable, NotFound, StorageConflict
from core.ports.cache import Cache
from core.ports.catalog import CatalogStore, CatalogUnitOfWork
from core.ports.clock import Clock, IdGenerator
from core.retry import Backoff

log = logging.getLogger(__name__)

PageEncoder = Callable[[GoodsPage], bytes]

GENERATION_KEY = "catalog:goods:gen"
# A page's key: PAGE_PREFIX + generation + PAGE_SUFFIX ("catalog:goods:list:7:10:1").
PAGE_PREFIX = "catalog:goods:list:"
PAGE_SUFFIX = ":{limit}:{offset}"
#: Runs of one write's unit of work when the database keeps aborting it as a conflict.
WRITE_ATTEMPTS = 3

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Removed:
    id: int
    project_id: int


@attrs.define(kw_only=True)
class ListStats:
    """Observable counters of the list read path, and ``write_retries``: units of work run
    again after the database aborted them as a conflict (0 while the locking protocol
    holds)."""

    hits: int = 0
    misses: int = 0
    loads: int = 0
    cache_errors: int = 0
    write_retries: int = 0


def _default_backoff(backoff: Backoff | None) -> Backoff:
    return backoff or Backoff(initial=0.01, maximum=0.2)


@attrs.define(kw_only=True, eq=False, on_setattr=attrs.setters.NO_OP)
class CatalogService:
    """The catalog's use cases. ``encode_page`` turns a page into the bytes that are cached
    and served; ``ttl`` is the list cache's time to live in seconds. After a cache failure
    the cache is bypassed for ``cache_retry_after`` seconds, so an outage costs one failed
    round trip per interval, not one per request."""

    _store: CatalogStore
    _cache: Cache
    _clock: Clock
    _ids: IdGenerator
    _encode_page: PageEncoder
    _ttl: float = 60.0
    _cache_retry_after: float = 1.0
    _conflict_backoff: Backoff = attrs.field(default=None, converter=_default_backoff)
    _cache_down_until: float = attrs.field(init=False, default=0.0)
    _invalidation_pending: bool = attrs.field(init=False, default=False)
    _flights: dict[str, asyncio.Future[bytes]] = attrs.field(init=False, factory=dict)
    stats: ListStats = attrs.field(init=False, factory=ListStats)

    # --- goods ---------------------------------------------------------------------------

    async def create_good(self, *, project_id: int, name: str, description: str = "") -> Good:
        """Create a good at the end of the priority order. ``NotFound`` if the project does
        not exist; ``ValidationError`` for a bad name or description."""
        name = rules.clean_name(name)
        description = rules.clean_description(description)

        async def attempt() -> Good:
            async with self._store.unit_of_work() as uow:
                good = await uow.goods.add(
                    project_id=project_id, name=name, description=description
                )
                if good is None:
                    raise NotFound
                await self._record(uow, "create", [good], target=good)
                await uow.commit()
            return good

        good = await self._write("create", attempt)
        await self._invalidate()
        return good

    async def update_good(
        self, *, good_id: int, project_id: int, name: str, description: str | None = None
    ) -> Good:
        """Rename a good and, if ``description`` is given, replace its description.
        ``NotFound`` if the good is not in that project or is removed."""
        name = rules.clean_name(name)
        if description is not None:
            description = rules.clean_description(description)

        async def attempt() -> Good:
            async with self._store.unit_of_work() as uow:
                current = await self._live_good(uow, good_id, project_id)
                changed = attrs.evolve(
                    current,
                    name=name,
                    description=current.description if description is None else description,
                )
                good = await uow.goods.save(changed)
                await self._record(uow, "update", [good], target=good, before={good.id: current})
                await uow.commit()
            return good

        good = await self._write("update", attempt)
        await self._invalidate()
        return good

    async def remove_good(self, *, good_id: int, project_id: int) -> Removed:
        """Soft-remove a good. ``NotFound`` if it is not in that project or already removed."""

        async def attempt() -> Good:
            async with self._store.unit_of_work() as uow:
                current = await self._live_good(uow, good_id, project_id)
                good = await uow.goods.save(attrs.evolve(current, removed=True))
                await self._record(uow, "remove", [good], target=good, before={good.id: current})
                await uow.commit()
            return good

        good = await self._write("remove", attempt)
        await self._invalidate()
        return Removed(id=good.id, project_id=good.project_id)

    async def reprioritize_good(
        self, *, good_id: int, project_id: int, new_priority: int
    ) -> list[PriorityChange]:
        """Give the good ``new_priority``, moving every other good at or after it up by one.
        Returns every good whose priority changed, the target included (the target alone if
        it already had ``new_priority``). ``NotFound`` if the good is not in that project or
        is removed."""
        rules.check_priority(new_priority)

        async def attempt() -> list[Good] | None:
            async with self._store.unit_of_work() as uow:
                target = await uow.goods.lock_for_reprioritize(good_id, project_id, new_priority)
                if target is None or target.removed:
                    raise NotFound
                if target.priority == new_priority:
                    return None
                changed = await uow.goods.reprioritize(good_id, project_id, new_priority)
                # the target had its old priority; every good it shifted moved up by one
                before = {
                    g.id: target if g.id == target.id else attrs.evolve(g, priority=g.priority - 1)
                    for g in changed
                }
                await self._record(uow, "reprioritize", changed, target=target, before=before)
                await uow.commit()
            return changed

        changed = await self._write("reprioritize", attempt)
        if changed is None:
            return [PriorityChange(id=good_id, project_id=project_id, priority=new_priority)]
        await self._invalidate()
        return [
            PriorityChange(id=g.id, project_id=g.project_id, priority=g.priority) for g in changed
        ]

    async def list_goods(self, *, limit: int | None = None, offset: int | None = None) -> bytes:
        """The encoded page of goods, from the cache when it holds this page of the current
        generation, else from the store (one load however many callers miss at once), then
        cached for ``ttl`` seconds. A cache outage only makes every request a load. A hit is
        one cache call: the generation and the page are read together."""
        limit, offset = rules.page_window(limit, offset)
        if not await self._cache_usable():
            return await self._load(limit, offset)
        suffix = PAGE_SUFFIX.format(limit=limit, offset=offset)
        try:
            generation, cached = await self._cache.get_in_generation(
                GENERATION_KEY, PAGE_PREFIX, suffix
            )
        except CacheUnavailable as exc:
            self._cache_failed(exc)
            return await self._load(limit, offset)
        if cached is not None:
            self.stats.hits += 1
            return cached
        self.stats.misses += 1
        key = f"{PAGE_PREFIX}{generation}{suffix}"
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fill(key, limit, offset))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        return await asyncio.shield(flight)

    async def page(self, *, limit: int | None = None, offset: int | None = None) -> GoodsPage:
        """The page of goods straight from the store (no cache)."""
        limit, offset = rules.page_window(limit, offset)
        async with self._store.unit_of_work() as uow:
            return await uow.goods.page(limit=limit, offset=offset)

    # --- projects ------------------------------------------------------------------------

    async def list_projects(self) -> list[Project]:
        """Every project, ordered by id."""
        async with self._store.unit_of_work() as uow:
            return await uow.projects.list()

    async def create_project(self, *, name: str) -> Project:
        """Create a project; ``ValidationError`` for a bad name."""
        name = rules.clean_name(name)

        async def attempt() -> Project:
            async with self._store.unit_of_work() as uow:
                project = await uow.projects.add(name=name)
                await uow.commit()
            return project

        return await self._write("project create", attempt)

    # --- internals -----------------------------------------------------------------------

    async def _write(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()`` (one whole unit of work), run again after a ``StorageConflict``, at
        most ``WRITE_ATTEMPTS`` runs in all. A safety net: the locking protocol is what keeps
        conflicts away, so each retry is logged at warning and counted."""
        for run in range(WRITE_ATTEMPTS):
            try:
                return await attempt()
            except StorageConflict as exc:
                if run + 1 == WRITE_ATTEMPTS:
                    raise
                self.stats.write_retries += 1
                log.warning("catalog %s aborted as a conflict, running it again: %s", what, exc)
                await asyncio.sleep(self._conflict_backoff.delay(run))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    async def _live_good(uow: CatalogUnitOfWork, good_id: int, project_id: int) -> Good:
        good = await uow.goods.get_for_update(good_id, project_id)
        if good is None or good.removed:
            raise NotFound
        return good

    async def _record(
        self,
        uow: CatalogUnitOfWork,
        type_: EventType,
        goods: list[Good],
        *,
        target: Good,
        before: dict[int, Good] | None = None,
    ) -> None:
        """One change: an event per good in ``goods``, sharing a change id and a time, each
        naming ``target`` (the good the change was made to) and its own state ``before``."""
        now = self._clock.now()
        change_id = self._ids.new_id()
        await uow.outbox.add(
            [
                GoodEvent.of(
                    g,
                    type_,
                    event_id=change_id if g.id == target.id else self._ids.new_id(),
                    event_time=now,
                    change_id=change_id,
                    target_id=target.id,
                    before=(before or {}).get(g.id),
                )
                for g in goods
            ]
        )

    async def _load(self, limit: int, offset: int) -> bytes:
        self.stats.loads += 1
        return self._encode_page(await self.page(limit=limit, offset=offset))

    async def _fill(self, key: str, limit: int, offset: int) -> bytes:
        body = await self._load(limit, offset)
        await self._cache_set(key, body)
        return body

    async def _cache_usable(self) -> bool:
        """Whether to read the cache now: not within ``cache_retry_after`` of a failure, and
        no generation increment of ours still pending."""
        if time.monotonic() < self._cache_down_until:
            return False
        if self._invalidation_pending:
            # A change of ours could not bump the generation: its pages are stale until it is.
            await self._invalidate()
            if self._invalidation_pending:
                return False
        return True

    async def _cache_set(self, key: str, body: bytes) -> None:
        try:
            await self._cache.set(key, body, self._ttl)
        except CacheUnavailable as exc:
            self._cache_failed(exc)

    async def _invalidate(self) -> None:
        # One increment makes every page of the previous generation unreachable. Tried even
        # while the cache is marked down: a cache that came back must not serve stale pages.
        # If it fails, the increment stays pending: this process reads no cached page until
        # it succeeds (other processes' pages of the old generation expire in ``ttl``).
        try:
            await self._cache.incr(GENERATION_KEY)
        except CacheUnavailable as exc:
            self._invalidation_pending = True
            self._cache_failed(exc)
        else:
            self._invalidation_pending = False

    def _cache_failed(self, exc: CacheUnavailable) -> None:
        self.stats.cache_errors += 1
        self._cache_down_until = time.monotonic() + self._cache_retry_after
        log.warning("list cache unavailable, serving from the store: %s", exc)
