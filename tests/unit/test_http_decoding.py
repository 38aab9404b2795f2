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
from entrypoints.http.app import create_app
from entrypoints.http.catalog import GoodBody, ReprioritizeBody
from entrypoints.http.decoding import decode_body
from entrypoints.settings import Settings


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Any]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        catalog_store="memory",
        list_cache="lru",
        orders_store="memory",
        orders_cache="lru",
        log_store="memory",
        orders_broker="memory",
        events_broker="memory",
    )
    async with AsyncTestClient(create_app(Container(settings=settings))) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "content", "details"),
    [
        ("POST", "/good/create?projectId=1", b'{"name": 5}', {"name": "must be text"}),
        (
            "POST",
            "/good/create?projectId=1",
            b'{"name": "' + b"x" * 256 + b'"}',
            {"name": "must be at most 255 characters"},
        ),
        ("POST", "/good/create?projectId=1", b"[]", {"body": "must be a JSON object"}),
        (
            "POST",
            "/good/create?projectId=1",
            b'{"name": ',
            {"body": "malformed JSON at line 1, column 10"},
        ),
        (
            "PATCH",
            "/good/reprioritize?id=1&projectId=1",
            b'{"newPriority": 0}',
            {"newPriority": "must be a whole number, 1 or more"},
        ),
        (
            "PATCH",
            "/good/reprioritize?id=1&projectId=1",
            b'{"newPriority": 1000000001}',
            {"newPriority": "must be a whole number, at most 1000000000"},
        ),
        (
            "PATCH",
            "/good/reprioritize?id=1&projectId=1",
            b'{"newPriority": 2.5}',
            {"newPriority": "must be a whole number"},
        ),
        ("GET", "/goods/list?limit=0", b"", {"limit": "must be a whole number, 1 or more"}),
        ("GET", "/goods/list?limit=1001", b"", {"limit": "must be a whole number, at most 1000"}),
        ("GET", "/goods/list?offset=-1", b"", {"offset": "must be a whole number, 0 or more"}),
        ("DELETE", "/good/remove?projectId=1", b"", {"id": "is required"}),
        ("GET", "/logs?limit=1001", b"", {"limit": "must be a whole number, at most 1000"}),
        (
            "GET",
            "/logs?type=rename",
            b"",
            {"type": "must be one of create, update, remove, reprioritize"},
        ),
        ("GET", "/logs?since=yesterday", b"", {"since": "must be an RFC 3339 date-time"}),
        ("GET", "/logs?before=garbage", b"", {"before": "must be a meta.next of an earlier page"}),
        ("GET", "/orders?limit=101", b"", {"limit": "must be a whole number, at most 100"}),
        (
            "GET",
            "/orders?before=bad%20id",
            b"",
            {"before": "must be a meta.next of an earlier page"},
        ),
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


def test_every_invalid_field_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        decode_body(b'{"name": "", "description": 7}', GoodBody)
    assert refused.value.details == {"name": "must not be empty", "description": "must be text"}


def test_unknown_fields_are_named_alone() -> None:
    with pytest.raises(ValidationError) as refused:
        decode_body(b'{"priority": 2, "x": 0}', ReprioritizeBody)
    assert refused.value.details == {"priority": "unknown field", "x": "unknown field"}


@pytest.mark.parametrize(("value", "whole"), [(b"2", 2), (b"2.0", 2), (b"1e0", 1)])
def test_a_json_schema_integer_decodes_to_an_int(value: bytes, whole: int) -> None:
    body = decode_body(b'{"newPriority": ' + value + b"}", ReprioritizeBody)
    assert body.new_priority == whole
    assert type(body.new_priority) is int


def test_a_good_body_keeps_an_omitted_description_unset() -> None:
    body = decode_body(b'{"name": "tea"}', GoodBody)
    assert body.name == "tea"
    assert body.description is msgspec.UNSET
