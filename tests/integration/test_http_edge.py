"""The HTTP edge on the real server (uvicorn on a free port, in-memory adapters): what raw
sockets can do to it, and what it answers the hosts and origins it does not serve."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from entrypoints.http.server import MAX_HEAD_BYTES, MAX_HEADERS
from entrypoints.settings import Settings
from tests import support
from tests.integration.web_support import chromium, serve

READ_TIMEOUT = 1.0


def memory_settings(**overrides: Any) -> Settings:
    return support.memory_settings(http_read_timeout=READ_TIMEOUT, **overrides)


@pytest.fixture
async def app_url() -> AsyncIterator[str]:
    async with serve(memory_settings()) as url:
        yield url


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes the connection or ``seconds`` pass: (closed, bytes read)."""
    received = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        pass
    return True, received


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /health HT", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n"],
    ids=["silent", "half-a-request-line", "headers-never-finished"],
)
async def test_a_connection_that_does_not_send_a_whole_request_is_closed(
    app_url: str, sent: bytes
) -> None:
    reader, writer = await _connect(app_url)
    try:
        started = time.monotonic()
        writer.write(sent)
        await writer.drain()
        closed, received = await _closed_within(reader, READ_TIMEOUT + 3)
        assert closed, "the server kept the connection open"
        assert received == b""
        assert time.monotonic() - started >= READ_TIMEOUT * 0.9
    finally:
        writer.close()


async def test_a_slowloris_client_is_closed_even_while_it_keeps_sending(app_url: str) -> None:
    reader, writer = await _connect(app_url)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        loop = asyncio.get_running_loop()
        end = loop.time() + READ_TIMEOUT + 3
        closed = False
        while loop.time() < end and not closed:
            try:
                writer.write(b"X-Drip: 1\r\n")
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            closed, _ = await _closed_within(reader, 0.2)
        assert closed, "a header every 0.2 s kept the connection open"
    finally:
        writer.close()


async def test_a_kept_alive_connection_serves_the_next_request(app_url: str) -> None:
    reader, writer = await _connect(app_url)
    try:
        for _ in range(2):
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            await asyncio.sleep(READ_TIMEOUT / 2)  # idle between requests: keep-alive's to judge
    finally:
        writer.close()


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Big", "a" * (MAX_HEAD_BYTES + 1))],
        [(f"X-H{i}", "1") for i in range(MAX_HEADERS + 1)],
        [("X-Huge", "a" * (8 * 1024 * 1024))],
    ],
    ids=["one-header-over-16k", "too-many-headers", "8MiB-header"],
)
async def test_a_request_head_over_the_limits_is_431_and_closed(
    app_url: str, headers: list[tuple[str, str]]
) -> None:
    reader, writer = await _connect(app_url)
    try:
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
            f"{name}: {value}\r\n".encode() for name, value in headers
        )
        writer.write(head + b"\r\n")
        with contextlib.suppress(ConnectionError):  # closed before it read all of it
            await writer.drain()
        closed, received = await _closed_within(reader, 5)
        assert closed
        assert received.startswith(b"HTTP/1.1 431"), received[:100]
    finally:
        writer.close()


async def test_a_head_within_the_limits_is_served(app_url: str) -> None:
    headers = {f"X-H{i}": "v" * 100 for i in range(MAX_HEADERS - 10)}
    async with httpx.AsyncClient(base_url=app_url) as client:
        assert (await client.get("/health", headers=headers)).status_code == 200


async def test_on_loopback_another_host_name_is_refused(app_url: str) -> None:
    # DNS rebinding: a page of rebind.example whose name now points at 127.0.0.1.
    async with httpx.AsyncClient(base_url=app_url) as client:
        refused = await client.get("/goods/list", headers={"Host": "rebind.example"})
        assert refused.status_code == 400
        assert refused.json() == {
            "code": 2,
            "message": "errors.common.validation",
            "details": {"host": "not served here"},
        }
        port = urlsplit(app_url).port
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert (await client.get("/goods/list", headers={"Host": host})).status_code == 200


async def test_allowed_hosts_setting_names_the_hosts_served() -> None:
    async with (
        serve(memory_settings(allowed_hosts="shop.example")) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.get("/health", headers={"Host": "shop.example"})).status_code == 200
        assert (await client.get("/health")).status_code == 400  # 127.0.0.1 is not listed


