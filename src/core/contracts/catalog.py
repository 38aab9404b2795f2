"""The contract of the catalog store (``core.ports.catalog``): any adapter passes it.

Use: subclass ``CatalogStoreContract`` in a test module and provide a ``harness`` fixture
returning a ``CatalogHarness`` over a fresh store (seeded with project 1 and no goods)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol

import pytest
from attrs import evolve

from core.catalog.events import GoodEvent
from core.catalog.models import Good
from core.errors import StorageError
from core.ports.catalog import CatalogStore

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class CatalogHarness(Protocol):
    store: CatalogStore

    async def outbox_payloads(self) -> list[bytes]:
        """The payloads of every committed outbox record, in insertion order."""
        ...


def event(good: Good, type_: str = "create") -> GoodEvent:
    return GoodEvent.of(good, type_, event_id=uuid.uuid4(), event_time=NOW)  # type: ignore[arg-type]


async def add_goods(store: CatalogStore, *names: str, project_id: int = 1) -> list[Good]:
    goods = []
    async with store.unit_of_work() as uow:
        for n in names:
            good = await uow.goods.add(project_id=project_id, name=n, description=f"{n} text")
            assert good is not None, f"no project {project_id}"
            goods.append(good)
        await uow.commit()
    return goods


async def priorities(store: CatalogStore) -> dict[int, int]:
    async with store.unit_of_work() as uow:
        page = await uow.goods.page(limit=1000, offset=1)
    return {g.id: g.priority for g in page.goods}


async def move(store: CatalogStore, good: Good, priority: int) -> list[Good]:
    """Move ``good`` to ``priority`` the way the use case does (lock it, then reprioritize, in
    one committed unit of work); the goods that changed."""
    async with store.unit_of_work() as uow:
        assert await uow.goods.lock_for_reprioritize(good.id, good.project_id, priority) == good
        changed = await uow.goods.reprioritize(good.id, good.project_id, priority)
        await uow.commit()
    return changed


class CatalogStoreContract:
    async def test_ping_answers_when_reachable(self, harness: CatalogHarness) -> None:
        await harness.store.ping()

    async def test_the_seeded_project_exists(self, harness: CatalogHarness) -> None:
        async with harness.store.unit_of_work() as uow:
            projects = await uow.projects.list()
            first = await uow.projects.get(1)
        assert [(p.id, p.name) for p in projects] == [(1, "Первая запись")]
        assert first == projects[0]

    async def test_projects_get_the_next_id(self, harness: CatalogHarness) -> None:
        async with harness.store.unit_of_work() as uow:
            second = await uow.projects.add(name="second")
            await uow.commit()
        async with harness.store.unit_of_work() as uow:
            assert await uow.projects.get(second.id) == second
            assert await uow.projects.get(999) is None
            assert [p.id for p in await uow.projects.list()] == [1, second.id]
        assert second.id == 2

    async def test_priorities_start_at_one_and_grow(self, harness: CatalogHarness) -> None:
        goods = await add_goods(harness.store, "a", "b", "c")
        assert [g.priority for g in goods] == [1, 2, 3]
        assert [g.removed for g in goods] == [False] * 3
        assert goods[0].description == "a text"
        assert len({g.id for g in goods}) == 3

    async def test_a_new_good_goes_after_the_highest_priority(
        self, harness: CatalogHarness
    ) -> None:
        a, _ = await add_goods(harness.store, "a", "b")
        await move(harness.store, a, 10)
        (c,) = await add_goods(harness.store, "c")
        assert c.priority == 11

    async def test_adding_to_a_missing_project_adds_nothing(self, harness: CatalogHarness) -> None:
        async with harness.store.unit_of_work() as uow:
            assert await uow.goods.add(project_id=2, name="a", description="") is None
            await uow.commit()
        assert await priorities(harness.store) == {}
        (a,) = await add_goods(harness.store, "a")
        assert a.priority == 1

    async def test_a_rolled_back_add_leaves_its_priority_unused(
        self, harness: CatalogHarness
    ) -> None:
        # The documented gap (docs/api.md, "Priorities under concurrency"): the counter the
        # next priority comes from is not rolled back, so the next good does not reuse it.
        (a,) = await add_goods(harness.store, "a")
        async with harness.store.unit_of_work() as uow:
            rolled_back = await uow.goods.add(project_id=1, name="b", description="")
        assert rolled_back is not None
        assert rolled_back.priority == 2
        (c,) = await add_goods(harness.store, "c")
        assert c.priority == 3
        assert await priorities(harness.store) == {a.id: 1, c.id: 3}

    async def test_after_a_reprioritize_a_new_good_goes_after_the_new_highest(
        self, harness: CatalogHarness
    ) -> None:
        a, b, c = await add_goods(harness.store, "a", "b", "c")
        await move(harness.store, a, 2)  # b, c move to 3, 4
        (d,) = await add_goods(harness.store, "d")
        assert await priorities(harness.store) == {a.id: 2, b.id: 3, c.id: 4, d.id: 5}

    async def test_without_commit_nothing_is_kept(self, harness: CatalogHarness) -> None:
        async with harness.store.unit_of_work() as uow:
            await uow.goods.add(project_id=1, name="a", description="")
            await uow.projects.add(name="p")
        async with harness.store.unit_of_work() as uow:
            assert (await uow.goods.page(limit=10, offset=1)).total == 0
            assert len(await uow.projects.list()) == 1

    async def test_an_error_rolls_back(self, harness: CatalogHarness) -> None:
        async def fail_midway() -> None:
            async with harness.store.unit_of_work() as uow:
                await uow.goods.add(project_id=1, name="a", description="")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await fail_midway()
        assert await priorities(harness.store) == {}

    async def test_get_for_update_finds_only_the_good_of_that_project(
        self, harness: CatalogHarness
    ) -> None:
        (a,) = await add_goods(harness.store, "a")
        async with harness.store.unit_of_work() as uow:
            assert await uow.goods.get_for_update(a.id, 1) == a
            assert await uow.goods.get_for_update(a.id, 2) is None
            assert await uow.goods.get_for_update(a.id + 1, 1) is None

    async def test_save_writes_name_description_and_removed(self, harness: CatalogHarness) -> None:
        a, b = await add_goods(harness.store, "a", "b")
        async with harness.store.unit_of_work() as uow:
            locked = await uow.goods.get_for_update(a.id, 1)
            assert locked is not None
            saved = await uow.goods.save(evolve(locked, name="A", description="", removed=True))
            await uow.commit()
        assert (saved.name, saved.description, saved.removed, saved.priority) == ("A", "", True, 1)
        async with harness.store.unit_of_work() as uow:
            page = await uow.goods.page(limit=10, offset=1)
        assert (page.total, page.removed) == (2, 1)
        assert page.goods == (saved, b)

    async def test_reprioritize_shifts_the_goods_at_and_after_it(
        self, harness: CatalogHarness
    ) -> None:
        a, b, c, d = await add_goods(harness.store, "a", "b", "c", "d")
        changed = await move(harness.store, d, 2)
        assert [(g.id, g.priority) for g in changed] == [(d.id, 2), (b.id, 3), (c.id, 4)]
        assert changed[0].name == "d"
        assert await priorities(harness.store) == {a.id: 1, d.id: 2, b.id: 3, c.id: 4}

    async def test_reprioritize_moves_later_goods_even_across_gaps(
        self, harness: CatalogHarness
    ) -> None:
        a, b, c = await add_goods(harness.store, "a", "b", "c")
        changed = await move(harness.store, a, 3)
        assert [(g.id, g.priority) for g in changed] == [(a.id, 3), (c.id, 4)]
        assert await priorities(harness.store) == {b.id: 2, a.id: 3, c.id: 4}

    async def test_reprioritize_to_its_own_priority_changes_nothing(
        self, harness: CatalogHarness
    ) -> None:
        a, b = await add_goods(harness.store, "a", "b")
        assert await move(harness.store, b, 2) == []
        assert await priorities(harness.store) == {a.id: 1, b.id: 2}

    async def test_reprioritize_past_the_end_moves_only_the_target(
        self, harness: CatalogHarness
    ) -> None:
        a, b = await add_goods(harness.store, "a", "b")
        changed = await move(harness.store, a, 50)
        assert [(g.id, g.priority) for g in changed] == [(a.id, 50)]
        assert await priorities(harness.store) == {b.id: 2, a.id: 50}

    async def test_lock_for_reprioritize_finds_only_the_good_of_that_project(
        self, harness: CatalogHarness
    ) -> None:
        (a,) = await add_goods(harness.store, "a")
        async with harness.store.unit_of_work() as uow:
            assert await uow.goods.lock_for_reprioritize(a.id, 2, 1) is None
            assert await uow.goods.lock_for_reprioritize(a.id + 1, 1, 1) is None
            assert await uow.goods.lock_for_reprioritize(a.id, 1, 1) == a

    async def test_pages_are_ordered_by_priority_with_1_based_offsets(
        self, harness: CatalogHarness
    ) -> None:
        goods = await add_goods(harness.store, *"abcde")
        async with harness.store.unit_of_work() as uow:
            first = await uow.goods.page(limit=2, offset=1)
            second = await uow.goods.page(limit=2, offset=3)
            last = await uow.goods.page(limit=2, offset=5)
            beyond = await uow.goods.page(limit=2, offset=6)
        assert first.goods == tuple(goods[0:2])
        assert second.goods == tuple(goods[2:4])
        assert last.goods == (goods[4],)
        assert beyond.goods == ()
        assert (beyond.total, beyond.removed, beyond.limit, beyond.offset) == (5, 0, 2, 6)

    async def test_offsets_and_ids_of_any_size_are_simply_absent(
        self, harness: CatalogHarness
    ) -> None:
        # Query strings carry integers of any size; past the end is an empty page or no good,
        # never a storage error (a database column or OFFSET has a narrower range).
        (good,) = await add_goods(harness.store, "a")
        huge = 10**30
        async with harness.store.unit_of_work() as uow:
            far = await uow.goods.page(limit=10, offset=huge)
            assert await uow.goods.get_for_update(huge, 1) is None
            assert await uow.goods.get_for_update(good.id, huge) is None
            assert await uow.goods.get_for_update(-huge, 1) is None
            assert await uow.projects.get(huge) is None
        assert far.goods == ()
        assert (far.total, far.limit, far.offset) == (1, 10, huge)

    async def test_goods_of_every_project_share_one_priority_order(
        self, harness: CatalogHarness
    ) -> None:
        async with harness.store.unit_of_work() as uow:
            project = await uow.projects.add(name="second")
            await uow.commit()
        (a,) = await add_goods(harness.store, "a")
        (b,) = await add_goods(harness.store, "b", project_id=project.id)
        assert (a.priority, b.priority, b.project_id) == (1, 2, project.id)

    async def test_committed_events_reach_the_outbox(self, harness: CatalogHarness) -> None:
        async with harness.store.unit_of_work() as uow:
            good = await uow.goods.add(project_id=1, name="a", description="")
            assert good is not None
            events = [event(good), event(good, "update")]
            await uow.outbox.add(events)
            await uow.commit()
        assert await harness.outbox_payloads() == [e.to_json() for e in events]

    async def test_rolled_back_events_never_reach_the_outbox(self, harness: CatalogHarness) -> None:
        async with harness.store.unit_of_work() as uow:
            good = await uow.goods.add(project_id=1, name="a", description="")
            assert good is not None
            await uow.outbox.add([event(good)])
        assert await harness.outbox_payloads() == []

    async def test_an_event_id_is_recorded_once(self, harness: CatalogHarness) -> None:
        (good,) = await add_goods(harness.store, "a")
        once = event(good)
        async with harness.store.unit_of_work() as uow:
            await uow.outbox.add([once])
            await uow.commit()

        async def add_again() -> None:
            async with harness.store.unit_of_work() as uow:
                await uow.outbox.add([once])
                await uow.commit()

        with pytest.raises(StorageError):
            await add_again()
        assert await harness.outbox_payloads() == [once.to_json()]
