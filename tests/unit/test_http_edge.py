"""The HTTP edge (``entrypoints.http.edge`` and the front): hostile bodies, paths and query
strings, cross-site writes, ``HEAD``, and the headers every response carries."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from adapters.lru_cache import LruCache
from core.contracts.orders import order_from
from entrypoints.container import Container
from entrypoints.http.edge import SECURITY_HEADERS
from entrypoints.settings import Settings
from tests.support import app_client, memory_settings

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "model.json").read_bytes())
UID = SAMPLE["order_uid"]
VALIDATION = {"code": 2, "message": "errors.common.validation"}


async def with_sample(config: Settings) -> Container:
    """A container of ``config`` holding the sample order, its order cache a plain LRU."""
    container = Container(settings=config)
    container.orders_cache.override(providers.Object(LruCache()))
    await container.orders_repository().add_many([order_from(SAMPLE)])
    return container


@pytest.fixture
async def container(app_settings: Settings) -> Container:
    return await with_sample(app_settings)


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# --- item 1: deeply nested JSON -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/good/create?projectId=1"),
        ("PATCH", "/good/update?id=1&projectId=1"),
        ("PATCH", "/good/reprioritiize?id=1&projectId=1"),
        ("POST", "/project/create"),
    ],
)
async def test_deeply_nested_json_is_a_400_without_a_trace(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.request(
        method, path, content=deep(5000), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        **VALIDATION,
        "details": {"body": "malformed JSON: nested too deeply"},
    }
    assert "RecursionError" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


# --- item 2: NUL in a path ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/static/app%00.js", "/static/%00", "/goods%00/list"])
async def test_a_nul_byte_in_a_path_is_a_404(client: AsyncTestClient[Any], path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {"code": 3, "message": "errors.common.notFound", "details": {}}
    assert response.headers["cache-control"] == "no-store"


# --- item 3: cross-site writes ------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://testserver.local.evil"])
async def test_a_mutation_from_another_origin_is_403(
    client: AsyncTestClient[Any], origin: str
) -> None:
    response = await client.post(
        "/good/create?projectId=1", json={"name": "tea"}, headers={"Origin": origin}
    )
    assert response.status_code == 403
    assert response.json() == {"code": 2, "message": "errors.common.forbidden", "details": {}}
    assert (await client.get("/goods/list")).json()["meta"]["total"] == 0


async def test_a_mutation_from_the_same_origin_or_without_origin_is_served(
    client: AsyncTestClient[Any],
) -> None:
    same = await client.post(
        "/good/create?projectId=1",
        json={"name": "tea"},
        headers={"Origin": "http://testserver.local"},
    )
    assert same.status_code == 200, same.text
    assert (await client.post("/good/create?projectId=1", json={"name": "tea"})).status_code == 200
    # a JSON subtype and parameters are JSON too; a DELETE has no body to check
    typed = await client.post(
        "/good/create?projectId=1",
        content=b'{"name": "x"}',
        headers={"content-type": "application/merge-patch+json; charset=utf-8"},
    )
    assert typed.status_code == 200
    assert (await client.delete("/good/remove?id=1&projectId=1")).status_code == 200


async def test_allowed_origins_admit_the_listed_origins() -> None:
    config = memory_settings(allowed_origins="https://shop.example, http://a.test")
    async with app_client(await with_sample(config)) as client:
        for origin in ("https://shop.example", "http://a.test"):
            ok = await client.post(
                "/project/create", json={"name": "p"}, headers={"Origin": origin}
            )
            assert ok.status_code == 200
        refused = await client.post(
            "/project/create", json={"name": "p"}, headers={"Origin": "https://other.example"}
        )
        assert refused.status_code == 403
    async with app_client(await with_sample(memory_settings(allowed_origins="*"))) as client:
        anyone = await client.post(
            "/project/create", json={"name": "p"}, headers={"Origin": "https://other.example"}
        )
        assert anyone.status_code == 200


async def test_a_non_json_body_is_415_on_every_mutating_route(client: AsyncTestClient[Any]) -> None:
    await client.post("/good/create?projectId=1", json={"name": "tea"})
    for method, path in [
        ("POST", "/good/create?projectId=1"),
        ("PATCH", "/good/update?id=1&projectId=1"),
        ("PATCH", "/item/reprioritize?id=1&campaignId=1"),
        ("POST", "/project/create"),
    ]:
        response = await client.request(
            method,
            path,
            content=b'{"name": "x", "newPriority": 1}',
            headers={"content-type": "text/plain"},
        )
        assert response.status_code == 415, (method, path, response.text)
        assert response.json()["message"] == "errors.common.unsupportedMediaType"
    assert (await client.get("/goods/list")).json()["goods"][0]["name"] == "tea"


# --- item 5: HEAD -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/health", "application/json"),
        ("/projects/list", "application/json"),
        ("/goods/list?limit=5&offset=0&", "application/json"),
        ("/", "text/html; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/schema/openapi.json", "application/vnd.oai.openapi+json"),
    ],
)
async def test_head_answers_like_get_without_the_body(
    client: AsyncTestClient[Any], path: str, content_type: str
) -> None:
    got = await client.get(path, headers={"accept-encoding": "identity"})
    head = await client.head(path, headers={"accept-encoding": "identity"})
    assert (head.status_code, got.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == content_type
    assert head.headers["content-length"] == str(len(got.content))


async def test_head_of_an_unknown_path_is_a_404_without_a_body(
    client: AsyncTestClient[Any],
) -> None:
    head = await client.head("/no/such/page")
    assert (head.status_code, head.content) == (404, b"")


# --- item 6: security headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/static/app.js"),
        ("GET", "/health"),
        ("GET", f"/order/{UID}"),  # the front's hit
        ("GET", "/order/unknown"),
        ("GET", "/goods/list"),  # the front's page
        ("GET", "/goods/list?limit=x"),
        ("GET", "/no/such/route"),
        ("POST", "/goods/list"),
        ("GET", "/schema/swagger"),
        ("GET", "/static/%00"),
    ],
)
async def test_every_response_carries_the_security_headers(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    await client.get(f"/order/{UID}")  # cached: the next GET is the front's
    response = await client.request(method, path)
    for name, value in SECURITY_HEADERS:
        assert response.headers.get(name.decode()) == value.decode(), (path, name)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert response.headers["x-frame-options"] == "DENY"


# --- item 7: query strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/goods/list?limit=2&limit=3", "limit"),
        ("/goods/list?offset=1&offset=1", "offset"),
        ("/logs?id=1&id=2", "id"),
        ("/good/update?id=1&id=2&projectId=1", "id"),
        ("/good/update?id=1&projectId=1&campaignId=1&projectId=1", "projectId"),
    ],
)
async def test_a_repeated_query_parameter_is_a_400(
    client: AsyncTestClient[Any], path: str, field: str
) -> None:
    method = "PATCH" if "update" in path else "GET"
    response = await client.request(method, path, json={"name": "x"})
    assert response.status_code == 400
    assert response.json() == {**VALIDATION, "details": {field: "must be given once"}}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/goods/list?limit=2e0", "limit"),
        ("/goods/list?offset=1.0", "offset"),
        ("/goods/list?limit=%EF%BC%91", "limit"),  # a fullwidth digit one
        ("/goods/list?limit=+1", "limit"),
        ("/logs?projectId=1e2", "projectId"),
        ("/good/remove?id=1e0&projectId=1", "id"),
        ("/item/remove?id=1&campaignId=0x1", "campaignId"),
    ],
)
async def test_an_integer_parameter_is_decimal_digits_only(
    client: AsyncTestClient[Any], path: str, field: str
) -> None:
    await client.post("/good/create?projectId=1", json={"name": "tea"})
    method = "DELETE" if "remove" in path else "GET"
    response = await client.request(method, path)
    assert response.status_code == 400, response.text
    assert response.json() == {
        **VALIDATION,
        "details": {field: "must be an integer (decimal digits)"},
    }
    assert (await client.get("/goods/list")).json()["meta"]["removed"] == 0


async def test_plain_integers_still_work(client: AsyncTestClient[Any]) -> None:
    await client.post("/good/create?projectId=1", json={"name": "tea"})
    assert (await client.get("/goods/list?limit=-1")).status_code == 400  # range, as before
    assert (await client.get("/logs?projectId=1&id=1&limit=5")).status_code == 200
    assert (await client.delete("/good/remove?id=1&projectId=1")).status_code == 200


# --- item 13: invisible and bidi names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("\u200b\u200b", "must contain a visible character"),
        ("\u200c\u200d\u2060\ufeff", "must contain a visible character"),
        ("\u0301", "must contain a visible character"),
        ("tea\u202egpj.exe", "must not contain bidirectional controls"),
        ("\u2066tea\u2069", "must not contain bidirectional controls"),
        ("\u202dtea", "must not contain bidirectional controls"),
    ],
)
async def test_invisible_names_and_bidi_controls_are_refused(
    client: AsyncTestClient[Any], name: str, reason: str
) -> None:
    for path in ("/good/create?projectId=1", "/project/create"):
        response = await client.post(path, json={"name": name})
        assert response.status_code == 400, (path, response.text)
        assert response.json() == {**VALIDATION, "details": {"name": reason}}
    created = await client.post("/good/create?projectId=1", json={"name": "tea"})
    update = await client.patch(
        f"/good/update?id={created.json()['id']}&projectId=1", json={"name": name}
    )
    assert update.status_code == 400


@pytest.mark.parametrize("name", ["Первая запись", "שלום", "مرحبا", "茶", "e\u0301", "a\u200db"])
async def test_ordinary_names_in_any_script_are_accepted(
    client: AsyncTestClient[Any], name: str
) -> None:
    response = await client.post("/good/create?projectId=1", json={"name": name})
    assert response.status_code == 200, response.text


# --- the schema's integer: 2.0 is one, 2.5 and "2" are not --------------------------------------


@pytest.mark.parametrize(
    ("value", "status"), [(2.0, 200), (1e0, 200), (2.5, 400), ("2", 400), (True, 400)]
)
async def test_new_priority_is_a_json_schema_integer(
    client: AsyncTestClient[Any], value: object, status: int
) -> None:
    for name in ("a", "b"):
        await client.post("/good/create?projectId=1", json={"name": name})
    response = await client.patch(
        "/good/reprioritiize?id=2&projectId=1", json={"newPriority": value}
    )
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["priorities"][0] == {"id": 2, "priority": int(value)}  # type: ignore[call-overload]
