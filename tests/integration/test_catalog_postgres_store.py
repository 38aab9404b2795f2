"""The Postgres catalog store on a real server beyond the catalog contract (``tests/contracts.py``
runs that): what only a database with concurrent connections can show (unique priorities, row
locks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from attrs import evolve
from psycopg_pool import AsyncConnectionPool

from adapters.lru_cache import LruCache
from adapters.postgres.catalog import PgCatalogStore
from adapters.postgres.migrate import migrate
from core.catalog.service import CatalogService
from core.contracts.catalog import add_goods, priorities
from core.errors import StorageConflict, StorageError
from core.ports.clock import SystemClock, Uuid4Generator
from tests.support import eventually


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    await migrate(pg_url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        pg_url, min_size=1, max_size=60, open=False
    )
    await pool.open(wait=True, timeout=15)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: AsyncConnectionPool[Any]) -> PgCatalogStore:
    return PgCatalogStore(pool=pool, topic="goods.events")


def service(store: PgCatalogStore) -> CatalogService:
    return CatalogService(
        store=store,
        cache=LruCache(),
        clock=SystemClock(),
        ids=Uuid4Generator(),
        encode_page=lambda page: b"",
    )


async def test_migrations_are_idempotent(pg_url: str) -> None:
    assert {"0001_catalog", "0002_outbox"} <= set(await migrate(pg_url))
    assert await migrate(pg_url) == []


async def test_50_concurrent_creates_get_50_distinct_priorities(
    store: PgCatalogStore,
) -> None:
    catalog = service(store)
    goods = await asyncio.gather(
        *(catalog.create_good(project_id=1, name=f"g{i}") for i in range(50))
    )
    assert sorted(g.priority for g in goods) == list(range(1, 51))
    assert sorted((await priorities(store)).values()) == list(range(1, 51))


async def test_concurrent_reprioritize_and_create_keep_priorities_unique(
    store: PgCatalogStore,
) -> None:
    catalog = service(store)
    seed = await add_goods(store, *(f"s{i}" for i in range(10)))
    jobs = [catalog.create_good(project_id=1, name=f"n{i}") for i in range(20)]
    jobs += [
        catalog.reprioritize_good(good_id=g.id, project_id=1, new_priority=1 + i % 5)
        for i, g in enumerate(seed)
    ]
    await asyncio.gather(*jobs)
    values = list((await priorities(store)).values())
    assert len(values) == 30
    assert len(set(values)) == 30


async def test_the_database_refuses_duplicate_priorities(pg_url: str) -> None:
    await migrate(pg_url)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO goods (project_id, name, priority) VALUES (1, 'a', 1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            await conn.execute("INSERT INTO goods (project_id, name, priority) VALUES (1, 'b', 1)")


async def test_an_update_waits_for_the_row_lock_and_both_apply_in_order(
    store: PgCatalogStore,
) -> None:
    (good,) = await add_goods(store, "a")
    catalog = service(store)
    first_locked = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with store.unit_of_work() as uow:
            locked = await uow.goods.get_for_update(good.id, 1)
            assert locked is not None
            first_locked.set()
            await release_first.wait()
            await uow.goods.save(evolve(locked, name="first", description="by first"))
            await uow.commit()

    first_task = asyncio.create_task(first())
    await first_locked.wait()
    second_task = asyncio.create_task(
        catalog.update_good(good_id=good.id, project_id=1, name="second")
    )
    # The second update must be blocked on the row lock: prove it from the server's side.

    async def second_waits() -> bool:
        assert not second_task.done()
        return await _waiting_on_a_lock(store)

    await eventually(
        second_waits, within=10, what="the second update waiting for the lock", interval=0.02
    )
    assert not second_task.done()
    release_first.set()
    await first_task
    updated = await second_task
    # Applied in order: the second saw the first's description and kept it.
    assert (updated.name, updated.description) == ("second", "by first")


async def _waiting_on_a_lock(store: PgCatalogStore) -> bool:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cur.fetchone()
    return bool(row and row[0] > 0)


async def test_a_server_outage_is_a_storage_error(stack: Any, pg_url: str) -> None:
    await migrate(pg_url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    store = PgCatalogStore(pool=pool, acquire_timeout=2)
    try:
        stack.stop("postgres")
        with pytest.raises(StorageError):
            await add_goods(store, "a")
    finally:
        stack.start("postgres")
        await pool.close()


async def test_a_deadlock_the_server_breaks_is_a_storage_conflict(
    store: PgCatalogStore,
) -> None:
    # Two units of work locking two goods in opposite orders: the catalog never does this
    # (its protocol), but if the server ever aborts one of ours, the use cases must be able
    # to tell a conflict (run it again) from an outage.
    a, b = await add_goods(store, "a", "b")
    both_locked = asyncio.Barrier(2)

    async def lock(first: int, second: int) -> None:
        async with store.unit_of_work() as uow:
            await uow.goods.get_for_update(first, 1)
            await both_locked.wait()
            await uow.goods.get_for_update(second, 1)

    outcomes = await asyncio.gather(lock(a.id, b.id), lock(b.id, a.id), return_exceptions=True)
    conflicts = [o for o in outcomes if isinstance(o, StorageConflict)]
    assert len(conflicts) == 1, outcomes
    assert "deadlock detected" in str(conflicts[0])


async def test_creates_do_not_wait_for_each_others_commit(store: PgCatalogStore) -> None:
    catalog = service(store)
    async with store.unit_of_work() as uow:
        first = await uow.goods.add(project_id=1, name="first", description="")
        assert first is not None
        # The first create is in flight (holding the priority lock, shared): the second one
        # neither waits for it nor reuses its number.
        second = await asyncio.wait_for(catalog.create_good(project_id=1, name="second"), 10)
        assert (first.priority, second.priority) == (1, 2)
        assert await priorities(store) == {second.id: 2}
        await uow.commit()
    assert await priorities(store) == {first.id: 1, second.id: 2}


async def test_a_reprioritize_waits_for_the_creates_in_flight_and_shifts_them_too(
    store: PgCatalogStore,
) -> None:
    catalog = service(store)
    a, b = await add_goods(store, "a", "b")
    async with store.unit_of_work() as uow:
        c = await uow.goods.add(project_id=1, name="c", description="")
        assert c is not None
        assert c.priority == 3
        moving = asyncio.create_task(
            catalog.reprioritize_good(good_id=b.id, project_id=1, new_priority=1)
        )

        async def moving_waits() -> bool:
            assert not moving.done()
            return await _waiting_on_a_lock(store)

        await eventually(
            moving_waits, within=10, what="the reprioritize waiting for the create", interval=0.02
        )
        await uow.commit()
    changes = await asyncio.wait_for(moving, 10)
    assert [(ch.id, ch.priority) for ch in changes] == [(b.id, 1), (a.id, 2), (c.id, 4)]
    (d,) = await add_goods(store, "d")
    assert await priorities(store) == {b.id: 1, a.id: 2, c.id: 4, d.id: 5}


async def test_lock_for_reprioritize_locks_every_good_it_will_shift_before_any_write(
    store: PgCatalogStore, pg_url: str
) -> None:
    a, b, c, d = await add_goods(store, "a", "b", "c", "d")
    async with store.unit_of_work() as uow:
        assert await uow.goods.lock_for_reprioritize(d.id, 1, 2) == d
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other:
            for good, locked in ((a, False), (b, True), (c, True), (d, True)):
                try:
                    await other.execute(
                        "SELECT 1 FROM goods WHERE id = %s FOR UPDATE NOWAIT", (good.id,)
                    )
                    taken = False
                except psycopg.errors.LockNotAvailable:
                    taken = True
                assert taken == locked, good.name
