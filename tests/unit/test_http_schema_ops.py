"""The OpenAPI document tells what the server does; Swagger UI loads nothing from elsewhere;
``/metrics`` has one content type and is compressed; ``/ready`` is cached and uses the
process's own clients."""

from __future__ import annotations

import asyncio
import gzip
import re
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from adapters.memory.logstore import MemoryLogStore
from core.catalog.rules import NAME_PATTERN
from entrypoints.container import Container
from entrypoints.http.edge import INTEGER_PARAMETERS
from tests.support import app_client, memory_settings

MUTATIONS = {"post", "patch", "put", "delete"}


@pytest.fixture
async def schema(client: AsyncTestClient[Any]) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return document


def _parameters(schema: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in schema["paths"][path][method].get("parameters", [])}


# --- item 10: the schema ------------------------------------------------------------------------


async def test_metrics_is_typed_text_plain(schema: dict[str, Any]) -> None:
    content = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]


async def test_every_400_and_error_is_the_envelope(schema: dict[str, Any]) -> None:
    envelope = schema["components"]["schemas"]["ErrorOut"]
    assert set(envelope["required"]) == {"code", "message", "details"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorOut", (path, method, status)
    assert "400" in schema["paths"]["/logs"]["get"]["responses"]
    assert "503" in schema["paths"]["/logs"]["get"]["responses"]


@pytest.mark.parametrize(
    ("path", "method", "required", "absent"),
    [
        ("/good/create", "post", "projectId", "campaignId"),
        ("/good/update", "patch", "projectId", "campaignId"),
        ("/good/remove", "delete", "projectId", "campaignId"),
        ("/good/reprioritiize", "patch", "projectId", "campaignId"),
        ("/item/create", "post", "campaignId", "projectId"),
        ("/item/remove", "delete", "campaignId", "projectId"),
    ],
)
async def test_each_dialect_requires_its_project_parameter(
    schema: dict[str, Any], path: str, method: str, required: str, absent: str
) -> None:
    parameters = _parameters(schema, path, method)
    assert parameters[required]["required"] is True
    assert parameters[required]["schema"]["type"] == "integer"
    assert absent not in parameters


async def test_query_integers_are_integers(schema: dict[str, Any]) -> None:
    for path, method in [("/goods/list", "get"), ("/logs", "get"), ("/good/update", "patch")]:
        for name, parameter in _parameters(schema, path, method).items():
            if name not in INTEGER_PARAMETERS:  # /logs?type= is a list of names
                continue
            assert parameter["schema"]["type"] == "integer", (path, parameter)
            assert "oneOf" not in parameter["schema"]


async def test_bodies_have_their_limits_and_refuse_unknown_fields(schema: dict[str, Any]) -> None:
    bodies = schema["components"]["schemas"]
    for name in ("GoodBody", "ProjectBody", "ReprioritizeBody"):
        assert bodies[name]["additionalProperties"] is False
    good = bodies["GoodBody"]["properties"]
    assert (good["name"]["minLength"], good["name"]["maxLength"]) == (1, 255)
    assert good["name"]["pattern"] == NAME_PATTERN
    assert good["description"]["maxLength"] == 10_000
    assert bodies["ProjectBody"]["properties"]["name"]["maxLength"] == 255


async def test_the_name_pattern_means_the_same_in_python_and_in_the_schema() -> None:
    # Plain character classes only: no \s, \w, \p or flags whose meaning differs by engine.
    assert not re.search(r"\\[swdpSWDP]", NAME_PATTERN)


async def test_order_uid_has_its_pattern(schema: dict[str, Any]) -> None:
    uid = _parameters(schema, "/order/{order_uid}", "get")["order_uid"]["schema"]
    assert uid["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    responses = schema["paths"]["/order/{order_uid}"]["get"]["responses"]
    assert {"200", "304", "400", "404", "503"} <= set(responses)


async def test_mutations_list_their_errors_and_the_token_scheme(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in MUTATIONS:
                assert {"400", "403", "413", "415", "503"} <= set(operation["responses"]), path
                assert "security" not in operation  # no token set: the server is open
                assert "401" not in operation["responses"]


async def test_with_a_token_the_mutations_require_it() -> None:
    async with app_client(Container(settings=memory_settings(api_token="t0ken"))) as client:
        schema = (await client.get("/schema/openapi.json")).json()
        for item in schema["paths"].values():
            for method, operation in item.items():
                if method in MUTATIONS:
                    assert operation["security"] == [{"bearer": []}]
                    assert "401" in operation["responses"]
                else:
                    assert "security" not in operation


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema/nope", "/schema/x.json", "/schema/a/b"])
async def test_unknown_schema_paths_are_the_json_404(
    client: AsyncTestClient[Any], path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {"code": 3, "message": "errors.common.notFound", "details": {}}


# --- item 11: Swagger UI from the package -------------------------------------------------------


async def test_swagger_ui_loads_only_from_this_server(client: AsyncTestClient[Any]) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    html = page.text
    assert "http://" not in html
    assert "https://" not in html
    assert "<script>" not in html.replace(" ", "")  # no inline script: CSP allows none
    assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html)
    assert len(assets) >= 5
    for asset in assets:
        assert asset.startswith("/schema/swagger/assets/"), asset
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 10
    bundle = await client.get("/schema/swagger/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content


# --- item 12: /metrics --------------------------------------------------------------------------


async def test_metrics_content_type_once_and_gzip_offered(client: AsyncTestClient[Any]) -> None:
    plain = await client.get("/metrics", headers={"accept-encoding": "identity"})
    content_type = plain.headers["content-type"]
    assert content_type.count("charset") == 1
    assert content_type.startswith("text/plain; version=")
    squeezed = await client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert squeezed.headers["content-encoding"] == "gzip"
    assert int(squeezed.headers["content-length"]) < len(plain.content) / 3
    assert b"hexmarket_http_request_duration_seconds" in gzip.decompress(
        await _raw(client, "/metrics")
    )


async def _raw(client: AsyncTestClient[Any], path: str) -> bytes:
    async with client.stream("GET", path, headers={"accept-encoding": "gzip"}) as response:
        return b"".join([chunk async for chunk in response.aiter_raw()])


async def test_static_files_are_compressed_and_the_hot_routes_are_not(
    client: AsyncTestClient[Any],
) -> None:
    script = await client.get("/schema/swagger/assets/swagger-ui-bundle.js")
    assert script.headers["content-encoding"] == "gzip"
    page = await client.get("/goods/list?limit=1000", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in page.headers  # one representation per route and ETag


# --- item 9: /ready -----------------------------------------------------------------------------


class CountingLogStore(MemoryLogStore):
    """The in-memory log store whose ``ping`` is counted."""

    def __init__(self) -> None:
        super().__init__()
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        await asyncio.sleep(0.01)


def _counting_container(store: CountingLogStore, **overrides: Any) -> Container:
    # ClickHouse on a port nothing listens on: only the app's own client may be used
    container = Container(
        settings=memory_settings(
            log_store="clickhouse", clickhouse_url="http://127.0.0.1:9/db", **overrides
        )
    )
    container.log_store.override(providers.Object(store))
    return container


async def test_ready_asks_the_apps_own_client_and_reuses_the_answer() -> None:
    store = CountingLogStore()
    async with app_client(_counting_container(store, ready_cache_seconds=30)) as client:
        answers = await asyncio.gather(*(client.get("/ready") for _ in range(50)))
        assert {a.status_code for a in answers} == {200}
        assert answers[0].json() == {"status": "ready", "checks": {"clickhouse": "ok"}}
        assert store.pings == 1


async def test_ready_asks_again_once_the_answer_is_older_than_the_setting() -> None:
    store = CountingLogStore()
    async with app_client(_counting_container(store, ready_cache_seconds=0)) as client:
        for _ in range(3):
            assert (await client.get("/ready")).status_code == 200
        assert store.pings == 3
