"""The catalog HTTP API on the in-memory adapters: shapes, dialects and the error envelope."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.settings import Settings
from tests.support import memory_settings

NOT_FOUND = {"code": 3, "message": "errors.common.notFound", "details": {}}


@pytest.fixture
def app_settings() -> Settings:
    return memory_settings(max_body_bytes=4096)


async def create(client: AsyncTestClient[Any], name: str, project: int = 1) -> dict[str, Any]:
    response = await client.post(f"/good/create?projectId={project}", json={"name": name})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_good_dialect_round_trip(client: AsyncTestClient[Any]) -> None:
    created = await create(client, " tea ")
    assert set(created) == {
        "id",
        "projectId",
        "name",
        "description",
        "priority",
        "removed",
        "createdAt",
    }
    assert (created["name"], created["description"], created["priority"]) == ("tea", "", 1)
    assert created["createdAt"].endswith("Z")
    updated = await client.patch(
        f"/good/update?id={created['id']}&projectId=1", json={"name": "tea", "description": "d"}
    )
    assert updated.json()["description"] == "d"
    removed = await client.delete(f"/good/remove?id={created['id']}&projectId=1")
    assert (removed.status_code, removed.json()) == (
        200,
        {"id": created["id"], "campaignId": 1, "removed": True},
    )
    listed = (await client.get("/goods/list")).json()
    assert listed["meta"] == {"total": 1, "removed": 1, "limit": 10, "offset": 1}
    assert listed["goods"][0]["removed"] is True


async def test_the_item_dialect_is_served_by_the_same_handlers(
    client: AsyncTestClient[Any],
) -> None:
    first = (await client.post("/item/create?campaignId=1", json={"name": "a"})).json()
    second = (await client.post("/item/create?campaignId=1", json={"name": "b"})).json()
    moved = await client.patch(
        f"/item/reprioritize?id={second['id']}&campaignId=1", json={"newPriority": 1}
    )
    assert moved.json() == {
        "priorities": [{"id": second["id"], "priority": 1}, {"id": first["id"], "priority": 2}]
    }
    update = await client.patch(f"/item/update?id={first['id']}&campaignId=1", json={"name": "A"})
    assert update.json()["name"] == "A"
    listed = (await client.get("/items/list?limit=1&offset=0")).json()
    assert [g["id"] for g in listed["goods"]] == [second["id"]]
    assert listed["meta"]["offset"] == 1
    removed = await client.delete(f"/item/remove?id={first['id']}&campaignId=1")
    assert removed.json() == {"id": first["id"], "campaignId": 1, "removed": True}


@pytest.mark.parametrize("path", ["/good/reprioritiize", "/good/reprioritize"])
async def test_both_reprioritize_spellings(client: AsyncTestClient[Any], path: str) -> None:
    _, b, c = [await create(client, n) for n in "abc"]
    response = await client.patch(f"{path}?id={c['id']}&projectId=1", json={"newPriority": 2})
    assert response.json() == {
        "priorities": [{"id": c["id"], "priority": 2}, {"id": b["id"], "priority": 3}]
    }


async def test_empty_page_is_an_empty_list(client: AsyncTestClient[Any]) -> None:
    listed = (await client.get("/goods/list?offset=5")).json()
    assert listed == {"meta": {"total": 0, "removed": 0, "limit": 10, "offset": 5}, "goods": []}


async def test_projects(client: AsyncTestClient[Any]) -> None:
    created = await client.post("/project/create", json={"name": "second"})
    assert created.status_code == 200
    assert set(created.json()) == {"id", "name", "createdAt"}
    listed = (await client.get("/projects/list")).json()["projects"]
    assert [(p["id"], p["name"]) for p in listed] == [(1, "Первая запись"), (2, "second")]
    good = await create(client, "x", project=2)
    assert good["projectId"] == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/good/update?id=99&projectId=1"),
        ("DELETE", "/good/remove?id=99&projectId=1"),
        ("PATCH", "/good/reprioritiize?id=99&projectId=1"),
        ("PATCH", "/good/update?id=1&projectId=2"),
        ("DELETE", "/item/remove?id=1&campaignId=2"),
        ("PATCH", "/item/reprioritize?id=1&campaignId=2"),
        ("POST", "/good/create?projectId=2"),
        ("POST", "/item/create?campaignId=77"),
    ],
)
async def test_404_cases_answer_the_exact_envelope(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    await create(client, "exists")
    body = {"newPriority": 1} if "reprior" in path else {"name": "x"}
    response = await client.request(method, path, json=None if method == "DELETE" else body)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


async def test_an_already_removed_good_is_not_found(client: AsyncTestClient[Any]) -> None:
    good = await create(client, "a")
    await client.delete(f"/good/remove?id={good['id']}&projectId=1")
    for method, path, body in [
        ("DELETE", f"/good/remove?id={good['id']}&projectId=1", None),
        ("PATCH", f"/good/update?id={good['id']}&projectId=1", {"name": "b"}),
        ("PATCH", f"/good/reprioritize?id={good['id']}&projectId=1", {"newPriority": 5}),
    ]:
        response = await client.request(method, path, json=body)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path", "content", "details"),
    [
        (
            "POST",
            "/good/create?projectId=1",
            b'{"name": "a", "colour": 1}',
            {"colour": "unknown field"},
        ),
        ("POST", "/good/create?projectId=1", b'{"name": 5}', {"name": "must be text"}),
        (
            "POST",
            "/good/create?projectId=1",
            b'{"name": null}',
            {"name": "must be text"},
        ),
        ("POST", "/good/create?projectId=1", b'{"description": "x"}', {"name": "is required"}),
        (
            "POST",
            "/good/create?projectId=1",
            b'{"name": "a", "colour": 1, "size": 2}',
            {"colour": "unknown field", "size": "unknown field"},
        ),
        (
            "PATCH",
            "/good/update?id=1&projectId=1",
            b'{"colour": 1, "name": "a", "size": 2}',
            {"colour": "unknown field", "size": "unknown field"},
        ),
        ("PATCH", "/good/update?id=1&projectId=1", b"{}", {"name": "is required"}),
        ("PATCH", "/good/reprioritize?id=1&projectId=1", b"{}", {"newPriority": "is required"}),
        (
            "PATCH",
            "/item/reprioritize?id=1&campaignId=1",
            b'{"priority": 2, "x": 0}',
            {"priority": "unknown field", "x": "unknown field"},
        ),
        (
            "POST",
            "/item/create?campaignId=1&projectId=2",
            b'{"name": "a"}',
            {"projectId": "disagrees with campaignId", "campaignId": "disagrees with projectId"},
        ),
        ("POST", "/project/create", b"{}", {"name": "is required"}),
        (
            "POST",
            "/project/create",
            b'{"name": "a", "x": 1, "y": 2}',
            {"x": "unknown field", "y": "unknown field"},
        ),
        ("POST", "/good/create?projectId=1", b'{"name": "a", "description": 1}', None),
        ("POST", "/good/create?projectId=1", b'{"name": ', None),
        ("POST", "/good/create?projectId=1", b"", {"body": "a JSON object is required"}),
        ("POST", "/good/create?projectId=1", b"[]", None),
        ("POST", "/good/create?projectId=1", b'{"name": "  "}', {"name": "must not be empty"}),
        ("POST", "/good/create?projectId=1", b'{"name": "' + b"x" * 256 + b'"}', None),
        ("POST", "/good/create", b'{"name": "a"}', {"projectId": "is required"}),
        ("POST", "/item/create", b'{"name": "a"}', {"campaignId": "is required"}),
        ("POST", "/good/create?projectId=abc", b'{"name": "a"}', None),
        ("PATCH", "/good/update?projectId=1", b'{"name": "a"}', None),
        ("PATCH", "/good/update?id=x&projectId=1", b'{"name": "a"}', None),
        ("PATCH", "/good/reprioritize?id=1&projectId=1", b'{"newPriority": 0}', None),
        ("PATCH", "/good/reprioritize?id=1&projectId=1", b'{"newPriority": "2"}', None),
        ("PATCH", "/good/reprioritize?id=1&projectId=1", b'{"newPriority": true}', None),
        ("PATCH", "/good/reprioritize?id=1&projectId=1", b'{"priority": 2}', None),
        ("GET", "/goods/list?limit=0", b"", None),
        ("GET", "/goods/list?limit=1001", b"", None),
        ("GET", "/goods/list?offset=-1", b"", None),
        ("GET", "/goods/list?limit=ten", b"", None),
        ("POST", "/project/create", b'{"name": "a", "x": 1}', {"x": "unknown field"}),
        ("POST", "/project/create", b'{"name": ""}', {"name": "must not be empty"}),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    client: AsyncTestClient[Any],
    method: str,
    path: str,
    content: bytes,
    details: dict[str, str] | None,
) -> None:
    await create(client, "exists")
    response = await client.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["message"]) == (2, "errors.common.validation")
    assert body["details"], "details must name the field"
    if details is not None:
        assert body["details"] == details
    expected_field = {
        "abc": "projectId",
        "update?projectId": "id",
        "id=x": "id",
        "newPriority": "newPriority",
        "limit": "limit",
        "offset": "offset",
        '"priority"': "priority",
        "description": None,
    }
    for marker, field in expected_field.items():
        if (marker in path or marker.encode() in content) and field is not None:
            assert field in body["details"], body


async def test_an_oversize_body_is_413(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/good/create?projectId=1",
        content=b'{"name": "' + b"x" * 5000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["message"] == "errors.common.payloadTooLarge"


async def test_the_openapi_schema_lists_every_catalog_route(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    expected = {
        "/good/create": "post",
        "/item/create": "post",
        "/good/update": "patch",
        "/item/update": "patch",
        "/good/remove": "delete",
        "/item/remove": "delete",
        "/good/reprioritiize": "patch",
        "/good/reprioritize": "patch",
        "/item/reprioritize": "patch",
        "/goods/list": "get",
        "/items/list": "get",
        "/projects/list": "get",
        "/project/create": "post",
    }
    for path, method in expected.items():
        assert method in paths[path], path


async def test_docs_api_md_documents_every_catalog_route_of_the_schema(
    client: AsyncTestClient[Any],
) -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    schema = (await client.get("/schema/openapi.json")).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "catalog" in operation.get("tags", []):
                assert path in docs, f"{method.upper()} {path} is not in docs/api.md"


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/good/create?projectId=1", 405, "errors.common.methodNotAllowed"),
        ("POST", "/goods/list", 405, "errors.common.methodNotAllowed"),
        ("GET", "/no/such/route", 404, "errors.common.notFound"),
    ],
)
async def test_routing_errors_answer_the_envelope_uncached(
    client: AsyncTestClient[Any], method: str, path: str, status: int, message: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert (body["message"], body["details"]) == (message, {})
    assert body["code"] == (3 if status == 404 else 2)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data", ""]
)
async def test_a_body_that_is_not_json_is_415(
    client: AsyncTestClient[Any], content_type: str
) -> None:
    # What a cross-site HTML form or a `no-cors` fetch can send without a preflight: refused.
    response = await client.post(
        "/good/create?projectId=1",
        content=b'{"name": "tea"}',
        headers={"content-type": content_type} if content_type else {},
    )
    assert response.status_code == 415, response.text
    assert response.json() == {
        "code": 2,
        "message": "errors.common.unsupportedMediaType",
        "details": {},
    }
    assert (await client.get("/goods/list")).json()["meta"]["total"] == 0
