"""The catalog HTTP API end to end on real Postgres and Redis: cache invalidation,
single-flight on a cold cache, and serving from Postgres while Redis is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient
from psycopg.conninfo import conninfo_to_dict

from adapters.postgres.migrate import migrate
from adapters.redis_cache import RedisCache
from core.catalog.service import CatalogService
from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings


def _as_url(conninfo: str) -> str:
    """``pg_url`` may be a key=value conninfo; ``Settings`` wants a postgresql:// URL."""
    if conninfo.startswith(("postgresql://", "postgres://")):
        return conninfo
    parts = conninfo_to_dict(conninfo)
    auth = str(parts.get("user", ""))
    if parts.get("password"):
        auth += f":{parts['password']}"
    return f"postgresql://{auth}@{parts['host']}:{parts['port']}/{parts['dbname']}"


@pytest.fixture
async def app_parts(
    pg_url: str, redis_url: str, unique: str
) -> AsyncIterator[tuple[AsyncTestClient[Any], CatalogService]]:
    await migrate(pg_url)
    settings = Settings(
        postgres_url=_as_url(pg_url),
        redis_url=redis_url,
        catalog_store="postgres",
        list_cache="redis",
        pg_pool_size=30,
    )
    container = Container(settings=settings)
    # Each test gets its own key namespace on the shared Redis.

    container.list_cache.override(
        providers.Singleton(RedisCache, client=container.redis, prefix=f"{unique}:")
    )
    async with AsyncTestClient(create_app(container)) as client:
        service = client.app.state.services["catalog"]
        yield client, service


async def test_every_change_makes_every_cached_page_a_miss(
    app_parts: tuple[AsyncTestClient[Any], CatalogService],
) -> None:
    client, service = app_parts
    ids = [
        (await client.post("/good/create?projectId=1", json={"name": n})).json()["id"]
        for n in "abcd"
    ]
    pages = ["/goods/list", "/goods/list?limit=2&offset=3", "/items/list?limit=1&offset=0"]
    changes = [
        ("POST", "/good/create?projectId=1", {"name": "e"}),
        ("PATCH", f"/good/update?id={ids[0]}&projectId=1", {"name": "A"}),
        ("PATCH", f"/good/reprioritiize?id={ids[3]}&projectId=1", {"newPriority": 1}),
        ("DELETE", f"/item/remove?id={ids[1]}&campaignId=1", None),
    ]
    for method, path, body in changes:
        before = {}
        for page in pages:
            before[page] = (await client.get(page)).content
        hits = service.stats.hits
        for page in pages:
            assert (await client.get(page)).content == before[page]
        assert service.stats.hits == hits + len(pages)
        response = await client.request(method, path, json=body)
        assert response.status_code == 200, response.text
        misses = service.stats.misses
        after = {page: (await client.get(page)).content for page in pages}
        assert service.stats.misses == misses + len(pages)
        assert after["/goods/list"] != before["/goods/list"]


async def test_100_concurrent_lists_on_a_cold_cache_read_the_database_once(
    app_parts: tuple[AsyncTestClient[Any], CatalogService],
) -> None:
    client, service = app_parts
    for n in range(5):
        await client.post("/good/create?projectId=1", json={"name": f"g{n}"})
    loads = service.stats.loads
    responses = await asyncio.gather(*(client.get("/goods/list?limit=3") for _ in range(100)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert service.stats.loads == loads + 1


async def test_with_redis_stopped_lists_answer_from_postgres(
    app_parts: tuple[AsyncTestClient[Any], CatalogService], stack: Any
) -> None:
    client, service = app_parts
    await client.post("/good/create?projectId=1", json={"name": "a"})
    assert (await client.get("/goods/list")).status_code == 200
    stack.stop("redis")
    try:
        created = await client.post("/good/create?projectId=1", json={"name": "b"})
        assert created.status_code == 200
        for _ in range(3):
            response = await client.get("/goods/list")
            assert response.status_code == 200
            assert response.json()["meta"]["total"] == 2
        assert service.stats.cache_errors >= 1
    finally:
        stack.start("redis")


async def test_reprioritize_returns_exactly_the_goods_whose_priority_changed(
    app_parts: tuple[AsyncTestClient[Any], CatalogService],
) -> None:
    client, _ = app_parts
    goods = [
        (await client.post("/good/create?projectId=1", json={"name": n})).json() for n in "abcde"
    ]
    await client.delete(f"/good/remove?id={goods[4]['id']}&projectId=1")
    before = {g["id"]: g["priority"] for g in (await client.get("/goods/list")).json()["goods"]}
    response = await client.patch(
        f"/good/reprioritize?id={goods[3]['id']}&projectId=1", json={"newPriority": 2}
    )
    after = {g["id"]: g["priority"] for g in (await client.get("/goods/list")).json()["goods"]}
    changed = {i: p for i, p in after.items() if before[i] != p}
    reported = {p["id"]: p["priority"] for p in response.json()["priorities"]}
    assert reported == changed
    assert goods[3]["id"] in reported
    assert len(set(after.values())) == len(after)


async def test_404_envelope_on_postgres(
    app_parts: tuple[AsyncTestClient[Any], CatalogService],
) -> None:
    client, _ = app_parts
    response = await client.patch("/good/update?id=12345&projectId=1", json={"name": "x"})
    assert (response.status_code, response.json()) == (
        404,
        {"code": 3, "message": "errors.common.notFound", "details": {}},
    )
    response = await client.post("/good/create?projectId=999", json={"name": "x"})
    assert response.status_code == 404


HUGE = str(10**20)


async def test_out_of_range_numbers_are_never_a_server_error_on_postgres(
    app_parts: tuple[AsyncTestClient[Any], CatalogService],
) -> None:
    # Integers of any size pass the HTTP layer; Postgres columns are int4 and OFFSET a bigint.
    client, _ = app_parts
    await client.post("/good/create?projectId=1", json={"name": "exists"})
    listed = await client.get(f"/goods/list?offset={HUGE}")
    assert listed.status_code == 200, listed.text
    assert listed.json()["goods"] == []
    assert listed.json()["meta"]["offset"] == int(HUGE)
    for method, path, body in [
        ("PATCH", f"/good/update?id={HUGE}&projectId=1", {"name": "x"}),
        ("PATCH", f"/good/update?id=1&projectId={HUGE}", {"name": "x"}),
        ("PATCH", f"/good/update?id=-{HUGE}&projectId=1", {"name": "x"}),
        ("DELETE", f"/item/remove?id={2**31}&campaignId=1", None),
        ("PATCH", f"/good/reprioritize?id={HUGE}&projectId=1", {"newPriority": 1}),
        ("POST", f"/good/create?projectId={HUGE}", {"name": "x"}),
        ("POST", f"/good/create?projectId={2**31}", {"name": "x"}),
    ]:
        response = await client.request(method, path, json=body)
        assert (response.status_code, response.json()) == (
            404,
            {"code": 3, "message": "errors.common.notFound", "details": {}},
        ), path
