"""The OpenAPI schema Litestar serves and docs/api.md describe the same routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from entrypoints.container import Container
from entrypoints.http.app import create_app
from tests.support import memory_settings

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HEADING = re.compile(r"^#{2,4}\s+(GET|POST|PATCH|PUT|DELETE)\s+(.*)$", re.MULTILINE)
PATH = re.compile(r"`(/[^`?\s]*)")
METHODS = {"get", "post", "patch", "put", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    app = create_app(Container(settings=memory_settings()))
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


def _normalise(path: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", path)


def _documented() -> set[tuple[str, str]]:
    routes = set()
    for method, rest in HEADING.findall(API_MD.read_text(encoding="utf-8")):
        for path in PATH.findall(rest):
            routes.add((method.lower(), _normalise(path)))
    return routes


def _served(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, _normalise(path))
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    }


def test_schema_identifies_hexmarket(schema: dict[str, Any]) -> None:
    assert schema["info"]["title"] == "hexmarket"
    assert schema["openapi"].startswith("3.")


def test_every_documented_route_is_served(schema: dict[str, Any]) -> None:
    documented = _documented()
    assert documented, "docs/api.md has no route headings"
    missing = documented - _served(schema)
    assert not missing, f"documented in docs/api.md but not served: {sorted(missing)}"


def test_every_served_route_is_documented(schema: dict[str, Any]) -> None:
    undocumented = _served(schema) - _documented()
    assert not undocumented, f"served but not in docs/api.md: {sorted(undocumented)}"
