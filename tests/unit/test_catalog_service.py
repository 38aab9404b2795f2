"""Catalog use cases on the in-memory store: rules, audit events, and the list cache."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.lru_cache import LruCache
from adapters.memory.catalog import MemoryCatalogStore
from core.catalog.events import GoodEvent
from core.catalog.models import GoodsPage
from core.catalog.service import WRITE_ATTEMPTS, CatalogService
from core.errors import (
    CacheUnavailable,
    NotFound,
    StorageConflict,
    StorageError,
    ValidationError,
)
from core.retry import Backoff
from tests.support import EVENT_KEYS

NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


class CountingIds:
    def __init__(self) -> None:
        self.n = 0

    def new_id(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.n)


def encode(page: GoodsPage) -> bytes:
    return json.dumps(
        {"total": page.total, "removed": page.removed, "ids": [g.id for g in page.goods]}
    ).encode()


class DownCache:
    """A cache whose server is unreachable."""

    calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise CacheUnavailable("down")

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.calls += 1
        raise CacheUnavailable("down")

    async def delete(self, key: str) -> None:
        raise CacheUnavailable("down")

    async def incr(self, key: str) -> int:
        self.calls += 1
        raise CacheUnavailable("down")

    async def get_in_generation(
        self, counter: str, prefix: str, suffix: str = ""
    ) -> tuple[int, bytes | None]:
        self.calls += 1
        raise CacheUnavailable("down")

    async def ping(self) -> None:
        raise CacheUnavailable("down")


@pytest.fixture
def store() -> MemoryCatalogStore:
    return MemoryCatalogStore(clock=FixedClock())


@pytest.fixture
def catalog(store: MemoryCatalogStore) -> CatalogService:
    return CatalogService(
        store=store, cache=LruCache(), clock=FixedClock(), ids=CountingIds(), encode_page=encode
    )


def events(store: MemoryCatalogStore) -> list[GoodEvent]:
    return [GoodEvent.from_json(r.payload) for r in store.outbox_records()]


async def test_create_trims_the_name_and_records_an_event(
    catalog: CatalogService, store: MemoryCatalogStore
) -> None:
    good = await catalog.create_good(project_id=1, name="  tea  ", description="green")
    assert (good.name, good.description, good.priority) == ("tea", "green", 1)
    (created,) = events(store)
    assert (created.type, created.id, created.name, created.event_time) == (
        "create",
        good.id,
        "tea",
        NOW,
    )
    assert created.event_id == uuid.UUID(int=1)


@pytest.mark.parametrize(
    ("name", "description", "field"),
    [
        ("", "", "name"),
        ("   ", "", "name"),
        ("x" * 256, "", "name"),
        ("ok", "d" * 10_001, "description"),
        ("a\x00b", "", "name"),
        ("ok", "nul\x00", "description"),
    ],
)
async def test_create_refuses_bad_fields_naming_them(
    catalog: CatalogService, name: str, description: str, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await catalog.create_good(project_id=1, name=name, description=description)
    assert list(caught.value.details) == [field]


async def test_boundary_lengths_are_accepted(catalog: CatalogService) -> None:
    good = await catalog.create_good(project_id=1, name="x" * 255, description="d" * 10_000)
    assert len(good.name) == 255


async def test_create_in_a_missing_project_is_not_found(
    catalog: CatalogService, store: MemoryCatalogStore
) -> None:
    with pytest.raises(NotFound):
        await catalog.create_good(project_id=2, name="x")
    assert events(store) == []


async def test_update_keeps_the_description_unless_given(catalog: CatalogService) -> None:
    good = await catalog.create_good(project_id=1, name="a", description="keep")
    renamed = await catalog.update_good(good_id=good.id, project_id=1, name="b")
    assert (renamed.name, renamed.description) == ("b", "keep")
    cleared = await catalog.update_good(good_id=good.id, project_id=1, name="b", description="")
    assert cleared.description == ""


async def test_edits_of_missing_wrong_project_or_removed_goods_are_not_found(
    catalog: CatalogService, store: MemoryCatalogStore
) -> None:
    good = await catalog.create_good(project_id=1, name="a")
    await catalog.create_project(name="other")
    for project_id, good_id in [(1, good.id + 1), (2, good.id)]:
        with pytest.raises(NotFound):
            await catalog.update_good(good_id=good_id, project_id=project_id, name="x")
        with pytest.raises(NotFound):
            await catalog.remove_good(good_id=good_id, project_id=project_id)
        with pytest.raises(NotFound):
            await catalog.reprioritize_good(good_id=good_id, project_id=project_id, new_priority=1)
    removed = await catalog.remove_good(good_id=good.id, project_id=1)
    assert (removed.id, removed.project_id) == (good.id, 1)
    with pytest.raises(NotFound):
        await catalog.remove_good(good_id=good.id, project_id=1)
    with pytest.raises(NotFound):
        await catalog.update_good(good_id=good.id, project_id=1, name="x")
    with pytest.raises(NotFound):
        await catalog.reprioritize_good(good_id=good.id, project_id=1, new_priority=3)
    assert [e.type for e in events(store)] == ["create", "remove"]
    assert events(store)[-1].removed


async def test_reprioritize_returns_exactly_the_changed_goods(
    catalog: CatalogService, store: MemoryCatalogStore
) -> None:
    a, b, c, d = [await catalog.create_good(project_id=1, name=n) for n in "abcd"]
    changes = await catalog.reprioritize_good(good_id=c.id, project_id=1, new_priority=2)
    # Literally the rule: every other good at or after 2 moves up by one (c's old 3 frees up).
    assert [(x.id, x.priority) for x in changes] == [(c.id, 2), (b.id, 3), (d.id, 5)]
    page = await catalog.page(limit=10, offset=1)
    assert [(g.id, g.priority) for g in page.goods] == [(a.id, 1), (c.id, 2), (b.id, 3), (d.id, 5)]
    moved = [e for e in events(store) if e.type == "reprioritize"]
    assert sorted((e.id, e.priority) for e in moved) == sorted((x.id, x.priority) for x in changes)


async def test_reprioritize_to_the_same_priority_changes_nothing(
    catalog: CatalogService, store: MemoryCatalogStore
) -> None:
    a = await catalog.create_good(project_id=1, name="a")
    await catalog.create_good(project_id=1, name="b")
    changes = await catalog.reprioritize_good(good_id=a.id, project_id=1, new_priority=1)
    assert [(x.id, x.priority) for x in changes] == [(a.id, 1)]
    assert [e.type for e in events(store)] == ["create", "create"]


async def test_reprioritize_refuses_priorities_out_of_range(catalog: CatalogService) -> None:
    a = await catalog.create_good(project_id=1, name="a")
    for bad in (0, -1, 1_000_000_001):
        with pytest.raises(ValidationError) as caught:
            await catalog.reprioritize_good(good_id=a.id, project_id=1, new_priority=bad)
        assert list(caught.value.details) == ["newPriority"]


async def test_page_window_rules(catalog: CatalogService) -> None:
    await catalog.create_good(project_id=1, name="a")
    assert json.loads(await catalog.list_goods(offset=0))["ids"] == [1]
    for limit, offset, field in [(0, 1, "limit"), (1001, 1, "limit"), (10, -1, "offset")]:
        with pytest.raises(ValidationError) as caught:
            await catalog.list_goods(limit=limit, offset=offset)
        assert list(caught.value.details) == [field]


async def test_every_change_makes_every_cached_page_a_miss(catalog: CatalogService) -> None:
    a = await catalog.create_good(project_id=1, name="a")
    b = await catalog.create_good(project_id=1, name="b")
    windows = [(10, 1), (1, 1), (1, 2), (5, 3)]
    changes = [
        lambda: catalog.create_good(project_id=1, name="c"),
        lambda: catalog.update_good(good_id=a.id, project_id=1, name="A"),
        lambda: catalog.reprioritize_good(good_id=b.id, project_id=1, new_priority=1),
        lambda: catalog.remove_good(good_id=a.id, project_id=1),
    ]
    for change in changes:
        for limit, offset in windows:
            await catalog.list_goods(limit=limit, offset=offset)
        hits = catalog.stats.hits
        for limit, offset in windows:
            await catalog.list_goods(limit=limit, offset=offset)
        assert catalog.stats.hits == hits + len(windows)  # all cached now
        await change()
        misses = catalog.stats.misses
        for limit, offset in windows:
            await catalog.list_goods(limit=limit, offset=offset)
        assert catalog.stats.misses == misses + len(windows)


async def test_a_cached_page_shows_the_change_after_it(catalog: CatalogService) -> None:
    a = await catalog.create_good(project_id=1, name="a")
    before = json.loads(await catalog.list_goods())
    await catalog.remove_good(good_id=a.id, project_id=1)
    after = json.loads(await catalog.list_goods())
    assert (before["removed"], after["removed"]) == (0, 1)


async def test_concurrent_misses_of_one_page_cost_one_load(catalog: CatalogService) -> None:
    await catalog.create_good(project_id=1, name="a")
    bodies = await asyncio.gather(*(catalog.list_goods(limit=5) for _ in range(100)))
    assert len(set(bodies)) == 1
    assert catalog.stats.loads == 1


async def test_a_down_cache_serves_from_the_store(store: MemoryCatalogStore) -> None:
    cache = DownCache()
    catalog = CatalogService(
        store=store, cache=cache, clock=FixedClock(), ids=CountingIds(), encode_page=encode
    )
    await catalog.create_good(project_id=1, name="a")
    for _ in range(5):
        assert json.loads(await catalog.list_goods())["ids"] == [1]
    assert catalog.stats.loads == 5
    assert catalog.stats.cache_errors >= 1
    # Backing off: five lists after the failure did not each try the dead cache.
    assert cache.calls <= 2


class FlakyCache(LruCache):
    """An LRU whose server can be switched off and on again, keeping what it held."""

    down = False

    async def get(self, key: str) -> bytes | None:
        if self.down:
            raise CacheUnavailable("down")
        return await super().get(key)

    async def incr(self, key: str) -> int:
        if self.down:
            raise CacheUnavailable("down")
        return await super().incr(key)


async def test_a_change_made_while_the_cache_was_down_is_not_hidden_once_it_returns(
    store: MemoryCatalogStore,
) -> None:
    cache = FlakyCache()
    catalog = CatalogService(
        store=store,
        cache=cache,
        clock=FixedClock(),
        ids=CountingIds(),
        encode_page=encode,
        cache_retry_after=0.0,
    )
    a = await catalog.create_good(project_id=1, name="a")
    assert json.loads(await catalog.list_goods())["removed"] == 0  # cached
    cache.down = True
    await catalog.remove_good(good_id=a.id, project_id=1)  # the INCR fails
    cache.down = False
    assert json.loads(await catalog.list_goods())["removed"] == 1


def test_event_json_has_exactly_the_agreed_keys() -> None:
    event = GoodEvent(
        event_id=uuid.UUID(int=7),
        type="update",
        id=3,
        project_id=1,
        name="Чай",
        description="",
        priority=2,
        removed=False,
        event_time=NOW,
    )
    raw = json.loads(event.to_json())
    assert tuple(raw) == EVENT_KEYS
    assert raw["event_time"] == "2026-03-04T05:06:07.890123Z"
    assert raw["change_id"] == str(event.event_id)  # alone: its own change
    assert raw["target_id"] == 3
    assert raw["before_priority"] is None


def test_an_event_of_an_earlier_version_reads_as_its_own_change() -> None:
    old = {
        "event_id": str(uuid.UUID(int=9)),
        "type": "create",
        "id": 4,
        "project_id": 1,
        "name": "x",
        "description": "",
        "priority": 1,
        "removed": False,
        "event_time": "2026-03-04T05:06:07.890123Z",
    }
    event = GoodEvent.from_json(json.dumps(old).encode())
    assert event.change_id == uuid.UUID(int=9)
    assert event.target_id == 4
    assert event.is_target
    assert GoodEvent.from_json(event.to_json()) == event


async def test_one_reprioritize_is_one_change_naming_its_target(
    catalog: CatalogService, store: MemoryCatalogStore
) -> None:
    goods = [await catalog.create_good(project_id=1, name=f"g{i}") for i in range(4)]
    first = len(events(store))
    await catalog.reprioritize_good(good_id=goods[3].id, project_id=1, new_priority=2)
    changed = events(store)[first:]
    assert len(changed) == 3  # the target and the two goods it shifted
    assert len({e.change_id for e in changed}) == 1
    assert len({e.event_time for e in changed}) == 1
    assert {e.target_id for e in changed} == {goods[3].id}
    target = next(e for e in changed if e.is_target)
    assert (target.id, target.before_priority, target.priority) == (goods[3].id, 4, 2)
    shifted = sorted((e.id, e.before_priority, e.priority) for e in changed if not e.is_target)
    assert shifted == [(goods[1].id, 2, 3), (goods[2].id, 3, 4)]

    await catalog.update_good(good_id=goods[0].id, project_id=1, name="renamed")
    update = events(store)[-1]
    assert (update.before_name, update.name, update.before_description) == ("g0", "renamed", None)
    assert GoodEvent.from_json(update.to_json()) == update


async def test_projects_can_be_listed_and_created(catalog: CatalogService) -> None:
    created = await catalog.create_project(name=" second ")
    assert [(p.id, p.name) for p in await catalog.list_projects()] == [
        (1, "Первая запись"),
        (created.id, "second"),
    ]
    with pytest.raises(ValidationError):
        await catalog.create_project(name="")


class ConflictingStore:
    """The in-memory store whose first ``conflicts`` commits fail as a database conflict
    (a deadlock victim): nothing of those units of work is kept."""

    def __init__(self, inner: MemoryCatalogStore, conflicts: int) -> None:
        self.inner = inner
        self.conflicts = conflicts

    def unit_of_work(self) -> Any:
        uow = self.inner.unit_of_work()
        commit = uow.commit

        async def failing_commit() -> None:
            if self.conflicts > 0:
                self.conflicts -= 1
                raise StorageConflict("commit failed: deadlock detected")
            await commit()

        uow.commit = failing_commit  # type: ignore[method-assign]
        return uow


def _conflicting(store: MemoryCatalogStore, conflicts: int) -> CatalogService:
    return CatalogService(
        store=ConflictingStore(store, conflicts),
        cache=LruCache(),
        clock=FixedClock(),
        ids=CountingIds(),
        encode_page=encode,
        conflict_backoff=Backoff(initial=0, maximum=0),
    )


async def test_a_write_aborted_as_a_conflict_is_run_again_whole_and_counted(
    store: MemoryCatalogStore, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = _conflicting(store, conflicts=2)
    good = await catalog.create_good(project_id=1, name="tea")
    assert catalog.stats.write_retries == 2
    assert [r.levelname for r in caplog.records if "conflict" in r.message] == ["WARNING"] * 2
    # Only the run that committed left anything: one good, one event.
    assert [e.id for e in events(store)] == [good.id]
    moved = await _conflicting(store, conflicts=1).reprioritize_good(
        good_id=good.id, project_id=1, new_priority=5
    )
    assert [(c.id, c.priority) for c in moved] == [(good.id, 5)]


async def test_conflicts_are_retried_a_bounded_number_of_times(
    store: MemoryCatalogStore,
) -> None:
    catalog = _conflicting(store, conflicts=WRITE_ATTEMPTS)
    with pytest.raises(StorageConflict):
        await catalog.create_project(name="p")
    assert catalog.stats.write_retries == WRITE_ATTEMPTS - 1
    assert [p.id for p in await catalog.list_projects()] == [1]


class RepeatingIds:
    """Hands out the same event id twice: the second change's outbox insert fails."""

    def __init__(self) -> None:
        self.ids = [uuid.UUID(int=1), uuid.UUID(int=1), uuid.UUID(int=2)]

    def new_id(self) -> uuid.UUID:
        return self.ids.pop(0)


async def test_a_create_that_rolled_back_leaves_a_gap_in_the_priorities(
    store: MemoryCatalogStore,
) -> None:
    catalog = CatalogService(
        store=store, cache=LruCache(), clock=FixedClock(), ids=RepeatingIds(), encode_page=encode
    )
    first = await catalog.create_good(project_id=1, name="first")
    with pytest.raises(StorageError):
        await catalog.create_good(project_id=1, name="rolled back")
    third = await catalog.create_good(project_id=1, name="third")
    page = await catalog.page(limit=10)
    assert [(g.name, g.priority) for g in page.goods] == [("first", 1), ("third", 3)]
    assert third.priority == first.priority + 2
