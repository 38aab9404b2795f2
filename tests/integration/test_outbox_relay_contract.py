"""The outbox relay store contract on the in-memory catalog store and on real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.memory.catalog import MemoryCatalogStore
from adapters.memory.outbox import MemoryOutboxRelay
from adapters.postgres.catalog import PgCatalogStore
from adapters.postgres.migrate import migrate
from adapters.postgres.outbox import PgOutboxRelay
from core.contracts.outbox import OutboxPair, OutboxRelayStoreContract


@pytest.fixture(params=["memory", "postgres"])
async def outbox(request: pytest.FixtureRequest) -> AsyncIterator[OutboxPair]:
    if request.param == "memory":
        store = MemoryCatalogStore()
        yield OutboxPair(store=store, relay=MemoryOutboxRelay(store))
        return
    pg_url = request.getfixturevalue("pg_url")
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
        relay = PgOutboxRelay(pool, pg_url)
        try:
            yield OutboxPair(store=PgCatalogStore(pool=pool), relay=relay)
        finally:
            await relay.close()


class TestOutboxRelayStore(OutboxRelayStoreContract):
    pass
