"""What the browser tests share: the real app (and, on request, the audit workers) served by
uvicorn on a free port in the test's event loop, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.runtime import close_container, http_server, serve_http_until
from entrypoints.settings import Settings
from tests.support import http_started

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

Worker = Callable[[Container, asyncio.Event], Coroutine[Any, Any, None]]


@asynccontextmanager
async def serve(settings: Settings, *, workers: tuple[Worker, ...] = ()) -> AsyncIterator[str]:
    """The app on ``127.0.0.1:<free port>`` and ``workers`` on one container, as ``hexmarket
    dev`` runs them; yields the base URL. Workers stop first: the app's shutdown closes the
    clients they share."""
    container = Container(settings=settings.model_copy(update={"http_port": 0}))
    server = http_server(create_app(container), container.settings())
    stop_http, stop_workers = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve_http_until(server, stop_http))
    working = [asyncio.create_task(worker(container, stop_workers)) for worker in workers]
    try:
        yield await http_started(server, serving)
        for task in working:
            assert not task.done(), f"a worker stopped early: {task}"
    finally:
        stop_workers.set()
        await asyncio.wait_for(asyncio.gather(*working), 60)
        stop_http.set()
        await asyncio.wait_for(serving, 30)
        await close_container(container)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than its viewport (0: nothing scrolls sideways)."""
    overflow: int = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)
