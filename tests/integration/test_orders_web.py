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
from core.contracts.orders import example_document, order_from
from tests.integration.orders_support import app_settings
from tests.integration.web_support import (
    ARTIFACTS,
    ROOT,
    chromium,
    horizontal_overflow,
    screenshot,
    serve,
)

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
        newer = []  # 23 newer orders: the recent list has two pages of 20
        for index in range(23):
            doc = example_document(f"recent-{index:02}", index)
            doc["date_created"] = f"2024-03-01T10:{index:02}:00Z"
            newer.append(order_from(doc))
        await PgOrderRepository(pool).add_many(newer)
    async with serve(app_settings(pg_url, catalog_store="postgres")) as url:
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


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_orders_tab_opens_on_the_recent_orders(
    base_url: str, browser: Browser, width: int
) -> None:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    errors: list[Any] = []
    page.on("pageerror", lambda exc: errors.append(exc))
    await page.goto(base_url + "/")
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    rows = page.locator("#recent-orders tbody tr")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_have_attribute("data-uid", "recent-22")  # newest first
    await expect(page.locator("#recent-meta")).to_have_text("Newest first · page 1 · 20 orders")
    await expect(page.locator("#recent-newest")).to_be_disabled()
    assert await horizontal_overflow(page) == 0
    await screenshot(page, f"orders-web-recent-{width}.png")

    # keyset paging: the older five, then back to the newest
    await page.click("#recent-older")
    await expect(rows).to_have_count(5)
    await expect(page.locator("#recent-older")).to_be_disabled()
    uids = [await row.get_attribute("data-uid") for row in await rows.all()]
    # the two sample orders share one date_created: the tie goes by order_uid
    assert uids == [
        "recent-02",
        "recent-01",
        "recent-00",
        "b563feb7b2b84b6test",
        "multi-item-order",
    ]

    # a row opens its order
    await page.locator('#recent-orders tr[data-uid="b563feb7b2b84b6test"] button').click()
    order = page.locator("#order")
    await expect(order).to_be_visible()
    await expect(order.locator("[data-field=order_uid]")).to_have_text("b563feb7b2b84b6test")
    await expect(page.locator("#order-id")).to_have_value("b563feb7b2b84b6test")
    await page.click("#recent-newest")
    await expect(rows).to_have_count(20)
    assert errors == []


async def test_an_empty_orders_tab_says_where_orders_come_from(
    pg_url: str, browser: Browser
) -> None:
    await migrate(pg_url)
    async with serve(app_settings(pg_url, pg_pool_size=2)) as url:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(url + "/")
        await expect(page.locator("#recent-empty")).to_be_visible()
        await expect(page.locator("#recent-empty")).to_contain_text("hexmarket produce-orders")
        await expect(page.locator("#order-help")).to_contain_text("recent orders below")
