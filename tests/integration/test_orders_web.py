"""The web page's order lookup in headless Chromium (Debian's ``chromium`` through Playwright),
served by the real app under uvicorn on a free port, against real PostgreSQL. The catalog and
audit-log views are tested in ``test_web_catalog``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.migrate import migrate
from adapters.postgres.orders import PgOrderRepository
from core.contracts.orders import order_from
from entrypoints.settings import Settings
from tests.integration.web_support import ARTIFACTS, ROOT, chromium, serve

SAMPLE = json.loads((ROOT / "tests" / "data" / "model.json").read_bytes())


@pytest.fixture
async def base_url(pg_url: str) -> AsyncIterator[str]:
    await migrate(pg_url)
    async with AsyncConnectionPool(pg_url, min_size=1, max_size=1, open=False) as pool:
        second = json.loads(json.dumps(SAMPLE))
        second["order_uid"] = "multi-item-order"
        second["items"].append(
            second["items"][0] | {"name": "Lip <b>gloss</b>", "total_price": 100}
        )
        second["payment"]["goods_total"] = 417
        second["payment"]["amount"] = 1917
        await PgOrderRepository(pool).add_many([order_from(SAMPLE), order_from(second)])
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        postgres_url=pg_url,
        catalog_store="postgres",
        list_cache="lru",
        orders_store="postgres",
        orders_cache="lru",
        orders_broker="memory",
        events_broker="memory",
        log_store="memory",
        pg_pool_size=4,
    )
    async with serve(settings) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


async def test_looking_up_orders_on_the_page(base_url: str, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors: list[Any] = []
    page.on("pageerror", lambda exc: errors.append(exc))
    await page.goto(base_url + "/")
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)

    await page.fill("#order-id", "b563feb7b2b84b6test")
    await page.click("#order-submit")
    order = page.locator("#order")
    await expect(order).to_be_visible()
    await expect(order.locator("[data-field=order_uid]")).to_have_text("b563feb7b2b84b6test")
    for text in (
        "WBILMTESTTRACK",
        "Test Testov",
        "+9720000000",
        "test@gmail.com",
        "Kiryat Mozkin",
        "Mascaras",
        "Vivienne Sabo",
        "wbpay",
        "alpha",
        "meest",
    ):
        await expect(order).to_contain_text(text)
    await expect(order.locator("#order-items tbody tr")).to_have_count(1)
    await expect(page.locator("#order-message")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "orders-web-found.png"), full_page=True)

    # The page's width holds at phone size: nothing scrolls sideways.
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390

    await page.fill("#order-id", "multi-item-order")
    await page.click("#order-submit")
    await expect(order.locator("#order-items tbody tr")).to_have_count(2)
    await expect(order).to_contain_text("Lip <b>gloss</b>")  # shown as text, not markup

    await page.fill("#order-id", "no-such-order")
    await page.click("#order-submit")
    message = page.locator("#order-message")
    await expect(message).to_be_visible()
    await expect(message).to_contain_text("No order with id “no-such-order”")
    await expect(order).to_be_hidden()
    await page.screenshot(path=str(ARTIFACTS / "orders-web-unknown.png"), full_page=True)

    await page.fill("#order-id", "bad id!")
    await page.click("#order-submit")
    await expect(message).to_contain_text("not a valid order id")
    assert errors == []
