"""The web page's files, without servers: served with revalidation, free of anything that
would reach outside the machine or turn data into markup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.http.web import STATIC
from tests.support import memory_settings


@pytest.fixture
def client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(Container(settings=memory_settings()))) as client:
        yield client


def test_the_page_and_its_files_are_served_and_revalidated(client: TestClient) -> None:  # type: ignore[type-arg]
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert response.headers["cache-control"] == "no-cache"
        assert response.content == (STATIC / name).read_bytes()
        assert f'"/static/{name}"' in page.text
    assert client.get("/static/nothing.js").status_code == 404


def test_the_page_loads_nothing_from_other_hosts() -> None:
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), name
        assert "@import" not in text, name
        assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", text), name


def test_the_script_never_turns_data_into_markup_nor_blocks_on_dialogs() -> None:
    script = (STATIC / "app.js").read_text()
    for banned in (r"\.innerHTML", r"\.outerHTML", r"insertAdjacentHTML\(", r"document\.write"):
        assert not re.search(banned, script), banned
    assert not re.search(r"(?<![\w.])(?:eval|Function)\(", script)
    for dialog in ("prompt(", "confirm(", "alert("):
        assert not re.search(rf"(?<![\w.]){re.escape(dialog)}", script), dialog
    # the token stays in the browser tab: never in localStorage, which outlives it
    assert "localStorage.setItem" not in script


def test_the_page_has_no_inline_script_or_style() -> None:
    """A strict Content-Security-Policy (``script-src 'self'; style-src 'self'``) must hold."""
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    assert re.search(r"\sstyle=", html) is None
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
    script = (STATIC / "app.js").read_text()
    assert ".style." not in script
    assert 'setAttribute("style"' not in script
