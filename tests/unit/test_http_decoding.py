"""Request decoding (``entrypoints.http.decoding``): the reasons in ``details`` are the project's
own words, worked out from what the body and the routes declare, never a library's message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from core.errors import ValidationError
from entrypoints.container import Container
from entrypoints.http.catalog import GoodBody, ReprioritizeBody
from entrypoints.http.decoding import decode_body
from tests.support import app_client, memory_settings


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Any]]:
    async with app_client(Container(settings=memory_settings())) as client:
        yield client


BODY = "/good/create?projectId=1"
PRIORITY = "/good/reprioritize?id=1&projectId=1"

#: A refused request body: (method, path, content, details), by what is wrong with it.
BODIES: dict[str, tuple[str, str, bytes, dict[str, str]]] = {
    "name not text": ("POST", BODY, b'{"name": 5}', {"name": "must be text"}),
    "name too long": (
        "POST",
        BODY,
        b'{"name": "' + b"x" * 256 + b'"}',
        {"name": "must be at most 255 characters"},
    ),
    "not an object": ("POST", BODY, b"[]", {"body": "must be a JSON object"}),
    "malformed": ("POST", BODY, b'{"name": ', {"body": "malformed JSON at line 1, column 10"}),
    "priority 0": (
        "PATCH",
        PRIORITY,
        b'{"newPriority": 0}',
        {"newPriority": "must be a whole number, 1 or more"},
    ),
    "priority too high": (
        "PATCH",
        PRIORITY,
        b'{"newPriority": 1000000001}',
        {"newPriority": "must be a whole number, at most 1000000000"},
    ),
    "priority not whole": (
        "PATCH",
        PRIORITY,
        b'{"newPriority": 2.5}',
        {"newPriority": "must be a whole number"},
    ),
}

#: A refused query string (no body): (method, path, details), by what is wrong with it.
QUERIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "goods limit 0": ("GET", "/goods/list?limit=0", {"limit": "must be a whole number, 1 or more"}),
    "goods limit over 1000": (
        "GET",
        "/goods/list?limit=1001",
        {"limit": "must be a whole number, at most 1000"},
    ),
    "goods offset -1": (
        "GET",
        "/goods/list?offset=-1",
        {"offset": "must be a whole number, 0 or more"},
    ),
    "remove without id": ("DELETE", "/good/remove?projectId=1", {"id": "is required"}),
    "logs limit over 1000": (
        "GET",
        "/logs?limit=1001",
        {"limit": "must be a whole number, at most 1000"},
    ),
    "logs unknown type": (
        "GET",
        "/logs?type=rename",
        {"type": "must be one of create, update, remove, reprioritize"},
    ),
    "logs since not a date": (
        "GET",
        "/logs?since=yesterday",
        {"since": "must be an RFC 3339 date-time"},
    ),
    "logs before not a cursor": (
        "GET",
        "/logs?before=garbage",
        {"before": "must be a meta.next of an earlier page"},
    ),
    "orders limit over 100": (
        "GET",
        "/orders?limit=101",
        {"limit": "must be a whole number, at most 100"},
    ),
    "orders before not a cursor": (
        "GET",
        "/orders?before=bad%20id",
        {"before": "must be a meta.next of an earlier page"},
    ),
}


@pytest.mark.parametrize(
    ("method", "path", "content", "details"),
    [
        *(pytest.param(*case, id=name) for name, case in BODIES.items()),
        *(pytest.param(m, p, b"", d, id=name) for name, (m, p, d) in QUERIES.items()),
    ],
)
async def test_reasons_are_the_projects_own_words(
    client: AsyncTestClient[Any],
    method: str,
    path: str,
    content: bytes,
    details: dict[str, str],
) -> None:
    headers = {"content-type": "application/json"} if content else {}
    response = await client.request(method, path, content=content, headers=headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["message"], body["details"]) == (
        2,
        "errors.common.validation",
        details,
    )


@pytest.mark.parametrize(
    ("content", "kind", "details"),
    [
        pytest.param(
            b'{"name": "", "description": 7}',
            GoodBody,
            {"name": "must not be empty", "description": "must be text"},
            id="every invalid field at once",
        ),
        pytest.param(
            b'{"priority": 2, "x": 0}',
            ReprioritizeBody,
            {"priority": "unknown field", "x": "unknown field"},
            id="unknown fields alone",
        ),
    ],
)
def test_the_fields_are_named(content: bytes, kind: type[Any], details: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as refused:
        decode_body(content, kind)
    assert refused.value.details == details


@pytest.mark.parametrize(("value", "whole"), [(b"2", 2), (b"2.0", 2), (b"1e0", 1)])
def test_a_json_schema_integer_decodes_to_an_int(value: bytes, whole: int) -> None:
    body = decode_body(b'{"newPriority": ' + value + b"}", ReprioritizeBody)
    assert body.new_priority == whole
    assert type(body.new_priority) is int


def test_a_good_body_keeps_an_omitted_description_unset() -> None:
    body = decode_body(b'{"name": "tea"}', GoodBody)
    assert body.name == "tea"
    assert body.description is msgspec.UNSET
