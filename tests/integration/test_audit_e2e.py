"""The audit trail end to end on real servers, for both brokers: HTTP changes -> Postgres
outbox -> relay -> NATS JetStream | Kafka -> log writer -> ClickHouse (chDB) -> GET /logs.
Also: a broker outage while goods change loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from adapters.postgres.migrate import migrate
from entrypoints.container import Container
from entrypoints.devstack import DevStack
from entrypoints.http.app import create_app
from entrypoints.runtime import close_container, http_server, serve_http_until
from entrypoints.settings import Settings
from entrypoints.workers.logwriter import run_log_writer
from entrypoints.workers.relay import run_relay
from tests.support import EVENT_KEYS, http_started, logs_until


@pytest.fixture(params=["nats", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings(
    request: pytest.FixtureRequest, broker: str, pg_url: str, clickhouse_url: str, unique: str
) -> Settings:
    await migrate(pg_url)
    servers: dict[str, Any] = (
        {"nats_url": request.getfixturevalue("nats_url")}
        if broker == "nats"
        else {"kafka_bootstrap_servers": request.getfixturevalue("kafka_bootstrap")}
    )
    separator = "&" if "?" in clickhouse_url else "?"
    return Settings(
        postgres_url=pg_url,
        catalog_store="postgres",
        list_cache="lru",
        orders_store="memory",
        orders_cache="lru",
        events_broker=broker,  # type: ignore[arg-type]
        log_store="clickhouse",
        clickhouse_url=f"{clickhouse_url}{separator}database={unique}",
        events_topic=f"{unique}.goods.events",
        events_stream=f"{unique.upper()}_GOODS_EVENTS",
        events_group=f"{unique}-logs",
        log_batch_ms=100,
        relay_idle_ms=200,
        nats_ack_wait=5.0,
        **servers,
    )


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """The HTTP server, the relay and the log writer on one container and one event loop, as
    ``hexmarket dev`` runs them."""
    container = Container(settings=settings.model_copy(update={"http_port": 0}))
    server = http_server(create_app(container), container.settings())
    stop_http, stop_workers = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(serve_http_until(server, stop_http)),
        asyncio.create_task(run_relay(container, stop_workers)),
        asyncio.create_task(run_log_writer(container, stop_workers)),
    ]
    try:
        base = await http_started(server, tasks[0])
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield client, container
    finally:
        stop_workers.set()  # workers first: the app's shutdown closes the shared clients
        await asyncio.wait_for(asyncio.gather(*tasks[1:]), 60)
        stop_http.set()
        await asyncio.wait_for(tasks[0], 30)
        await close_container(container)


async def outbox_event_ids(pg_url: str, *, pending_only: bool = False) -> list[str]:
    sql = "SELECT event_id::text FROM outbox" + (" WHERE sent_at IS NULL" if pending_only else "")
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute(sql)
        return [str(row[0]) for row in await cur.fetchall()]


async def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_changes_over_http_appear_in_get_logs(
    running: tuple[httpx.AsyncClient, Container], settings: Settings
) -> None:
    client, _ = running
    a = await ok(await client.post("/good/create?projectId=1", json={"name": "Чай"}))
    b = await ok(
        await client.post("/good/create?projectId=1", json={"name": "b", "description": "d"})
    )
    await ok(await client.patch(f"/good/update?id={a['id']}&projectId=1", json={"name": "Чай 2"}))
    await ok(
        await client.patch(f"/good/reprioritiize?id={b['id']}&projectId=1", json={"newPriority": 1})
    )
    await ok(await client.delete(f"/good/remove?id={b['id']}&projectId=1"))

    logs = await logs_until(client, 6, query="?projectId=1", within=90)
    assert len(logs) == 6
    assert all(set(entry) == set(EVENT_KEYS) for entry in logs)
    assert sorted(e["event_id"] for e in logs) == sorted(
        await outbox_event_ids(str(settings.postgres_url))
    )
    assert await outbox_event_ids(str(settings.postgres_url), pending_only=True) == []
    by_type = sorted((e["type"], e["id"], e["name"], e["priority"], e["removed"]) for e in logs)
    assert by_type == sorted(
        [
            ("create", a["id"], "Чай", 1, False),
            ("create", b["id"], "b", 2, False),
            ("update", a["id"], "Чай 2", 1, False),
            ("reprioritize", b["id"], "b", 1, False),
            ("reprioritize", a["id"], "Чай 2", 2, False),
            ("remove", b["id"], "b", 1, True),
        ]
    )
    assert logs[0]["type"] == "remove"
    times = [e["event_time"] for e in logs]
    assert times == sorted(times, reverse=True)
    only_a = (await client.get(f"/logs?projectId=1&id={a['id']}")).json()["logs"]
    assert [e["type"] for e in only_a] == ["reprioritize", "update", "create"]
    meta = (await client.get("/logs?limit=1")).json()["meta"]
    assert (meta["limit"], meta["count"]) == (1, 1)
    assert meta["next"]  # more than one event: a next page


async def test_a_broker_outage_delays_events_but_loses_and_duplicates_none(
    running: tuple[httpx.AsyncClient, Container],
    settings: Settings,
    stack: DevStack,
    broker: str,
) -> None:
    client, _ = running
    pg_url = str(settings.postgres_url)
    first = await ok(await client.post("/good/create?projectId=1", json={"name": "before"}))
    await logs_until(client, 1, within=90)  # streams, topics and consumers exist; the path is warm

    await asyncio.to_thread(stack.stop, broker)  # type: ignore[arg-type]
    try:
        goods = [
            await ok(await client.post("/good/create?projectId=1", json={"name": f"g{i}"}))
            for i in range(5)
        ]
        for good in goods[:3]:
            await ok(
                await client.patch(
                    f"/good/update?id={good['id']}&projectId=1", json={"name": "renamed"}
                )
            )
        await ok(await client.delete(f"/good/remove?id={first['id']}&projectId=1"))
        # 9 events wait in the outbox: the relay cannot publish them
        assert len(await outbox_event_ids(pg_url, pending_only=True)) == 9
    finally:
        await asyncio.to_thread(stack.start, broker)  # type: ignore[arg-type]

    logs = await logs_until(client, 10, within=90)
    ids = [e["event_id"] for e in logs]
    assert len(ids) == len(set(ids)) == 10
    assert sorted(ids) == sorted(await outbox_event_ids(pg_url))
    assert await outbox_event_ids(pg_url, pending_only=True) == []
