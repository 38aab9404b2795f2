"""The hot routes' front (``entrypoints.http.front``): what it answers itself, byte for byte
as Litestar would, and what it hands to Litestar unchanged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.lru_cache import LruCache
from core.contracts.orders import order_from
from entrypoints import metrics
from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.http.front import FrontedLitestar, _page
from tests.support import memory_settings

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "model.json").read_bytes())
UID = SAMPLE["order_uid"]


class Behind:
    """Counts the requests that reach Litestar's own ASGI handler (behind the front)."""

    def __init__(self, app: FrontedLitestar) -> None:
        self.paths: list[str] = []
        self._inner: ASGIApp = app.asgi_handler
        app.asgi_handler = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await self._inner(scope, receive, send)


class CountingCache(LruCache):
    """Counts reads (``get`` and ``get_view``) and the views it had made."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.views_made = 0

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(key)

    async def get_view(self, key: str, view: Callable[[bytes], Any]) -> tuple[bytes, Any] | None:
        self.gets += 1
        return await super().get_view(key, self._counted(view))

    def _counted(self, view: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        counted = self.__dict__.setdefault("_counted_views", {})
        if view not in counted:

            def making(value: bytes) -> Any:
                self.views_made += 1
                return view(value)

            counted[view] = making
        return counted[view]  # type: ignore[no-any-return]


#: The ``front`` fixture: a client of the app, what reached Litestar, the app's container.
Front = tuple[AsyncTestClient[Any], Behind, Container]


def counting_cache(container: Container) -> CountingCache:
    cache = container.orders_cache()
    assert isinstance(cache, CountingCache)
    return cache


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    container = Container(settings=memory_settings())
    container.orders_cache.override(providers.Object(CountingCache()))
    await container.orders_repository().add_many([order_from(SAMPLE)])
    app = create_app(container)
    assert isinstance(app, FrontedLitestar)
    behind = Behind(app)
    async with AsyncTestClient(app) as client:
        for i in range(3):
            created = await client.post("/good/create?projectId=1", json={"name": f"g{i}"})
            assert created.status_code == 200
        behind.paths.clear()
        yield client, behind, container


async def test_a_cached_order_is_answered_by_the_front_with_litestars_bytes(
    front: Front,
) -> None:
    client, behind, _ = front
    miss = await client.get(f"/order/{UID}")
    assert miss.headers["x-cache"] == "miss"
    assert behind.paths == [f"/order/{UID}"]
    hit = await client.get(f"/order/{UID}")
    assert behind.paths == [f"/order/{UID}"]  # the hit did not reach Litestar
    # a query string sends the same hit through Litestar: same status, headers and bytes
    through = await client.get(f"/order/{UID}?via=litestar")
    assert len(behind.paths) == 2
    assert (hit.status_code, hit.content) == (through.status_code, through.content)
    assert dict(hit.headers) == dict(through.headers)
    assert hit.headers["x-cache"] == "hit"


async def test_a_matching_if_none_match_is_a_304_from_the_front(
    front: Front,
) -> None:
    client, behind, _ = front
    etag = (await client.get(f"/order/{UID}")).headers["etag"]
    behind.paths.clear()
    for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        answer = await client.get(f"/order/{UID}", headers={"If-None-Match": given})
        through = await client.get(f"/order/{UID}?via=litestar", headers={"If-None-Match": given})
        assert answer.status_code == through.status_code == 304
        assert dict(answer.headers) == dict(through.headers)
        assert answer.content == b""
    assert len(behind.paths) == 4  # only the ones with a query string
    stale = await client.get(f"/order/{UID}", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/order/unknown-id", 404),
        ("/order/bad%20id", 400),
        ("/order/" + "a" * 65, 400),
        ("/order/", 404),
    ],
)
async def test_what_is_not_a_cached_order_goes_to_litestar(
    front: Front, path: str, status: int
) -> None:
    client, behind, _ = front
    answer = await client.get(path)
    assert answer.status_code == status
    assert set(answer.json()) == {"code", "message", "details"}
    assert len(behind.paths) == 1


async def test_a_miss_reads_the_cache_once(
    front: Front,
) -> None:
    client, _, container = front
    cache = counting_cache(container)
    assert (await client.get(f"/order/{UID}")).headers["x-cache"] == "miss"
    assert cache.gets == 1  # the front's lookup; the handler went straight to the repository
    assert (await client.get(f"/order/{UID}")).headers["x-cache"] == "hit"
    assert cache.gets == 2


async def test_other_methods_go_to_litestar(
    front: Front,
) -> None:
    client, behind, _ = front
    await client.get(f"/order/{UID}")
    behind.paths.clear()
    await client.post(f"/order/{UID}")
    await client.put("/goods/list")
    assert len(behind.paths) == 2


async def test_head_is_answered_as_get_without_the_body(
    front: Front,
) -> None:
    client, behind, _ = front
    for path in (f"/order/{UID}", "/goods/list"):
        got = await client.get(path)
        behind.paths.clear()
        head = await client.head(path)
        assert behind.paths == []  # the front's answer, as for GET
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == "application/json"


@pytest.mark.parametrize("route", ["/goods/list", "/items/list"])
@pytest.mark.parametrize(
    "query", ["", "limit=2", "offset=2", "limit=2&offset=0", "offset=3&limit=1"]
)
async def test_a_list_page_is_answered_by_the_front_with_litestars_bytes(
    front: Front, route: str, query: str
) -> None:
    client, behind, _ = front
    answer = await client.get(f"{route}?{query}" if query else route)
    assert behind.paths == []
    # a trailing "&" is not canonical: the same page through Litestar
    through = await client.get(f"{route}?{query}&")
    assert behind.paths == [route]
    assert (answer.status_code, answer.content) == (200, through.content)
    assert dict(answer.headers) == dict(through.headers)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "offset=-1",
        "limit=%31",
        "limit=1e0",
        "limit=１",
        "limit=1&limit=2",
        "projectId=1",
        "limit",
        "offset=99999999",
    ],
)
async def test_a_list_query_the_front_does_not_understand_goes_to_litestar(
    front: Front, query: str
) -> None:
    client, behind, _ = front
    await client.get(f"/goods/list?{query}")
    assert behind.paths == ["/goods/list"]


def test_the_list_query_reader() -> None:
    assert _page(b"") == (10, 1)
    assert _page(b"limit=5&offset=0") == (5, 1)
    assert _page(b"offset=7") == (10, 7)
    assert _page(b"limit=1000") == (1000, 1)
    for odd in (b"limit=1001", b"limit=0", b"limit=+1", b"limit=1&limit=1", b"x=1", b"&"):
        assert _page(odd) is None


async def test_a_cached_orders_headers_are_made_once_and_match_litestars(
    front: Front,
) -> None:
    client, behind, container = front
    cache = counting_cache(container)
    await client.get(f"/order/{UID}")  # the miss caches it
    hits = [await client.get(f"/order/{UID}") for _ in range(3)]
    assert cache.views_made == 1  # made on the first hit, then found with the entry
    through = await client.get(f"/order/{UID}?via=litestar")
    for hit in hits:
        assert (hit.status_code, hit.content) == (200, through.content)
        assert sorted(hit.headers.multi_items()) == sorted(through.headers.multi_items())
    assert cache.views_made == 1
    assert len(behind.paths) == 2  # the miss and the one with a query string


async def test_the_front_counts_its_answers_in_the_latency_histogram(
    front: Front,
) -> None:
    client, _, _ = front
    name = "hexmarket_http_request_duration_seconds_count"

    def count(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    etag = (await client.get(f"/order/{UID}")).headers["etag"]
    before = {s: count("/order/{order_uid}", s) for s in ("200", "304")}
    listed = count("/goods/list", "200")
    await client.get(f"/order/{UID}")
    await client.get(f"/order/{UID}", headers={"If-None-Match": etag})
    await client.get(f"/order/{UID}", headers={"If-None-Match": etag})
    await client.get("/goods/list")
    assert count("/order/{order_uid}", "200") == before["200"] + 1
    assert count("/order/{order_uid}", "304") == before["304"] + 2
    assert count("/goods/list", "200") == listed + 1
