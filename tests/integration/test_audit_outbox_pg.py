"""The relay side of the Postgres outbox: SKIP LOCKED claims, rollback unless marked sent,
LISTEN/NOTIFY wake-ups (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.migrate import migrate
from adapters.postgres.outbox import PgOutboxRelay


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[AsyncConnectionPool]:
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
        yield pool


@pytest.fixture
async def relay(pool: AsyncConnectionPool, pg_url: str) -> AsyncIterator[PgOutboxRelay]:
    relay = PgOutboxRelay(pool, pg_url)
    yield relay
    await relay.close()


async def add_rows(pg_url: str, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO outbox (event_id, topic, key, payload) VALUES (%s, %s, %s, %s)",
                [(i, "goods.events", str(i), f'{{"n": "{i}"}}'.encode()) for i in ids],
            )
        await conn.commit()
    return ids


async def pending(pg_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_claims_oldest_first_and_marks_sent_on_clean_exit(
    relay: PgOutboxRelay, pg_url: str
) -> None:
    ids = await add_rows(pg_url, 5)
    async with relay.claim(3) as batch:
        assert [r.event_id for r in batch.records] == ids[:3]
        assert all(r.key == str(r.event_id) and r.topic == "goods.events" for r in batch.records)
        await batch.mark_sent()
    assert await pending(pg_url) == 2
    async with relay.claim(10) as batch:
        assert [r.event_id for r in batch.records] == ids[3:]
        await batch.mark_sent()
    assert await pending(pg_url) == 0


async def test_an_unmarked_or_failed_claim_leaves_rows_unsent(
    relay: PgOutboxRelay, pg_url: str
) -> None:
    await add_rows(pg_url, 4)
    async with relay.claim(10) as batch:
        assert len(batch.records) == 4  # published nothing, marked nothing
    assert await pending(pg_url) == 4

    class PublishFailed(Exception):
        pass

    async def publish_then_fail() -> None:
        async with relay.claim(10) as batch:
            await batch.mark_sent()
            raise PublishFailed  # e.g. the broker refused after all: the update rolls back

    with pytest.raises(PublishFailed):
        await publish_then_fail()
    assert await pending(pg_url) == 4


async def test_concurrent_claims_skip_rows_held_by_another_relay(
    pool: AsyncConnectionPool, pg_url: str
) -> None:
    await add_rows(pg_url, 10)
    first, second = PgOutboxRelay(pool, pg_url), PgOutboxRelay(pool, pg_url)
    async with first.claim(6) as a, second.claim(6) as b:
        ids_a = {r.id for r in a.records}
        ids_b = {r.id for r in b.records}
        assert len(ids_a) == 6
        assert len(ids_b) == 4
        assert not ids_a & ids_b
        await a.mark_sent()
        await b.mark_sent()
    assert await pending(pg_url) == 0


async def test_wait_for_new_wakes_on_the_inserting_commit(
    relay: PgOutboxRelay, pg_url: str
) -> None:
    await relay.wait_for_new(0.01)  # LISTEN is in place from here on
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(relay.wait_for_new(30.0))
    started = loop.time()
    await add_rows(pg_url, 1)
    await asyncio.wait_for(waiting, 5.0)
    assert loop.time() - started < 5.0


async def test_a_database_outage_is_a_storage_error(pool: AsyncConnectionPool, pg_url: str) -> None:
    from core.errors import StorageError

    broken = PgOutboxRelay(
        AsyncConnectionPool(pg_url + " port=1", min_size=0, max_size=1, open=False, timeout=0.5),
        pg_url,
    )
    await broken._pool.open(wait=False)
    try:
        with pytest.raises(StorageError):
            await broken.claim(1).__aenter__()
    finally:
        await broken._pool.close()
