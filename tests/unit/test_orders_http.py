"""GET /order/{order_uid} and the cache warm-up on the in-memory adapters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from adapters.lru_cache import LruCache
from adapters.memory.orders import MemoryOrderRepository
from core.contracts.orders import example_document, order_from
from core.orders.queries import CACHE_PREFIX, DIGEST_SIZE, OrderQueries, digest_of, pack, unpack
from entrypoints.container import Container
from entrypoints.http.edge import SECURITY_HEADERS
from tests.support import BrokenCache, app_client, memory_settings

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "model.json").read_bytes())
NOT_FOUND = {"code": 3, "message": "errors.common.notFound", "details": {}}


def dated(uid: str, minutes: int) -> dict[str, Any]:
    doc = example_document(uid, minutes)
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    doc["date_created"] = moment.isoformat().replace("+00:00", "Z")
    return doc


async def with_orders(
    docs: list[dict[str, Any]], *, cache_size: int = 100, warm: int = 0
) -> Container:
    """An all-memory container whose order repository holds ``docs``."""
    container = Container(
        settings=memory_settings(orders_cache_size=cache_size, orders_warm_count=warm)
    )
    repo: MemoryOrderRepository = container.orders_repository()
    await repo.add_many([order_from(d) for d in docs])
    return container


@pytest.fixture
async def container() -> Container:
    """The conftest's ``client`` serves this: the sample order stored."""
    return await with_orders([SAMPLE])


async def test_a_stored_order_is_served_then_cached(client: AsyncTestClient[Any]) -> None:
    first = await client.get("/order/b563feb7b2b84b6test")
    assert first.status_code == 200
    assert first.json() == SAMPLE
    assert first.headers["x-cache"] == "miss"
    assert first.headers["content-type"].startswith("application/json")
    assert first.headers["cache-control"] == "private, max-age=31536000, immutable"
    second = await client.get("/order/b563feb7b2b84b6test")
    assert second.headers["x-cache"] == "hit"
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert first.headers["etag"].startswith('"')


async def test_a_matching_if_none_match_is_304(client: AsyncTestClient[Any]) -> None:
    etag = (await client.get("/order/b563feb7b2b84b6test")).headers["etag"]
    for value in (etag, f'"nope", W/{etag}', "*"):
        response = await client.get("/order/b563feb7b2b84b6test", headers={"If-None-Match": value})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
    other = await client.get("/order/b563feb7b2b84b6test", headers={"If-None-Match": '"x"'})
    assert other.status_code == 200


