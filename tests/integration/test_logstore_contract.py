"""The log store contract on ClickHouse (the embedded chDB engine, or the server at
HEXMARKET_CLICKHOUSE_URL), each test in its own database, checked against the in-memory model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.clickhouse_log import ClickHouseLogStore
from adapters.memory.logstore import MemoryLogStore
from core.contracts.logstore import LogStoreContract, event


@pytest.fixture
async def log_store(clickhouse_url: str, unique: str) -> AsyncIterator[ClickHouseLogStore]:
    store = ClickHouseLogStore(clickhouse_url, database=unique)
    await store.start()
    yield store
    await store.close()


@pytest.fixture
def reference() -> MemoryLogStore:
    return MemoryLogStore()


class TestClickHouseLogStore(LogStoreContract):
    pass


async def test_the_table_survives_a_second_start(log_store: ClickHouseLogStore) -> None:
    await log_store.append([event(name="kept")])
    await log_store.start()  # CREATE ... IF NOT EXISTS: idempotent, data kept
    assert [e.name for e in await log_store.query()] == ["kept"]
