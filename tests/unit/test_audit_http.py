"""GET /logs and the whole audit path on in-memory adapters: HTTP change -> outbox -> relay ->
bus -> log writer -> log store -> GET /logs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.memory.logstore import MemoryLogStore
from core.contracts.logstore import event
from entrypoints.container import Container
from entrypoints.settings import Settings
from entrypoints.workers.logwriter import run_log_writer
from entrypoints.workers.relay import run_relay
from tests.support import EVENT_KEYS, logs_until, memory_settings


@pytest.fixture
def app_settings() -> Settings:
    return memory_settings(log_batch_ms=20, relay_idle_ms=50)


async def test_changes_over_http_reach_get_logs(
    client: AsyncTestClient[Any], container: Container
) -> None:
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(run_relay(container, stop)),
        asyncio.create_task(run_log_writer(container, stop)),
    ]
    try:
        a = (await client.post("/good/create?projectId=1", json={"name": "a"})).json()
        b = (await client.post("/good/create?projectId=1", json={"name": "b"})).json()
        await client.patch(f"/good/update?id={a['id']}&projectId=1", json={"name": "a2"})
        await client.patch(f"/good/reprioritize?id={b['id']}&projectId=1", json={"newPriority": 1})
        await client.delete(f"/good/remove?id={b['id']}&projectId=1")
        # create a, create b, update a, reprioritize (b and a change), remove b
        logs = await logs_until(client, 6, query="?projectId=1")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert len(logs) == 6
    assert all(set(entry) == set(EVENT_KEYS) for entry in logs)
    times = [entry["event_time"] for entry in logs]
    assert times == sorted(times, reverse=True)
    assert sorted(e["type"] for e in logs) == sorted(
        ["create", "create", "update", "reprioritize", "reprioritize", "remove"]
    )
    newest = logs[0]
    assert (newest["type"], newest["id"], newest["removed"], newest["name"]) == (
        "remove",
        b["id"],
        True,
        "b",
    )
    only_a = (await client.get(f"/logs?id={a['id']}")).json()["logs"]
    assert {e["id"] for e in only_a} == {a["id"]}
    assert [e["type"] for e in only_a] == ["reprioritize", "update", "create"]
    meta = (await client.get("/logs?limit=2")).json()["meta"]
    assert (meta["limit"], meta["count"]) == (2, 2)
    assert meta["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=x", "limit"),
        ("?projectId=abc", "projectId"),
        ("?id=1.5", "id"),
        ("?type=rename", "type"),
        ("?since=yesterday", "since"),
        ("?before=garbage", "before"),
    ],
)
async def test_bad_filters_are_400_naming_the_field(
    client: AsyncTestClient[Any], query: str, field: str
) -> None:
    response = await client.get(f"/logs{query}")
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["message"]) == (2, "errors.common.validation")
    assert field in body["details"]


async def test_defaults_and_an_unavailable_store(
    client: AsyncTestClient[Any], container: Container
) -> None:
    store = container.log_store()
    assert isinstance(store, MemoryLogStore)
    await store.append([event(seconds=i, good_id=i) for i in range(120)])
    body = (await client.get("/logs")).json()
    assert (body["meta"]["limit"], body["meta"]["count"]) == (100, 100)
    store.available = False
    response = await client.get("/logs")
    assert response.status_code == 503
    assert response.json() == {"code": 1, "message": "errors.common.unavailable", "details": {}}
    assert response.headers["retry-after"] == "1"


async def test_filters_by_type_and_time_and_pages_past_a_thousand(
    client: AsyncTestClient[Any], container: Container
) -> None:
    store = container.log_store()
    assert isinstance(store, MemoryLogStore)
    kinds = ("create", "update", "remove", "reprioritize")
    await store.append([event(seconds=i, good_id=i, type_=kinds[i % 4]) for i in range(2500)])
    seen: list[str] = []
    query = "/logs?limit=1000"
    while True:
        body = (await client.get(query)).json()
        seen += [e["event_id"] for e in body["logs"]]
        if body["meta"]["next"] is None:
            break
        query = f"/logs?limit=1000&before={body['meta']['next']}"
    assert len(seen) == len(set(seen)) == 2500

    moved = (await client.get("/logs?type=reprioritize&type=remove&limit=1000")).json()["logs"]
    assert {e["type"] for e in moved} == {"reprioritize", "remove"}
    assert len(moved) == 1000
    window = (
        await client.get("/logs?since=2026-01-01T00:00:10Z&until=2026-01-01T00:00:13Z&limit=1000")
    ).json()["logs"]
    assert [e["id"] for e in window] == [12, 11, 10]
    naive = (await client.get("/logs?since=2026-01-01T00:41:00&limit=1000")).json()["logs"]
    assert min(e["id"] for e in naive) == 2460  # no offset: read as UTC