async def test_a_cross_site_form_post_creates_nothing(app_url: str) -> None:
    # What a plain HTML form on another site sends; the browser adds the Origin header.
    async with httpx.AsyncClient(base_url=app_url) as client:
        form = await client.post(
            "/project/create",
            content=b'{"name": "evil"}',
            headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        )
        assert form.status_code == 403
        assert form.json()["message"] == "errors.common.forbidden"
        json_from_elsewhere = await client.post(
            "/project/create", json={"name": "evil"}, headers={"Origin": "http://evil.example"}
        )
        assert json_from_elsewhere.status_code == 403
        same_origin = await client.post(
            "/project/create", json={"name": "mine"}, headers={"Origin": app_url}
        )
        assert same_origin.status_code == 200, same_origin.text
        names = [p["name"] for p in (await client.get("/projects/list")).json()["projects"]]
        assert "evil" not in names
        assert "mine" in names


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/schema/swagger", ".opblock"), ("/", "#tab-orders")],
    ids=["swagger-ui", "web-page"],
)
async def test_the_pages_work_under_their_csp_and_load_nothing_from_elsewhere(
    app_url: str, path: str, ready: str
) -> None:
    origin = app_url.rstrip("/")
    async with chromium() as browser:
        page = await browser.new_page()
        requests: list[str] = []
        console: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: console.append(message.text))
        response = await page.goto(f"{origin}{path}")
        assert response is not None
        assert response.status == 200
        await page.wait_for_selector(ready, timeout=30_000)
        await page.wait_for_load_state("networkidle")
        assert requests
        elsewhere = [url for url in requests if not url.startswith(origin)]
        assert elsewhere == [], elsewhere
        violations = [text for text in console if "Content Security Policy" in text]
        assert violations == [], violations
        if path == "/schema/swagger":
            assert await page.locator(".opblock").count() >= 18  # every operation rendered


async def test_a_page_on_another_origin_cannot_write_in_chromium(
    app_url: str, tmp_path: Path
) -> None:
    # The attacker's site: a plain static server on another loopback port (another origin,
    # the same address space, so no private-network rule of the browser interferes), whose
    # page tries the "simple" requests a browser sends without a preflight (a form, a no-cors
    # fetch) and a JSON fetch.
    target = app_url.rstrip("/")
    (tmp_path / "index.html").write_text("<!DOCTYPE html><html><body></body></html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    site = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    other_url = f"http://127.0.0.1:{site.server_address[1]}/"
    try:
        await _attack(target, other_url)
    finally:
        site.shutdown()
        site.server_close()
    async with httpx.AsyncClient(base_url=app_url) as client:
        names = [p["name"] for p in (await client.get("/projects/list")).json()["projects"]]
        names += [g["name"] for g in (await client.get("/goods/list")).json()["goods"]]
    assert not [name for name in names if name.startswith("evil")], names


async def _attack(target: str, other_url: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(other_url)
        outcome = await page.evaluate(
            """async (target) => {
                const results = [];
                for (const [type, body] of [["text/plain", '{"name": "evil-text"}'],
                                            ["application/x-www-form-urlencoded", "name=evil"]]) {
                    try {  // sent; the answer is withheld from the page (CORP same-origin)
                        await fetch(`${target}/project/create`, {method: "POST", mode: "no-cors",
                                    headers: {"Content-Type": type}, body});
                    } catch (error) {}
                    results.push(type);
                }
                try {
                    await fetch(`${target}/project/create`, {method: "POST",
                        headers: {"Content-Type": "application/json"},
                        body: '{"name": "evil-json"}'});
                    results.push("json answered");
                } catch (error) {
                    results.push("json refused");
                }
                return results;
            }""",
            target,
        )
        assert outcome[-1] == "json refused"  # no CORS: the preflight fails
        form = await browser.new_page()
        await form.goto(other_url)
        await form.evaluate(
            """(target) => {
                const f = document.createElement("form");
                f.method = "POST"; f.action = `${target}/good/create?projectId=1`;
                f.enctype = "text/plain";
                const input = document.createElement("input");
                input.name = '{"name": "evil-form", "description": "'; input.value = '"}';
                f.append(input); document.body.append(f); f.submit();
            }""",
            target,
        )
        await form.wait_for_url(f"{target}/good/create?projectId=1")


async def test_head_on_the_real_server_sends_headers_only(app_url: str) -> None:
    async with httpx.AsyncClient(base_url=app_url) as client:
        for path in ("/static/app.js", "/goods/list", "/health", "/"):
            got = await client.get(path, headers={"accept-encoding": "identity"})
            head = await client.head(path, headers={"accept-encoding": "identity"})
            assert head.status_code == 200, path
            assert head.content == b""
            assert head.headers["content-type"] == got.headers["content-type"]
            assert head.headers["content-length"] == str(len(got.content))
        # the connection is still usable: no stray body bytes were sent after the HEAD
        assert (await client.get("/health")).json() == {"status": "ok"}


async def test_many_silent_connections_are_all_closed(app_url: str) -> None:
    connections = [await _connect(app_url) for _ in range(200)]
    try:
        results = await asyncio.gather(
            *(_closed_within(reader, READ_TIMEOUT + 5) for reader, _ in connections)
        )
        assert all(closed for closed, _ in results)
    finally:
        for _, writer in connections:
            writer.close()