async def test_an_unknown_order_is_a_404_envelope_not_stored(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/order/unknown-id")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("uid", ["x" * 65, "bad%20id", "semi;colon", "%C3%A9t%C3%A9", "a.b"])
async def test_a_malformed_id_is_a_400_naming_the_field(
    client: AsyncTestClient[Any], uid: str
) -> None:
    response = await client.get(f"/order/{uid}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 2
    assert "order_uid" in body["details"]


async def test_warm_up_loads_the_newest_orders_and_the_bound_holds() -> None:
    docs = [dated(f"o{i}", i) for i in range(10)]
    container = await with_orders(docs, cache_size=5, warm=3)
    repo: MemoryOrderRepository = container.orders_repository()
    async with app_client(container) as client:
        cache: LruCache = container.orders_cache()
        assert len(cache) == 3
        reads = repo.reads
        assert reads == 1  # the warm-up is one repository read (one query on Postgres)
        for uid in ("o9", "o8", "o7"):
            response = await client.get(f"/order/{uid}")
            assert response.headers["x-cache"] == "hit"
        assert repo.reads == reads  # hits never touch the store
        assert (await client.get("/order/o6")).headers["x-cache"] == "miss"
        for i in range(10):
            await client.get(f"/order/o{i}")
            assert len(cache) <= 5
        assert len(cache) == 5


async def test_a_cache_outage_is_a_miss_not_a_failure() -> None:
    repo = MemoryOrderRepository()
    await repo.add_many([order_from(SAMPLE)])
    queries = OrderQueries(repository=repo, cache=BrokenCache())
    document = await queries.get("b563feb7b2b84b6test")
    assert not document.cache_hit
    assert json.loads(document.body) == SAMPLE
    assert await queries.warm(10) == 0
    assert queries.cache_errors == 3


def _sample(name: str, **labels: str) -> float:
    from entrypoints.metrics import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_hits_misses_and_latency_reach_the_metrics(client: AsyncTestClient[Any]) -> None:
    route = {"method": "GET", "route": "/order/{order_uid}"}
    await client.get("/metrics")  # the counters catch up with earlier tests' apps
    before = (
        _sample("hexmarket_cache_hits_total", cache="orders"),
        _sample("hexmarket_cache_misses_total", cache="orders"),
        _sample("hexmarket_http_request_duration_seconds_count", **route, status="200"),
        _sample("hexmarket_http_request_duration_seconds_count", **route, status="404"),
    )
    for _ in range(3):
        await client.get("/order/b563feb7b2b84b6test")  # a miss, then two hits
    await client.get("/order/unknown-id")  # a miss too
    await client.get("/metrics")
    after = (
        _sample("hexmarket_cache_hits_total", cache="orders"),
        _sample("hexmarket_cache_misses_total", cache="orders"),
        _sample("hexmarket_http_request_duration_seconds_count", **route, status="200"),
        _sample("hexmarket_http_request_duration_seconds_count", **route, status="404"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 3, 1]


async def test_hit_and_304_carry_exactly_the_promised_headers(
    client: AsyncTestClient[Any],
) -> None:
    await client.get("/order/b563feb7b2b84b6test")
    hit = await client.get("/order/b563feb7b2b84b6test")
    own = {k: v for k, v in hit.headers.items() if k.encode() not in dict(SECURITY_HEADERS)}
    assert {k: v for k, v in own.items() if k != "etag"} == {
        "content-type": "application/json",
        "content-length": str(len(hit.content)),
        "x-cache": "hit",
        "cache-control": "private, max-age=31536000, immutable",
    }
    assert hit.headers["etag"] == f'"{digest_of(hit.content)}"'
    not_modified = await client.get(
        "/order/b563feb7b2b84b6test", headers={"If-None-Match": hit.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert "content-length" not in not_modified.headers
    assert "content-type" not in not_modified.headers
    assert not_modified.headers["cache-control"] == "private, max-age=31536000, immutable"


@given(st.binary(max_size=4096))
def test_a_cached_value_holds_the_body_and_its_digest(body: bytes) -> None:
    assert unpack(pack(body)) == (digest_of(body), body)


@given(st.binary(max_size=64))
def test_a_value_without_a_leading_digest_is_refused(junk: bytes) -> None:
    head = junk[:DIGEST_SIZE]
    looks_packed = len(head) == DIGEST_SIZE and all(c in b"0123456789abcdef" for c in head)
    assert (unpack(junk) is not None) == looks_packed


async def test_a_cache_entry_in_another_format_is_a_miss_and_is_replaced() -> None:
    repo = MemoryOrderRepository()
    await repo.add_many([order_from(SAMPLE)])
    cache = LruCache()
    queries = OrderQueries(repository=repo, cache=cache)
    key = CACHE_PREFIX + "b563feb7b2b84b6test"
    await cache.set(key, b'{"not": "packed"}', None)
    document = await queries.get("b563feb7b2b84b6test")
    assert not document.cache_hit
    assert json.loads(document.body) == SAMPLE
    assert document.digest == digest_of(document.body)
    assert await cache.get(key) == pack(document.body)
    assert (await queries.get("b563feb7b2b84b6test")).cache_hit


async def test_recent_orders_are_listed_newest_first_and_keyset_paged() -> None:
    docs = [dated(f"o{i}", i) for i in range(5)]
    async with app_client(await with_orders(docs)) as client:
        first = await client.get("/orders?limit=2")
        assert first.status_code == 200, first.text
        assert first.headers["cache-control"] == "no-store"
        body = first.json()
        assert [o["order_uid"] for o in body["orders"]] == ["o4", "o3"]
        assert body["meta"] == {"limit": 2, "count": 2, "next": "o3"}
        assert body["orders"][0] == {
            "order_uid": "o4",
            "date_created": docs[4]["date_created"],
            "track_number": docs[4]["track_number"],
            "customer_id": docs[4]["customer_id"],
            "name": docs[4]["delivery"]["name"],
            "city": docs[4]["delivery"]["city"],
            "amount": docs[4]["payment"]["amount"],
            "currency": docs[4]["payment"]["currency"],
            "items": len(docs[4]["items"]),
        }
        second = (await client.get("/orders?limit=2&before=o3")).json()
        assert [o["order_uid"] for o in second["orders"]] == ["o2", "o1"]
        last = (await client.get("/orders?limit=2&before=o1")).json()
        assert [o["order_uid"] for o in last["orders"]] == ["o0"]
        assert last["meta"]["next"] is None
        assert len((await client.get("/orders")).json()["orders"]) == 5  # default 20


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "before=bad%20id"])
async def test_recent_orders_refuse_bad_queries(client: AsyncTestClient[Any], query: str) -> None:
    response = await client.get(f"/orders?{query}")
    assert response.status_code == 400
    assert response.json()["message"] == "errors.common.validation"
