"""The PostgreSQL order repository beyond the contract (``tests/contracts.py`` runs that):
all-or-nothing batches, outages, concurrent writers, and a stateful agreement test with the
in-memory reference."""

from __future__ import annotations

import asyncio

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.memory.orders import MemoryOrderRepository
from adapters.postgres.migrate import migrate
from adapters.postgres.orders import PgOrderRepository
from core.contracts.orders import example_document, order_from, run_agreement
from core.errors import StorageError
from core.ports.orders import OrderRepository


async def test_a_batch_is_all_or_nothing(pg_url: str) -> None:
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False) as pool:
        repo = PgOrderRepository(pool)
        async with pool.connection() as conn:  # make the items insert fail for one order
            await conn.execute(
                "ALTER TABLE items ADD CONSTRAINT no_poison CHECK (rid NOT LIKE 'rid-poison%')"
            )
        good = order_from(example_document("good", 1))
        poison = order_from(example_document("poison", 2))
        with pytest.raises(StorageError):
            await repo.add_many([good, poison])
        assert await repo.count() == 0
        assert await repo.get("good") is None


async def test_an_unreachable_database_is_a_storage_error() -> None:
    pool = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=1, open=False, timeout=0.5
    )
    repo = PgOrderRepository(pool)
    await pool.open(wait=False)
    try:
        with pytest.raises(StorageError):
            await repo.get("x")
        with pytest.raises(StorageError):
            await repo.add_many([order_from(example_document("x", 1))])
    finally:
        await pool.close()


def test_postgres_agrees_with_the_reference_model(pg_url: str) -> None:
    asyncio.run(migrate(pg_url))
    pools: list[AsyncConnectionPool] = []

    async def make_subject() -> OrderRepository:
        pool = AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False)
        await pool.open()
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE orders CASCADE")
        pools.append(pool)
        return PgOrderRepository(pool)

    async def make_reference() -> OrderRepository:
        return MemoryOrderRepository()

    async def cleanup(_: OrderRepository) -> None:
        await pools.pop().close()

    run_agreement(make_subject, make_reference, max_examples=20, cleanup=cleanup)


async def test_concurrent_batches_with_shared_orders_store_each_once(pg_url: str) -> None:
    """Two consumers writing overlapping batches at once: the batch that finds an order stored
    (or being stored) by the other falls back to the conflict-skipping path; every order is
    stored once, with the first committed write, and the counts add up."""
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=2, max_size=4, open=False) as pool:
        repo = PgOrderRepository(pool)
        first = [order_from(example_document(f"u{i}", 1)) for i in range(60)]
        second = [order_from(example_document(f"u{i}", 2)) for i in range(40, 100)]
        results = await asyncio.gather(repo.add_many(first), repo.add_many(second))
        assert sum(r.inserted for r in results) == 100
        assert sum(r.duplicates for r in results) == 20
        assert await repo.count() == 100
        again = await repo.add_many(first + second)
        assert (again.inserted, again.duplicates) == (0, 120)
        for uid in ("u0", "u45", "u99"):
            assert await repo.get(uid) is not None
