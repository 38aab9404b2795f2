"""The orders read path on real PostgreSQL (and Redis): GET /order/{order_uid} through the
Litestar app, the warm-up, cache hits that never touch Postgres, and a hypothesis round trip."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.migrate import migrate
from adapters.postgres.orders import PgOrderRepository
from core.contracts.orders import example_document, order_from, valid_order_documents
from core.orders.model import Order
from core.orders.parsing import parse_order
from core.ports.orders import OrderRepository
from entrypoints.container import Container
from entrypoints.devstack import DevStack
from entrypoints.http.app import create_app
from tests.integration.orders_support import app_settings

_examples = itertools.count()


def dated(uid: str, minutes: int) -> dict[str, Any]:
    doc = example_document(uid, minutes)
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    doc["date_created"] = moment.isoformat().replace("+00:00", "Z")
    return doc


async def seed(pg_url: str, docs: list[dict[str, Any]]) -> None:
    """Store ``docs`` through a pool of the test's own loop (the app runs on another one)."""
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=1, open=False) as pool:
        await PgOrderRepository(pool).add_many([order_from(d) for d in docs])


@pytest.fixture(params=["lru", "redis"])
async def cache_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_warm_up_then_hits_are_served_with_postgres_down(
    pg_url: str, stack: DevStack, cache_kind: str, unique: str, request: pytest.FixtureRequest
) -> None:
    await migrate(pg_url)
    extra: dict[str, Any] = {"orders_warm_count": 5, "orders_cache_size": 50}
    if cache_kind == "redis":
        extra["redis_url"] = request.getfixturevalue("redis_url")
        extra["orders_cache"] = "redis"
    container = Container(settings=app_settings(pg_url, **extra))
    if cache_kind == "redis":  # a namespace of our own on the shared server
        from redis.asyncio import Redis

        from adapters.redis_cache import RedisCache

        client = await container.redis()
        assert isinstance(client, Redis)
        container.orders_cache.override(RedisCache(client=client, prefix=f"{unique}:"))
    docs = [dated(f"w{i}", i) for i in range(12)]
    await seed(pg_url, docs)
    async with AsyncTestClient(create_app(container)) as client:
        stack.stop("postgres")
        try:
            for i in range(11, 6, -1):  # the newest five, loaded by the warm-up
                response = await client.get(f"/order/w{i}")
                assert response.status_code == 200, response.text
                assert response.headers["x-cache"] == "hit"
                assert response.json() == docs[i]
            older = await client.get("/order/w3")
            # not cached, and the database is down: "try again", in the envelope
            assert older.status_code == 503
            assert older.json() == {
                "code": 1,
                "message": "errors.common.unavailable",
                "details": {},
            }
        finally:
            stack.start("postgres")
        response = await client.get("/order/w3")
        assert (response.status_code, response.headers["x-cache"]) == (200, "miss")
        assert response.json() == docs[3]
        response = await client.get("/order/w3")
        assert response.headers["x-cache"] == "hit"


async def test_the_lru_bound_holds_on_postgres(pg_url: str) -> None:
    await migrate(pg_url)
    container = Container(settings=app_settings(pg_url, orders_cache_size=4))
    docs = [dated(f"b{i}", i) for i in range(10)]
    await seed(pg_url, docs)
    async with AsyncTestClient(create_app(container)) as client:
        cache = container.orders_cache()
        for doc in docs:
            response = await client.get(f"/order/{doc['order_uid']}")
            assert response.json() == doc
            assert len(cache) <= 4
        assert (await client.get("/order/b9")).headers["x-cache"] == "hit"
        assert (await client.get("/order/b0")).headers["x-cache"] == "miss"
        unknown = await client.get("/order/nope")
        assert unknown.status_code == 404
        assert unknown.headers["cache-control"] == "no-store"


@pytest.fixture
async def round_trip_client(
    pg_url: str,
) -> AsyncIterator[tuple[AsyncTestClient[Any], OrderRepository]]:
    await migrate(pg_url)
    container = Container(settings=app_settings(pg_url))
    async with (
        AsyncConnectionPool(pg_url, min_size=1, max_size=1, open=False) as pool,
        AsyncTestClient(create_app(container)) as client,
    ):
        yield client, PgOrderRepository(pool)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    docs=st.lists(
        valid_order_documents(), min_size=1, max_size=4, unique_by=lambda d: d["order_uid"]
    )
)
async def test_generated_orders_round_trip_through_postgres_and_http(
    round_trip_client: tuple[AsyncTestClient[Any], OrderRepository], docs: list[dict[str, Any]]
) -> None:
    client, repo = round_trip_client
    # The database outlives one example: give every example's orders ids of their own.
    example = next(_examples)
    for index, doc in enumerate(docs):
        doc["order_uid"] = f"x{example}-{index}-{doc['order_uid']}"[:64]
    orders = []
    for doc in docs:
        parsed = parse_order(json.dumps(doc, ensure_ascii=False).encode())
        assert isinstance(parsed, Order), parsed
        orders.append(parsed)
    await repo.add_many(orders)
    for doc in docs:
        response = await client.get(f"/order/{doc['order_uid']}")
        assert response.status_code == 200
        assert response.json() == doc
