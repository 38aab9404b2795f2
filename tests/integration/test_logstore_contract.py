"""The ClickHouse log store (the embedded chDB engine, or the server at HEXMARKET_CLICKHOUSE_URL)
beyond the contract (``tests/contracts.py`` runs that): its table's start-up and migrations,
each test in its own database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import clickhouse_connect
import pytest

from adapters.clickhouse_log import ClickHouseLogStore
from core.contracts.logstore import event


@pytest.fixture
async def log_store(clickhouse_url: str, unique: str) -> AsyncIterator[ClickHouseLogStore]:
    store = ClickHouseLogStore(clickhouse_url, database=unique)
    await store.start()
    yield store
    await store.close()


async def test_the_table_survives_a_second_start(log_store: ClickHouseLogStore) -> None:
    await log_store.append([event(name="kept")])
    await log_store.start()  # CREATE ... IF NOT EXISTS: idempotent, data kept
    assert [e.name for e in await log_store.query()] == ["kept"]


async def test_a_table_of_the_earlier_layout_gains_the_change_columns(
    clickhouse_url: str, unique: str
) -> None:
    """Rows written before the change columns existed read as their own change."""
    old = event(name="written before", good_id=3)
    table = f"`{unique}`.`goods_events`"

    def create_old_table() -> None:
        client = clickhouse_connect.get_client(dsn=clickhouse_url)
        try:
            client.command(f"CREATE DATABASE IF NOT EXISTS `{unique}`")
            client.command(
                f"CREATE TABLE {table} (EventId UUID, Type LowCardinality(String), Id Int64,"
                " ProjectId Int64, Name String, Description String, Priority Int64,"
                " Removed Bool, EventTime DateTime64(6, 'UTC'))"
                " ENGINE = ReplacingMergeTree ORDER BY (ProjectId, EventTime, EventId)"
            )
            client.command(
                f"INSERT INTO {table} VALUES ('{old.event_id}', 'update', 3, 1,"
                " 'written before', '', 1, false, '2026-01-01 00:00:00.000000')"
            )
        finally:
            client.close()

    await asyncio.to_thread(create_old_table)
    store = ClickHouseLogStore(clickhouse_url, database=unique)
    await store.start()  # adds the new columns
    try:
        (got,) = await store.query()
        assert (got.event_id, got.name) == (old.event_id, "written before")
        assert got.change_id == old.event_id
        assert got.target_id == 3
        assert got.before_priority is None
        await store.append([event(name="written after", seconds=5)])
        assert [e.name for e in await store.query()] == ["written after", "written before"]
    finally:
        await store.close()
