"""Never a 500 for bad input: arbitrary query values and bodies on every catalog, log and
order route answer a 2xx/3xx or a 4xx in the error envelope (in-memory adapters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from entrypoints.container import Container
from entrypoints.http.app import create_app
from tests.support import memory_settings

ROUTES = [
    ("POST", "/good/create"),
    ("POST", "/item/create"),
    ("PATCH", "/good/update"),
    ("PATCH", "/item/update"),
    ("DELETE", "/good/remove"),
    ("DELETE", "/item/remove"),
    ("PATCH", "/good/reprioritiize"),
    ("PATCH", "/item/reprioritize"),
    ("GET", "/goods/list"),
    ("GET", "/items/list"),
    ("GET", "/projects/list"),
    ("POST", "/project/create"),
    ("GET", "/logs"),
]
PARAMS = ["id", "projectId", "campaignId", "limit", "offset"]

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "1.5", "1e3", "NaN", "-0", "0x10", " 1", "１", "true"]),
    st.text(max_size=8),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "description": json_values,
            "newPriority": json_values,
            "extra": json_values,
        },
    ).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(Container(settings=memory_settings(max_body_bytes=4096)))) as client:
        client.post("/good/create?projectId=1", json={"name": "exists"})
        yield client


def _check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "details"}, body
        assert body["code"] in (2, 3)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    route=st.sampled_from(ROUTES),
    query=st.dictionaries(st.sampled_from(PARAMS), numbers, max_size=4),
    body=bodies,
)
def test_no_input_makes_a_500(
    client: TestClient[Litestar], route: tuple[str, str], query: dict[str, str], body: bytes
) -> None:
    method, path = route
    url = path + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()) if query else "")
    content = None if method == "GET" else body
    _check(
        client.request(method, url, content=content, headers={"content-type": "application/json"})
    )


@settings(max_examples=100, deadline=None)
@given(uid=st.text(max_size=80))
def test_no_order_id_makes_a_500(client: TestClient[Litestar], uid: str) -> None:
    _check(client.get("/order/" + quote(uid, safe="")))
