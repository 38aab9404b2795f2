"""/health, /ready, /metrics, the bearer-token guard and the OpenAPI schema, without servers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import delete, get, patch, post
from litestar.testing import AsyncTestClient

from entrypoints.container import Container
from entrypoints.http import app as app_module
from tests.support import app_client, memory_settings


@post("/good/create", sync_to_thread=False)
def fake_create() -> dict[str, str]:
    return {"created": "yes"}


@patch("/good/update", sync_to_thread=False)
def fake_update() -> dict[str, str]:
    return {"updated": "yes"}


@delete("/good/remove", status_code=200, sync_to_thread=False)
def fake_remove() -> dict[str, str]:
    return {"removed": "yes"}


@get("/goods/list", sync_to_thread=False)
def fake_list() -> dict[str, str]:
    return {"list": "yes"}


ROUTES = [fake_create, fake_update, fake_remove, fake_list]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _container(**overrides: Any) -> Container:
    return Container(settings=memory_settings(**overrides))


@pytest.fixture
def routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "ROUTE_MODULES", ("entrypoints.http.ops", __name__))


@pytest.fixture
async def client(routes: None, container: Container) -> AsyncIterator[AsyncTestClient[Any]]:
    """The conftest's client, on the ops routes and this module's stand-ins."""
    async with app_client(container) as test_client:
        yield test_client


async def test_health_is_ok(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_with_no_servers_needed(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {}}


async def test_ready_names_the_server_that_is_down(routes: None) -> None:
    port = _closed_port()
    container = _container(
        catalog_store="postgres", postgres_url=f"postgresql://u:secret@127.0.0.1:{port}/db"
    )
    async with app_client(container) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == 1
        assert body["message"] == "errors.common.unavailable"
        assert set(body["details"]) == {"postgres"}
        assert "PostgreSQL" in body["details"]["postgres"]
        assert "connection refused" in body["details"]["postgres"]
        assert "secret" not in response.text


async def test_metrics_exposes_the_named_series(client: AsyncTestClient[Any]) -> None:
    await client.get("/goods/list")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "hexmarket_http_request_duration_seconds_bucket",
        "hexmarket_cache_hits_total",
        "hexmarket_orders_ingested_total",
        "hexmarket_orders_duplicate_total",
        "hexmarket_orders_dead_lettered_total",
        "hexmarket_outbox_backlog",
        "hexmarket_log_batches_written_total",
    ):
        assert name in text, name
    assert 'route="/goods/list"' in text


async def test_routes_are_open_without_a_token(client: AsyncTestClient[Any]) -> None:
    assert (await client.post("/good/create")).status_code == 201
    assert (await client.patch("/good/update")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/good/create"), ("PATCH", "/good/update"), ("DELETE", "/good/remove")],
)
async def test_mutations_need_the_token_when_configured(
    routes: None, method: str, path: str
) -> None:
    async with app_client(_container(api_token="s3cret")) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "code": 2,
                "message": "errors.common.unauthorized",
                "details": {},
            }
            assert response.headers["www-authenticate"].startswith("Bearer")
        ok = await client.request(method, path, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code in (200, 201)


async def test_reads_stay_open_with_a_token(routes: None) -> None:
    async with app_client(_container(api_token="s3cret")) as client:
        assert (await client.get("/goods/list")).status_code == 200
        assert (await client.get("/health")).status_code == 200


async def test_openapi_schema_and_swagger_ui(client: AsyncTestClient[Any]) -> None:
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["info"]["title"] == "hexmarket"
    assert "/ready" in doc["paths"]
    swagger = await client.get("/schema/swagger")
    assert swagger.status_code == 200
    assert "swagger-ui" in swagger.text.lower()


async def test_serve_starts_without_clickhouse_and_ready_names_it() -> None:
    from entrypoints import runtime

    container = _container(log_store="clickhouse")  # and no HEXMARKET_CLICKHOUSE_URL
    settings = container.settings()
    await runtime.check_servers(settings, ["serve"])  # starts: nothing to dial, nothing fails
    async with AsyncTestClient(app_module.create_app(container)) as client:
        assert (await client.get("/goods/list")).status_code == 200
        assert (await client.get("/order/nope")).status_code == 404
        logs = await client.get("/logs")
        assert logs.status_code == 503
        assert logs.json()["message"] == "errors.common.unavailable"
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["details"] == {
            "clickhouse": "cannot reach ClickHouse: not configured (set HEXMARKET_CLICKHOUSE_URL)"
        }
